"""The hand-written LoRA training loop (``--trainer loop``), kept beside the TRL path of
:mod:`common.training` so the two can be compared on the same pairs, seed and examples.

torch AdamW (weight decay 0, gradient clipping 1.0, as transformers' Trainer),
``get_linear_schedule_with_warmup`` with ``ceil(5 % × optimizer steps)`` warm-up steps (as the
Trainer: the first optimizer step therefore runs at learning rate 0 whenever there is warm-up),
batches padded to their longest member, loss = mean over label tokens of each micro-batch
divided by ``grad_accum`` (the Trainer instead divides the summed token losses of a whole
optimizer step by its label-token count), a last partial accumulation still makes a step.
Seeded (example order and LoRA initialisation). The LM head runs on label positions only
(:func:`causal_lm_loss`). One process only: ``accelerate launch`` with several processes,
bf16 mixed precision, gradient checkpointing and checkpoints are the TRL path's.
"""
from __future__ import annotations

import math
import time

from common.results import InputError

IGNORE_INDEX = -100


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


def causal_lm_loss(model, input_ids, attention_mask, labels):
    """Mean next-token cross-entropy over the label tokens, the LM head applied only where a label is.

    Equal to ``model(input_ids, attention_mask=..., labels=...).loss`` of a transformers causal LM
    (labels shifted left by one, -100 ignored, mean over the remaining tokens, logits in float32),
    but the vocabulary projection runs on the label positions only: in the masked chat format
    most positions are prompt tokens, and for a 0.5B model with a 152k vocabulary the LM head is
    about a quarter of the forward pass (TRL's SFTTrainer does the same with its fused LM head).
    Falls back to the model's own loss for models without the usual ``<causal lm>.model`` /
    ``.lm_head`` layout.
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


def schedule_steps(n_examples: int, cfg) -> tuple[int, int, int]:
    """(micro-batches per epoch, optimizer steps, warm-up steps) of a TrainConfig."""
    per_epoch = math.ceil(n_examples / cfg.batch_size)
    steps_per_epoch = math.ceil(per_epoch / cfg.grad_accum)
    total = math.ceil(steps_per_epoch * cfg.epochs)
    if cfg.max_steps is not None:
        total = min(total, cfg.max_steps)
    return per_epoch, total, math.ceil(cfg.warmup_ratio * total)


def train_lora(model, tokenizer, examples: list[dict], cfg, on_step=None, progress: bool = True):
    """Wrap ``model`` with a fresh LoRA adapter and train it on encoded ``examples`` (a TrainConfig ``cfg``).

    ``on_step(record)`` receives one dict per optimizer step (step, epoch, loss, lr, grad_norm,
    tokens, elapsed_s). Returns (peft model, stats). Base weights are frozen by peft.
    """
    import random

    import torch
    from peft import get_peft_model
    from transformers import get_linear_schedule_with_warmup

    from common.lora import peft_config
    from common.training import resolve_device
    if not examples:
        raise InputError("no training examples (every pair was empty after encoding)")
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg)
    model = get_peft_model(model, peft_config(cfg))
    model.to(device)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    per_epoch, total, warmup = schedule_steps(len(examples), cfg)
    sched = get_linear_schedule_with_warmup(opt, warmup, total)
    state = _LoopState(model, tokenizer, params, opt, sched, device, cfg, on_step)
    t0 = time.time()
    state.run(examples, total, progress)
    model.eval()
    losses = state.losses
    stats = {"trainer": "loop", "optimizer_steps": state.step, "micro_batches": state.micro, "planned_steps": total,
             "warmup_steps": warmup, "micro_batches_per_epoch": per_epoch,
             "first_loss": losses[0] if losses else None, "final_loss": losses[-1] if losses else None,
             "mean_loss": sum(losses) / len(losses) if losses else None,
             "trainable_params": sum(p.numel() for p in params),
             "total_params": sum(p.numel() for p in model.parameters()), "device": device,
             "train_seconds": round(time.time() - t0, 2)}
    return model, stats


class _LoopState:
    """The loop's moving parts: one :meth:`micro_step` per micro-batch, :meth:`optimizer_step`
    after ``grad_accum`` of them (or at an epoch's end)."""

    def __init__(self, model, tokenizer, params, opt, sched, device, cfg, on_step):
        import torch
        self.model, self.params, self.opt, self.sched, self.device, self.cfg = model, params, opt, sched, device, cfg
        self.on_step = on_step
        tok = tokenizer
        self.pad_id = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.step, self.micro, self.t0 = 0, 0, time.time()
        self.losses: list[float] = []
        self.acc_losses: list[float] = []
        self.acc_tokens = 0

    def run(self, examples: list[dict], total: int, progress: bool) -> None:
        import torch
        from tqdm.auto import tqdm
        cfg = self.cfg
        bar = tqdm(total=total, desc="train", unit="step", disable=not progress, dynamic_ncols=True)
        try:
            for epoch in range(math.ceil(cfg.epochs)):
                order = torch.randperm(len(examples), generator=self.gen).tolist()
                batches = [order[i:i + cfg.batch_size] for i in range(0, len(order), cfg.batch_size)]
                for bi, batch in enumerate(batches):
                    if self.step >= total:
                        break
                    self.micro_step([examples[i] for i in batch])
                    if len(self.acc_losses) == cfg.grad_accum or bi == len(batches) - 1:
                        loss = self.optimizer_step(round(epoch + (bi + 1) / len(batches), 4))
                        bar.update(1)
                        bar.set_postfix(loss=f"{loss:.4f}")
                if self.step >= total:
                    break
        finally:
            bar.close()

    def micro_step(self, batch: list[dict]) -> None:
        ids, labels, mask = (t.to(self.device) for t in collate(batch, self.pad_id))
        loss_mb = causal_lm_loss(self.model, ids, mask, labels)
        (loss_mb / self.cfg.grad_accum).backward()
        self.micro += 1
        self.acc_losses.append(float(loss_mb.detach()))
        self.acc_tokens += int((labels != IGNORE_INDEX).sum())

    def optimizer_step(self, epoch: float) -> float:
        import torch
        gnorm = torch.nn.utils.clip_grad_norm_(self.params, self.cfg.max_grad_norm)
        lr_used = self.sched.get_last_lr()[0]
        self.opt.step()
        self.sched.step()
        self.opt.zero_grad(set_to_none=True)
        self.step += 1
        loss = sum(self.acc_losses) / len(self.acc_losses)
        self.losses.append(loss)
        rec = {"step": self.step, "epoch": epoch, "loss": loss, "lr": lr_used, "grad_norm": float(gnorm),
               "label_tokens": self.acc_tokens, "elapsed_s": round(time.time() - self.t0, 2)}
        self.acc_losses, self.acc_tokens = [], 0
        if self.on_step:
            self.on_step(rec)
        return loss


def fit_loop(model, tokenizer, examples: list[dict], cfg, run, progress: bool = True):
    """``--trainer loop``: :func:`train_lora` with its log in ``run.log_path`` and the adapter
    written into ``run.final`` (a :class:`common.training.AdapterRun`). Returns (peft model, stats)."""
    from common.results import JsonlLog
    from common.training import world_size
    if world_size() > 1:
        raise InputError("--trainer loop trains in one process; under accelerate launch with several "
                         "processes use --trainer trl")
    with JsonlLog(run.log_path) as lg:
        model, stats = train_lora(model, tokenizer, examples, cfg, on_step=lg.append, progress=progress)
    model.save_pretrained(str(run.final))
    return model, stats
