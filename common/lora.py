"""LoRA training on repair pairs: settings, flags, the two dataset formats, the loop, the saved adapter.

Settings live in :class:`TrainConfig` (defaults = PAPER.md §3: r=16, α=32, dropout 0.05, no bias,
q/k/v/o projections; 2 epochs, lr 1e-4, batch 1 × grad-accum 4, warm-up 5 % then linear decay,
max length 1024). :func:`add_lora_args` builds the flag group from it; :meth:`TrainConfig.from_args`
turns parsed flags back into a config (unknown target names fail when peft wraps the model).

Dataset formats (``--format``):

``chat-masked`` (default)
    the pair as a chat conversation rendered with the tokenizer's chat template — system
    "You are a Python coder." (``--system``), user = the repair prompt, assistant = the fixed
    code in a fence. Labels are -100 on every prompt token (system + user + the assistant
    header); loss falls on the assistant turn only, its end-of-turn token included and the
    template's trailing newline excluded.
``raw-markdown``
    the fast path's plain text (repair prompt, blank line, fenced answer) with the tokenizer's
    EOS appended; loss on every token (PAPER.md §4 defect 8, kept for comparison). Unlike the
    original it is not padded to the maximum length (padding is per batch and masked).

Examples longer than ``max_length`` are cut at the right (counted as ``n_truncated``); an example
with no label token left is dropped (``n_dropped_no_labels``).

The loop: torch AdamW (weight decay 0, gradient clipping 1.0, as transformers' Trainer),
``get_linear_schedule_with_warmup`` with ``ceil(5 % × optimizer steps)`` warm-up steps (as the
Trainer: the first optimizer step therefore runs at learning rate 0 whenever there is warm-up),
batches padded to their longest member, loss = mean over label tokens of each micro-batch
divided by ``grad_accum``, a last partial accumulation still makes a step. Seeded (example order
and LoRA initialisation). CPU float32 by default; ``--dtype bfloat16`` and ``--device cuda`` for
GPU users — that path (and multi-GPU through ``accelerate launch``) cannot be exercised on the
CPU machines this project is built on.

:func:`train_adapter` is the whole fast path: train, write the adapter (peft
``save_pretrained``), ``train_log.jsonl`` (one line per optimizer step) and ``result.json`` into
one directory, atomically (a temporary directory renamed at the end), and skip the work when
that directory already holds a finished run with the same configuration and pairs.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from common.flags import add_config_flags
from common.results import InputError

log = logging.getLogger(__name__)

FORMATS = ("chat-masked", "raw-markdown")
DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")
IGNORE_INDEX = -100


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a LoRA training run (PAPER.md §3 defaults)."""
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_targets: tuple[str, ...] = DEFAULT_TARGETS
    format: str = "chat-masked"
    system: str = "You are a Python coder."
    epochs: float = 2
    lr: float = 1e-4
    batch_size: int = 1
    grad_accum: int = 4
    warmup_ratio: float = 0.05
    max_length: int = 1024
    max_steps: int | None = None      # cap on optimizer steps (quick runs); None = epochs decide
    max_grad_norm: float = 1.0
    seed: int = 0
    dtype: str = "float32"
    device: str = "cpu"

    def __post_init__(self):
        object.__setattr__(self, "lora_targets", tuple(self.lora_targets))
        checks = [
            (self.lora_rank >= 1, f"--lora-rank must be >= 1, got {self.lora_rank}"),
            (self.lora_alpha > 0, f"--lora-alpha must be > 0, got {self.lora_alpha}"),
            (0 <= self.lora_dropout < 1, f"--lora-dropout must be in [0, 1), got {self.lora_dropout}"),
            (bool(self.lora_targets) and all(self.lora_targets), "--lora-targets must name at least one module"),
            (self.format in FORMATS, f"--format must be one of {', '.join(FORMATS)}, got {self.format!r}"),
            (self.epochs > 0, f"--epochs must be > 0, got {self.epochs}"),
            (self.lr > 0, f"--lr must be > 0, got {self.lr}"),
            (self.batch_size >= 1, f"--batch-size must be >= 1, got {self.batch_size}"),
            (self.grad_accum >= 1, f"--grad-accum must be >= 1, got {self.grad_accum}"),
            (0 <= self.warmup_ratio < 1, f"--warmup-ratio must be in [0, 1), got {self.warmup_ratio}"),
            (self.max_length >= 16, f"--max-length must be >= 16, got {self.max_length}"),
            (self.max_steps is None or self.max_steps >= 1, f"--max-steps must be >= 1, got {self.max_steps}"),
            (self.dtype in ("float32", "bfloat16", "float16"), f"unknown dtype {self.dtype!r}"),
            (self.device in ("cpu", "cuda", "auto"), f"--device must be cpu, cuda or auto, got {self.device!r}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise InputError(msg)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["lora_targets"] = list(self.lora_targets)
        return d

    @classmethod
    def from_args(cls, args, **overrides) -> "TrainConfig":
        """From parsed :func:`add_lora_args` flags (+ ``args.dtype`` and the mining ``--system``)."""
        targets = tuple(t.strip() for t in str(args.lora_targets).split(",") if t.strip())
        kw = dict(lora_rank=args.lora_rank, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
                  lora_targets=targets, format=args.format, system=args.system, epochs=args.epochs, lr=args.lr,
                  batch_size=args.batch_size, grad_accum=args.grad_accum, warmup_ratio=args.warmup_ratio,
                  max_length=args.max_length, max_steps=args.max_steps, seed=args.train_seed,
                  dtype=getattr(args, "dtype", "float32"), device=args.device)
        return cls(**{**kw, **overrides})


def add_lora_args(p, seed_flag: str = "--train-seed", system_flag: bool = True, **overrides) -> None:
    """The LoRA/trainer flag group; ``overrides`` change defaults (e.g. lora_rank=32 for multi-pair).

    ``--dtype`` is not part of the group (scripts get it from their model flags). The training
    seed's flag is ``seed_flag`` (``--seed`` where no sampling seed competes for the name); its
    destination is always ``train_seed``. ``system_flag=False`` leaves ``--system`` to another
    group (the mining flags), so mining and training share one system prompt.
    """
    d = dataclasses.replace(TrainConfig(), **overrides)
    g = p.add_argument_group("LoRA training (defaults: PAPER.md §3)")
    g.add_argument("--format", default=d.format, choices=FORMATS,
                   help=f"training text: chat-masked = chat template, loss on the assistant turn only; "
                        f"raw-markdown = the fast path's plain text, loss on every token (default {d.format})")
    add_config_flags(g, d, {"lora_rank": "LoRA rank r", "lora_alpha": "LoRA alpha",
                            "lora_dropout": "dropout on the LoRA input"})
    g.add_argument("--lora-targets", default=",".join(d.lora_targets),
                   help=f"comma-separated module names to adapt (default {','.join(d.lora_targets)})")
    if system_flag:
        g.add_argument("--system", default=d.system,
                       help=f"system prompt of the chat-masked format; '' for none (default {d.system!r})")
    add_config_flags(g, d, {
        "epochs": "passes over the pairs", "lr": "peak learning rate", "batch_size": "pairs per micro-batch",
        "grad_accum": "micro-batches per optimizer step",
        "warmup_ratio": "fraction of optimizer steps of linear warm-up, then linear decay",
        "max_length": "tokens per example; longer ones are cut at the right",
        "max_steps": "stop after this many optimizer steps (quick runs; default: epochs decide)"})
    g.add_argument(seed_flag, dest="train_seed", type=int, default=d.seed,
                   help=f"training seed: example order and LoRA initialisation (default {d.seed})")
    g.add_argument("--device", default=d.device, choices=("cpu", "cuda", "auto"),
                   help="training device; cuda needs a GPU build of torch (not testable here; default cpu)")


def peft_config(cfg: TrainConfig):
    """The peft LoraConfig of a TrainConfig (causal LM, no bias)."""
    from peft import LoraConfig
    return LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=list(cfg.lora_targets), bias="none", task_type="CAUSAL_LM")


# --------------------------------------------------------------------------------------------
# Dataset
# --------------------------------------------------------------------------------------------


def encode_chat_masked(tokenizer, pair: dict, system: str | None, max_length: int) -> dict:
    """input_ids/labels of one pair in the chat-masked format (see the module docstring)."""
    from common.pairs import repair_messages
    msgs = repair_messages(pair, system if system else "")
    prompt = tokenizer.apply_chat_template(msgs[:-1], tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(msgs, tokenize=False)
    if not full.startswith(prompt):
        raise ValueError("this tokenizer's chat template does not render the conversation as prompt + "
                         "assistant turn, so the prompt cannot be masked; use --format raw-markdown")
    answer = full[len(prompt):].rstrip()
    p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    a_ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
    ids = p_ids + a_ids
    labels = [IGNORE_INDEX] * len(p_ids) + list(a_ids)
    return _cut({"input_ids": ids, "labels": labels, "n_prompt_tokens": len(p_ids)}, max_length)


def encode_raw_markdown(tokenizer, pair: dict, max_length: int) -> dict:
    """input_ids/labels of one pair as plain markdown + EOS, loss on every token."""
    from common.pairs import raw_markdown_text
    ids = tokenizer(raw_markdown_text(pair), add_special_tokens=False)["input_ids"]
    if tokenizer.eos_token_id is not None:
        ids = ids + [tokenizer.eos_token_id]
    return _cut({"input_ids": ids, "labels": list(ids), "n_prompt_tokens": 0}, max_length)


def _cut(ex: dict, max_length: int) -> dict:
    ex["truncated"] = len(ex["input_ids"]) > max_length
    ex["input_ids"] = ex["input_ids"][:max_length]
    ex["labels"] = ex["labels"][:max_length]
    ex["n_label_tokens"] = sum(1 for l in ex["labels"] if l != IGNORE_INDEX)
    return ex


def build_examples(tokenizer, pairs: list[dict], cfg: TrainConfig) -> tuple[list[dict], dict]:
    """Encode every pair; returns (examples with labels, counts)."""
    out, n_trunc, n_drop = [], 0, 0
    for p in pairs:
        if cfg.format == "chat-masked":
            ex = encode_chat_masked(tokenizer, p, cfg.system, cfg.max_length)
        else:
            ex = encode_raw_markdown(tokenizer, p, cfg.max_length)
        n_trunc += ex["truncated"]
        if ex["n_label_tokens"] == 0:
            n_drop += 1
            continue
        out.append(ex)
    counts = {"n_pairs": len(pairs), "n_examples": len(out), "n_truncated": n_trunc,
              "n_dropped_no_labels": n_drop, "n_tokens": sum(len(e["input_ids"]) for e in out),
              "n_label_tokens": sum(e["n_label_tokens"] for e in out)}
    return out, counts


def collate(examples: list[dict], pad_id: int):
    """Pad a micro-batch to its longest member (right padding, labels -100, attention 0)."""
    import torch
    n = max(len(e["input_ids"]) for e in examples)
    ids = torch.full((len(examples), n), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), n), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(examples), n), dtype=torch.long)
    for i, e in enumerate(examples):
        k = len(e["input_ids"])
        ids[i, :k] = torch.tensor(e["input_ids"])
        labels[i, :k] = torch.tensor(e["labels"])
        mask[i, :k] = 1
    return ids, labels, mask


# --------------------------------------------------------------------------------------------
# Training loop
# --------------------------------------------------------------------------------------------


def causal_lm_loss(model, input_ids, attention_mask, labels):
    """Mean next-token cross-entropy over the label tokens, the LM head applied only where a label is.

    Equal to ``model(input_ids, attention_mask=..., labels=...).loss`` of a transformers causal LM
    (labels shifted left by one, -100 ignored, mean over the remaining tokens, logits in float32),
    but the vocabulary projection runs on the label positions only: in the masked chat format
    most positions are prompt tokens, and for a 0.5B model with a 152k vocabulary the LM head is
    about a quarter of the forward pass. Falls back to the model's own loss for models without
    the usual ``<causal lm>.model`` / ``.lm_head`` layout.
    """
    import torch
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    body, head = getattr(base, "model", None), getattr(base, "lm_head", None)
    if body is None or head is None or getattr(base.config, "final_logit_softcapping", None):
        return model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
    hidden = body(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state
    target = labels[:, 1:]
    keep = target != IGNORE_INDEX
    logits = head(hidden[:, :-1][keep]).float()
    return torch.nn.functional.cross_entropy(logits, target[keep], reduction="mean")


def schedule_steps(n_examples: int, cfg: TrainConfig) -> tuple[int, int, int]:
    """(micro-batches per epoch, optimizer steps, warm-up steps)."""
    per_epoch = math.ceil(n_examples / cfg.batch_size)
    steps_per_epoch = math.ceil(per_epoch / cfg.grad_accum)
    total = math.ceil(steps_per_epoch * cfg.epochs)
    if cfg.max_steps is not None:
        total = min(total, cfg.max_steps)
    return per_epoch, total, math.ceil(cfg.warmup_ratio * total)


def _device(cfg: TrainConfig) -> str:
    if cfg.device == "auto":
        import torch
        return "cuda" if torch.cuda.is_available() else "cpu"
    if cfg.device == "cuda":
        import torch
        if not torch.cuda.is_available():
            raise InputError("--device cuda: no CUDA device visible to torch")
    return cfg.device


def train_lora(model, tokenizer, examples: list[dict], cfg: TrainConfig, on_step=None, progress: bool = True):
    """Wrap ``model`` with a fresh LoRA adapter and train it on encoded ``examples``.

    ``on_step(record)`` receives one dict per optimizer step (step, epoch, loss, lr, grad_norm,
    tokens, elapsed_s). Returns (peft model, stats). Base weights are frozen by peft.
    """
    import random

    import torch
    from peft import get_peft_model
    from tqdm.auto import tqdm
    from transformers import get_linear_schedule_with_warmup

    if not examples:
        raise InputError("no training examples (every pair was empty after encoding)")
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    device = _device(cfg)
    model = get_peft_model(model, peft_config(cfg))
    model.to(device)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    n_trainable = sum(p.numel() for p in params)
    n_total = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    per_epoch, total, warmup = schedule_steps(len(examples), cfg)
    sched = get_linear_schedule_with_warmup(opt, warmup, total)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    gen = torch.Generator().manual_seed(cfg.seed)

    step, micro, t0 = 0, 0, time.time()
    losses: list[float] = []
    acc_losses: list[float] = []
    acc_tokens = 0
    bar = tqdm(total=total, desc="train", unit="step", disable=not progress, dynamic_ncols=True)
    n_epochs = math.ceil(cfg.epochs)
    try:
        for epoch in range(n_epochs):
            order = torch.randperm(len(examples), generator=gen).tolist()
            batches = [order[i:i + cfg.batch_size] for i in range(0, len(order), cfg.batch_size)]
            for bi, batch in enumerate(batches):
                if step >= total:
                    break
                ids, labels, mask = collate([examples[i] for i in batch], pad_id)
                ids, labels, mask = ids.to(device), labels.to(device), mask.to(device)
                loss_mb = causal_lm_loss(model, ids, mask, labels)
                (loss_mb / cfg.grad_accum).backward()
                micro += 1
                acc_losses.append(float(loss_mb.detach()))
                acc_tokens += int((labels != IGNORE_INDEX).sum())
                last_of_epoch = bi == len(batches) - 1
                if len(acc_losses) == cfg.grad_accum or last_of_epoch:
                    gnorm = torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                    lr_used = sched.get_last_lr()[0]
                    opt.step()
                    sched.step()
                    opt.zero_grad(set_to_none=True)
                    step += 1
                    loss = sum(acc_losses) / len(acc_losses)
                    losses.append(loss)
                    rec = {"step": step, "epoch": round(epoch + (bi + 1) / len(batches), 4), "loss": loss,
                           "lr": lr_used, "grad_norm": float(gnorm), "label_tokens": acc_tokens,
                           "elapsed_s": round(time.time() - t0, 2)}
                    acc_losses, acc_tokens = [], 0
                    if on_step:
                        on_step(rec)
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss:.4f}")
            if step >= total:
                break
    finally:
        bar.close()
    model.eval()
    stats = {"optimizer_steps": step, "micro_batches": micro, "planned_steps": total, "warmup_steps": warmup,
             "micro_batches_per_epoch": per_epoch, "first_loss": losses[0] if losses else None,
             "final_loss": losses[-1] if losses else None,
             "mean_loss": sum(losses) / len(losses) if losses else None,
             "trainable_params": n_trainable, "total_params": n_total, "device": device,
             "train_seconds": round(time.time() - t0, 2)}
    return model, stats


# --------------------------------------------------------------------------------------------
# The fast path: train, save, record
# --------------------------------------------------------------------------------------------


def training_identity(resolved, cfg: TrainConfig, pairs_info: dict, n_pairs: int) -> dict:
    """What makes two training runs the same run (used to skip a finished one)."""
    return {"model": {"ref": resolved.ref, "file_sha256": resolved.file_sha256}, "train_config": cfg.to_dict(),
            "pairs_sha256": pairs_info.get("sha256"), "pairs_used": n_pairs}


def finished_run(out_dir: str | Path, identity: dict) -> dict | None:
    """The result.json of a finished training run in ``out_dir`` with this identity, else None.

    A directory holding something else raises InputError (never silently overwritten)."""
    import json

    from common.models import ModelError, check_adapter_dir
    from common.results import InputError
    out = Path(out_dir)
    if not out.exists():
        return None
    res_path = out / "result.json"
    if not res_path.is_file():
        if out.is_dir() and not any(out.iterdir()):
            return None
        raise InputError(f"--out {out} exists and is not a finished training run; choose another "
                         f"directory or pass --overwrite")
    res = json.loads(res_path.read_text())
    if res.get("identity") != json.loads(json.dumps(identity)):
        raise InputError(f"--out {out} holds a training run with other settings or pairs; choose another "
                         f"directory or pass --overwrite")
    try:
        check_adapter_dir(str(out))
    except ModelError as e:
        raise InputError(f"--out {out}: result.json present but the adapter is incomplete ({e}); "
                         f"pass --overwrite") from None
    return res


def train_adapter(resolved, pairs: list[dict], pairs_info: dict, cfg: TrainConfig, out_dir: str | Path,
                  invocation, options=None, extra: dict | None = None) -> dict:
    """Train a LoRA adapter on validated ``pairs`` and write it with its log and result.json.

    ``pairs_info`` is :func:`common.pairs.pairs_provenance` of the file the pairs came from (or an
    equivalent dict with at least ``sha256`` and ``count``); ``invocation`` (a
    :class:`common.evaluation.Invocation`) is recorded as provenance; ``options`` (a
    :class:`common.cli.RunOptions`) gives ``overwrite`` and ``progress``; ``extra``: more keys for
    result.json. Returns the result dict; when ``out_dir`` already holds the same finished run,
    returns it unchanged (``"skipped": True``).
    """
    import json

    from common.cli import RunOptions
    from common.models import load_model
    from common.results import JsonlLog, write_json_atomic

    options = options or RunOptions()
    overwrite = options.overwrite
    out = Path(out_dir)
    identity = training_identity(resolved, cfg, pairs_info, len(pairs))
    if overwrite and out.exists():
        if not (out / "result.json").is_file() and not (out / "adapter_config.json").is_file() and any(out.iterdir()):
            from common.results import InputError
            raise InputError(f"--overwrite: {out} does not look like a training output; refusing to delete it")
        shutil.rmtree(out)
    done = finished_run(out, identity)
    if done is not None:
        log.info("training: %s already holds this run; skipped", out)
        return {**done, "skipped": True}

    t_start = time.time()
    model, tok = load_model(resolved, dtype=cfg.dtype, adapter=None)
    load_s = time.time() - t_start
    examples, data_counts = build_examples(tok, pairs, cfg)
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with JsonlLog(tmp / "train_log.jsonl") as lg:
        model, stats = train_lora(model, tok, examples, cfg, on_step=lg.append, progress=options.progress)
    model.save_pretrained(str(tmp))
    result = {
        **invocation.provenance(),
        "identity": json.loads(json.dumps(identity)),
        "model": resolved.provenance(),
        "pairs": pairs_info,
        "train_config": cfg.to_dict(),
        "data": data_counts,
        "stats": stats,
        "timings": {"load_s": round(load_s, 2), "train_s": stats["train_seconds"],
                    "total_s": round(time.time() - t_start, 2)},
        **(extra or {}),
    }
    write_json_atomic(tmp / "result.json", result)
    if out.exists():  # an empty directory
        out.rmdir()
    out.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, out)
    log.info("training: %d steps, final loss %.4f, %.1fs -> %s", stats["optimizer_steps"],
             stats["final_loss"] or float("nan"), stats["train_seconds"], out)
    del model
    return result
