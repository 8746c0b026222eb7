"""LoRA training on repair pairs (or any chat conversations): settings, flags, the two dataset formats, and the fast path
(:func:`train_adapter`) that every script which trains on pairs goes through.

Settings live in :class:`TrainConfig` (defaults = PAPER.md §3: r=16, α=32, dropout 0.05, no bias,
q/k/v/o projections; 2 epochs, lr 1e-4, batch 1 × grad-accum 4, warm-up 5 % then linear decay,
max length 1024). :func:`add_lora_args` builds the flag group from it; :meth:`TrainConfig.from_args`
turns parsed flags back into a config (unknown target names fail when peft wraps the model).

Dataset formats (``--format``), both built here as pre-tokenized examples (``input_ids`` and
``labels``, -100 where no loss falls) that TRL's SFTTrainer uses as they are
(:func:`sft_dataset`, a ``datasets.Dataset``) and the hand-written loop reads directly, so the
two trainers see the same tokens and labels:

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

Trainers (``--trainer``): ``trl`` (default) = TRL's SFTTrainer on peft LoRA
(:mod:`common.training`: bf16 where the device has it, gradient checkpointing, logging every N
steps, checkpoints and ``--resume``, runs under ``accelerate launch``); ``loop`` = the earlier
hand-written single-process loop (:mod:`common.lora_loop`), kept so the two can be compared.

:func:`train_adapter` trains, writes the adapter (peft ``save_pretrained``), ``train_log.jsonl``
and ``result.json`` into one directory that appears only when training finished
(:class:`common.training.AdapterRun`), and skips the work when that directory already holds a
finished run with the same configuration and pairs.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

from common.flags import add_config_flags
from common.results import InputError

log = logging.getLogger(__name__)

FORMATS = ("chat-masked", "raw-markdown")
TRAINERS = ("trl", "loop")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")
IGNORE_INDEX = -100
# settings that change how a run is driven, not what it trains: left out of its identity
RUN_CONTROL = ("logging_steps", "save_steps", "gradient_checkpointing", "resume")


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
    device: str = "auto"
    trainer: str = "trl"
    precision: str = "auto"
    gradient_checkpointing: bool = False
    logging_steps: int = 1
    save_steps: int | None = None
    resume: bool = False

    def __post_init__(self):
        object.__setattr__(self, "lora_targets", tuple(self.lora_targets))
        for ok, msg in self._checks() + self._loop_checks():
            if not ok:
                raise InputError(msg)

    def _checks(self) -> list[tuple[bool, str]]:
        return [
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
            (self.trainer in TRAINERS, f"--trainer must be one of {', '.join(TRAINERS)}, got {self.trainer!r}"),
            (self.precision in PRECISIONS, f"--precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"),
            (self.logging_steps >= 1, f"--logging-steps must be >= 1, got {self.logging_steps}"),
            (self.save_steps is None or self.save_steps >= 1, f"--save-steps must be >= 1, got {self.save_steps}"),
        ]

    def _loop_checks(self) -> list[tuple[bool, str]]:
        """What only the TRL path provides, refused with ``--trainer loop``."""
        if self.trainer != "loop":
            return []
        return [(self.precision in ("auto", "fp32"), "--precision bf16/fp16 needs --trainer trl"),
                (not self.gradient_checkpointing, "--gradient-checkpointing needs --trainer trl"),
                (self.logging_steps == 1, "--logging-steps needs --trainer trl (the loop logs every step)"),
                (self.save_steps is None, "--save-steps needs --trainer trl"),
                (not self.resume, "--resume needs --trainer trl")]

    def to_dict(self) -> dict:
        """The recorded settings (``resume`` is how a process started, not a setting)."""
        d = dataclasses.asdict(self)
        d["lora_targets"] = list(self.lora_targets)
        d.pop("resume")
        return d

    def identity(self) -> dict:
        """The settings that decide what is trained (:data:`RUN_CONTROL` left out)."""
        return {k: v for k, v in self.to_dict().items() if k not in RUN_CONTROL}

    @classmethod
    def from_args(cls, args, **overrides) -> "TrainConfig":
        """From parsed :func:`add_lora_args` flags (+ ``args.dtype`` and the mining ``--system``)."""
        targets = tuple(t.strip() for t in str(args.lora_targets).split(",") if t.strip())
        kw = dict(lora_rank=args.lora_rank, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
                  lora_targets=targets, format=args.format, system=args.system, epochs=args.epochs, lr=args.lr,
                  batch_size=args.batch_size, grad_accum=args.grad_accum, warmup_ratio=args.warmup_ratio,
                  max_length=args.max_length, max_steps=args.max_steps, seed=args.train_seed,
                  dtype=getattr(args, "dtype", "float32"), device=args.device, trainer=args.trainer,
                  precision=args.precision, gradient_checkpointing=args.gradient_checkpointing,
                  logging_steps=args.logging_steps, save_steps=args.save_steps, resume=args.resume)
        return cls(**{**kw, **overrides})


def add_lora_args(p, seed_flag: str = "--train-seed", system_flag: bool = True, format_flag: bool = True,
                  **overrides) -> None:
    """The LoRA/trainer flag group; ``overrides`` change defaults (e.g. lora_rank=32 for multi-pair).

    ``--dtype`` is not part of the group (scripts get it from their model flags). The training
    seed's flag is ``seed_flag`` (``--seed`` where no sampling seed competes for the name); its
    destination is always ``train_seed``. ``system_flag=False`` leaves ``--system`` to another
    group (the mining flags), so mining and training share one system prompt; ``format_flag=False``
    leaves ``--format`` to the script (preference training has formats of its own).
    """
    d = dataclasses.replace(TrainConfig(), **overrides)
    g = p.add_argument_group("LoRA training (defaults: PAPER.md §3)")
    if format_flag:
        g.add_argument("--format", default=d.format, choices=FORMATS,
                       help=f"training text: chat-masked = chat template, loss on the assistant turn only; "
                            f"raw-markdown = the fast path's plain text, loss on every token (default {d.format})")
    add_config_flags(g, d, {"lora_rank": "LoRA rank r", "lora_alpha": "LoRA alpha",
                            "lora_dropout": "dropout on the LoRA input"})
    g.add_argument("--lora-targets", default=",".join(d.lora_targets),
                   help=f"comma-separated module names to adapt (default {','.join(d.lora_targets)})")
    if system_flag:
        g.add_argument("--system", default=d.system,
                       help=f"system prompt of the chat formats; '' for none (default {d.system!r})")
    add_config_flags(g, d, {
        "epochs": "passes over the pairs", "lr": "peak learning rate", "batch_size": "pairs per micro-batch",
        "grad_accum": "micro-batches per optimizer step",
        "warmup_ratio": "fraction of optimizer steps of linear warm-up, then linear decay",
        "max_length": "tokens per example; longer ones are cut at the right",
        "max_steps": "stop after this many optimizer steps (quick runs; default: epochs decide)"})
    g.add_argument(seed_flag, dest="train_seed", type=int, default=d.seed,
                   help=f"training seed: example order and LoRA initialisation (default {d.seed})")
    g.add_argument("--device", default=d.device, choices=("cpu", "cuda", "auto"),
                   help=f"training device; auto = cuda when torch sees one (default {d.device})")
    _add_trainer_args(g, d)


def _add_trainer_args(g, d: TrainConfig) -> None:
    """The trainer flags: TRL or the hand-written loop, precision, checkpoints, logging."""
    g.add_argument("--trainer", default=d.trainer, choices=TRAINERS,
                   help=f"trl = TRL's SFTTrainer (accelerate launch, bf16, checkpoints); loop = the earlier "
                        f"hand-written single-process loop, kept for comparison (default {d.trainer})")
    g.add_argument("--precision", default=d.precision, choices=PRECISIONS,
                   help=f"mixed precision of the TRL trainer; auto = bf16 on a CUDA device that has it, "
                        f"else fp32 (default {d.precision})")
    g.add_argument("--gradient-checkpointing", action="store_true",
                   help="recompute activations in the backward pass (less memory, ~20-30%% slower)")
    add_config_flags(g, d, {"logging_steps": "one train_log.jsonl line per this many optimizer steps",
                            "save_steps": "write a checkpoint every this many optimizer steps into OUT.partial/ "
                                          "(default: none)"})
    g.add_argument("--resume", action="store_true",
                   help="continue an unfinished run from the latest checkpoint in OUT.partial/")


def peft_config(cfg: TrainConfig):
    """The peft LoraConfig of a TrainConfig (causal LM, no bias)."""
    from peft import LoraConfig
    return LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=list(cfg.lora_targets), bias="none", task_type="CAUSAL_LM")


# --------------------------------------------------------------------------------------------
# Dataset
# --------------------------------------------------------------------------------------------


def record_messages(record: dict, system: str | None) -> list[dict]:
    """A training record as chat messages, the last one the assistant turn trained on: a repair
    pair (common/pairs.py; ``system`` as its system prompt) or a conversation record
    ``{"messages": [{"role", "content"}, ...]}`` (math and SSD data), which carries its own
    system message, if any, and ignores ``system``."""
    if "messages" in record:
        msgs = record["messages"]
        if not msgs or msgs[-1].get("role") != "assistant":
            raise InputError("a conversation record must end with the assistant turn it trains on")
        return list(msgs)
    from common.pairs import repair_messages
    return repair_messages(record, system if system else "")


def encode_chat_masked(tokenizer, record: dict, system: str | None, max_length: int) -> dict:
    """input_ids/labels of one record in the chat-masked format (see the module docstring)."""
    msgs = record_messages(record, system)
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


def encode_raw_markdown(tokenizer, record: dict, max_length: int) -> dict:
    """input_ids/labels of one record as plain markdown + EOS, loss on every token (a
    conversation record: its non-system turns joined by blank lines)."""
    if "messages" in record:
        text = "\n\n".join(m["content"] for m in record_messages(record, None) if m["role"] != "system") + "\n"
    else:
        from common.pairs import raw_markdown_text
        text = raw_markdown_text(record)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
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
    """Encode every record (repair pairs or conversation records, :func:`record_messages`);
    returns (examples with labels, counts)."""
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


def sft_dataset(examples: list[dict]):
    """The encoded examples as a ``datasets.Dataset`` of ``input_ids`` and ``labels`` (what TRL's
    SFTTrainer takes as pre-tokenized: labels used as they are, -100 outside the loss)."""
    from datasets import Dataset
    return Dataset.from_dict({"input_ids": [e["input_ids"] for e in examples],
                              "labels": [e["labels"] for e in examples]})


# --------------------------------------------------------------------------------------------
# The fast path: train, save, record
# --------------------------------------------------------------------------------------------


def training_identity(resolved, cfg: TrainConfig, pairs_info: dict, n_pairs: int) -> dict:
    """What makes two training runs the same run (used to skip a finished one)."""
    return {"model": {"ref": resolved.ref, "file_sha256": resolved.file_sha256}, "train_config": cfg.identity(),
            "pairs_sha256": pairs_info.get("sha256"), "pairs_used": n_pairs}


def train_adapter(resolved, pairs: list[dict], pairs_info: dict, cfg: TrainConfig, out_dir: str | Path,
                  invocation, options=None, extra: dict | None = None) -> dict:
    """Train a LoRA adapter on validated ``pairs`` (repair pairs, or conversation records
    ``{"messages": [...]}`` ending with the assistant turn: :func:`record_messages`) and write it
    with its log and result.json.

    ``pairs_info`` is :func:`common.pairs.pairs_provenance` of the file the pairs came from (or an
    equivalent dict with at least ``sha256`` and ``count``); ``invocation`` (a
    :class:`common.evaluation.Invocation`) is recorded as provenance; ``options`` (a
    :class:`common.cli.RunOptions`) gives ``overwrite`` and ``progress``; ``extra``: more keys for
    result.json. Returns the result dict; when ``out_dir`` already holds the same finished run,
    returns it unchanged (``"skipped": True``).
    """
    from common.cli import RunOptions
    from common.training import AdapterRun, fit_sft, train_into

    options = options or RunOptions()
    run = AdapterRun(out_dir, training_identity(resolved, cfg, pairs_info, len(pairs)), options.overwrite, cfg.resume)

    def fit(model, tok):
        examples, data_counts = build_examples(tok, pairs, cfg)
        if cfg.trainer == "loop":
            from common.lora_loop import fit_loop
            return (*fit_loop(model, tok, examples, cfg, run, options.progress), data_counts)
        return (*fit_sft(model, tok, examples, cfg, run, options.progress), data_counts)

    return train_into(run, resolved, cfg, fit, invocation, {"pairs": pairs_info}, extra)


# --------------------------------------------------------------------------------------------
# What the two training scripts share (recipe/train_on_pairs.py, recipe/train_preference.py)
# --------------------------------------------------------------------------------------------


def add_training_script_args(p, what: str) -> None:
    """--model, --dtype, --pairs (``what``: the file's schema), --out, --limit-pairs, --overwrite, --quiet."""
    from common.models import DEFAULT_MODEL, EMBEDDED
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"base model: embedded alias ({', '.join(EMBEDDED)}), checkpoint dir, .gguf file or "
                        f"Hugging Face id (default {DEFAULT_MODEL})")
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"),
                   help="dtype the base weights are loaded in: float32 on CPU, bfloat16 on GPUs (default float32)")
    p.add_argument("--pairs", required=True, help=f"pairs JSONL file ({what})")
    p.add_argument("--out", required=True, help="output directory for the adapter, train_log.jsonl and result.json")
    p.add_argument("--limit-pairs", type=int, default=None, help="train on the first N pairs only")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out directory")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def first_pairs(pairs: list[dict], info: dict, limit: int | None) -> list[dict]:
    """``--limit-pairs``: the first ``limit`` pairs (recorded as ``info["used"]``)."""
    if limit is None:
        return pairs
    if limit < 1:
        raise InputError(f"--limit-pairs must be >= 1, got {limit}")
    info["used"] = min(limit, len(pairs))
    return pairs[:limit]
