"""What every adapter trainer shares: where a training run writes, the transformers/TRL arguments
of a :class:`common.lora.TrainConfig`, the per-step log, the stats, and supervised fine-tuning
through TRL's ``SFTTrainer``. Used by ``common.lora.train_adapter`` (every script that trains on
repair pairs) and by ``recipe/train_preference.py`` (DPO and ORPO).

The output directory (:class:`AdapterRun`)
------------------------------------------
``OUT/`` appears only when training finished: the peft adapter (``adapter_config.json``,
``adapter_model.safetensors``), ``train_log.jsonl`` (one line per logged optimizer step) and
``result.json``. Until then the run lives in the sibling ``OUT.partial/``: its lock, the run's
identity, the log as it grows, ``checkpoint-N/`` (every ``--save-steps`` optimizer steps) and
``final/``, renamed to ``OUT`` at the end. Rerunning a finished run with the same identity does
nothing; with another identity it is refused. A ``.partial`` directory that holds checkpoints is
continued by ``--resume`` (from its latest checkpoint, the log cut back to that step) and
refused without it (``--overwrite`` starts again).

TrainConfig → TrainingArguments (:func:`trainer_args`)
-------------------------------------------------------
``batch_size`` → ``per_device_train_batch_size``, ``grad_accum`` → ``gradient_accumulation_steps``,
``epochs`` → ``num_train_epochs``, ``max_steps`` → ``max_steps``, ``lr`` → ``learning_rate``
(linear decay, AdamW without weight decay, clipping ``max_grad_norm``), ``warmup_ratio`` →
``warmup_steps`` (a fraction: ``ceil(ratio × steps)``), ``seed`` → ``seed`` and ``data_seed``,
``logging_steps``, ``save_steps`` (→ ``save_strategy="steps"``), ``gradient_checkpointing``,
``precision`` → ``bf16``/``fp16`` (``auto``: bf16 on a CUDA device that supports it, else
float32), ``device`` → ``use_cpu``. Several processes (``accelerate launch``) each take
``batch_size`` examples per micro-batch; only the main process writes.
"""
from __future__ import annotations

import gc
import json
import logging
import math
import os
import shutil
import time
from pathlib import Path

from common.results import InputError

log = logging.getLogger(__name__)

CHECKPOINT_PREFIX = "checkpoint-"


def world_size() -> int:
    """Processes of this training run (``accelerate launch`` / torchrun set ``WORLD_SIZE``)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    """The process that writes files (rank 0; the only one without a launcher)."""
    return int(os.environ.get("RANK", "0")) == 0


def free_memory() -> None:
    """Give back what a finished training held (CUDA's cache included)."""
    gc.collect()
    import torch
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# --------------------------------------------------------------------------------------------
# The output directory
# --------------------------------------------------------------------------------------------


def finished_run(out_dir: str | Path, identity: dict) -> dict | None:
    """The result.json of a finished training run in ``out_dir`` with this identity, else None.

    A directory holding something else raises InputError (never silently overwritten)."""
    from common.models import ModelError, check_adapter_dir
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


def checkpoints(work: Path) -> list[Path]:
    """``checkpoint-N`` directories of a work directory, by step."""
    found = [p for p in Path(work).glob(CHECKPOINT_PREFIX + "*")
             if p.is_dir() and p.name[len(CHECKPOINT_PREFIX):].isdigit()]
    return sorted(found, key=lambda p: int(p.name[len(CHECKPOINT_PREFIX):]))


class AdapterRun:
    """One training run's output directory ``out`` and its work directory ``out.partial`` (see the
    module docstring). :meth:`begin` decides skip / fresh start / resume; the trainer writes the
    adapter into :attr:`final` and the log into :attr:`log_path`; :meth:`finish` writes result.json
    and renames."""

    def __init__(self, out_dir: str | Path, identity: dict, overwrite: bool = False, resume: bool = False):
        self.out = Path(out_dir)
        self.identity = json.loads(json.dumps(identity))
        self.overwrite, self.resume = overwrite, resume
        self.work = self.out.with_name(self.out.name + ".partial")
        self.final = self.work / "final"
        self.log_path = self.work / "train_log.jsonl"
        self.checkpoint: str | None = None

    def begin(self) -> dict | None:
        """The finished run's result (nothing to do), else None with the work directory ready."""
        saved = []
        if self.overwrite:
            self._wipe()
        else:
            done = finished_run(self.out, self.identity)
            if done is not None:
                return done
            saved = self._check_work()
        if is_main_process():
            self._prepare_work(saved)
        return None

    def _wipe(self) -> None:
        out = self.out
        if out.exists() and not (out / "result.json").is_file() and not (out / "adapter_config.json").is_file() \
                and any(out.iterdir()):
            raise InputError(f"--overwrite: {out} does not look like a training output; refusing to delete it")
        if is_main_process():
            shutil.rmtree(out, ignore_errors=True)
            shutil.rmtree(self.work, ignore_errors=True)

    def _check_work(self) -> list[Path]:
        """Read-only checks of a work directory left by an unfinished run; its checkpoints (a run
        that stopped before its first checkpoint leaves nothing to continue: it starts again)."""
        ident = self.work / "identity.json"
        saved = checkpoints(self.work)
        if saved and ident.is_file() and json.loads(ident.read_text()) != self.identity:
            raise InputError(f"{self.work} holds checkpoints of an unfinished training run with other settings "
                             f"or pairs; pass --overwrite to start again")
        if saved and not self.resume:
            raise InputError(f"{self.work} holds {saved[-1].name} of an unfinished training run: pass --resume "
                             f"to continue from it, or --overwrite to start again")
        if saved:
            self.checkpoint = str(saved[-1])
        return saved

    def _prepare_work(self, saved: list[Path]) -> None:
        from common.results import read_jsonl, write_json_atomic, write_jsonl_atomic
        from common.rundir import lock_run_dir
        lock_run_dir(self.work)
        shutil.rmtree(self.final, ignore_errors=True)
        if saved:
            step = int(saved[-1].name[len(CHECKPOINT_PREFIX):])
            rows = read_jsonl(self.log_path) if self.log_path.is_file() else []
            write_jsonl_atomic(self.log_path, [r for r in rows if r.get("step", 0) <= step])
            log.info("training: resuming %s from %s", self.out, saved[-1].name)
        else:
            self.log_path.unlink(missing_ok=True)
        write_json_atomic(self.work / "identity.json", self.identity)

    def finish(self, result: dict) -> None:
        """Main process: result.json and the log beside the adapter in ``final/``, renamed to ``out``."""
        from common.results import write_json_atomic
        from common.rundir import release_run_dir
        if not is_main_process():
            return
        if self.log_path.is_file():
            os.replace(self.log_path, self.final / "train_log.jsonl")
        write_json_atomic(self.final / "result.json", result)
        if self.out.exists():  # an empty directory
            self.out.rmdir()
        self.out.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.final, self.out)
        release_run_dir(self.work)
        shutil.rmtree(self.work, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# TrainingArguments, the step log, the stats
# --------------------------------------------------------------------------------------------


def resolve_device(cfg) -> str:
    """The device of a TrainConfig: ``auto`` is cuda when torch sees one."""
    import torch
    if cfg.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA device visible to torch")
    return cfg.device


def resolve_precision(cfg, device: str) -> str:
    """fp32, bf16 or fp16: ``auto`` is bf16 where the CUDA device supports it, else fp32."""
    import torch
    if cfg.precision == "auto":
        return "bf16" if device == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    if cfg.precision == "fp16" and device == "cpu":
        raise InputError("--precision fp16 needs a GPU; use fp32 or bf16 on CPU")
    return cfg.precision


def trainer_args(cfg, work: Path, progress: bool) -> dict:
    """Keyword arguments common to SFTConfig, DPOConfig and ORPOConfig (see the module docstring)."""
    device = resolve_device(cfg)
    precision = resolve_precision(cfg, device)
    return dict(output_dir=str(work), per_device_train_batch_size=cfg.batch_size,
                gradient_accumulation_steps=cfg.grad_accum, num_train_epochs=cfg.epochs,
                max_steps=cfg.max_steps if cfg.max_steps is not None else -1, learning_rate=cfg.lr,
                lr_scheduler_type="linear", warmup_steps=cfg.warmup_ratio, weight_decay=0.0, optim="adamw_torch",
                max_grad_norm=cfg.max_grad_norm, seed=cfg.seed, data_seed=cfg.seed, logging_steps=cfg.logging_steps,
                save_strategy="steps" if cfg.save_steps else "no", save_steps=cfg.save_steps or 500,
                bf16=precision == "bf16", fp16=precision == "fp16",
                gradient_checkpointing=cfg.gradient_checkpointing,
                gradient_checkpointing_kwargs={"use_reentrant": False} if cfg.gradient_checkpointing else None,
                use_cpu=device == "cpu", dataloader_pin_memory=device != "cpu", report_to="none",
                disable_tqdm=not progress, max_length=cfg.max_length)


def _step_log_class():
    from transformers import TrainerCallback

    class StepLog(TrainerCallback):
        """``train_log.jsonl`` rows as the trainer logs (main process), and micro-batch counts."""

        def __init__(self, path: Path):
            from common.results import JsonlLog
            self.log = JsonlLog(path) if is_main_process() else None
            self.t0 = time.time()
            self.micro = 0

        def on_substep_end(self, train_args, state, control, **kw):
            self.micro += 1

        def on_step_end(self, train_args, state, control, **kw):
            self.micro += 1

        def on_log(self, train_args, state, control, logs=None, **kw):
            if self.log is None or not logs or "loss" not in logs:
                return
            row = {"step": state.global_step, "epoch": round(state.epoch or 0.0, 4), "loss": logs["loss"],
                   "lr": logs.get("learning_rate"), "grad_norm": logs.get("grad_norm")}
            row.update({k: v for k, v in logs.items() if k not in ("loss", "learning_rate", "grad_norm", "epoch")})
            row["elapsed_s"] = round(time.time() - self.t0, 2)
            self.log.append(row)

        def close(self):
            if self.log is not None:
                self.log.close()

    return StepLog


def score_label_positions_only() -> None:
    """Let TRL's fused LM head project only the positions that carry a label on CPU too.

    TRL 1.16 (``trl.trainer.utils``) scores only label positions on CUDA/XPU and every position
    elsewhere, to keep tile shapes fixed for compiling backends. On CPU (eager) the label-only
    path gives the same loss and skips the vocabulary projection of every prompt token, which is
    what kept the hand-written loop fast: 8 steps of SmolLM2-135M on the 4 fixture pairs took
    14.6 s with every position scored, 11.0 s label-only, 10.4 s in the loop (same machine, same
    losses). tests/test_training.py checks that both give the same loss."""
    import trl.trainer.utils as tu
    original = tu._use_triton
    if getattr(original, "label_positions_on_cpu", False):
        return

    def use_compact(device) -> bool:
        return device.type == "cpu" or original(device)

    use_compact.label_positions_on_cpu = True
    tu._use_triton = use_compact


def fit(trainer, cfg, run: AdapterRun, n_examples: int) -> dict:
    """Train (from ``run.checkpoint`` when resuming), write the adapter into ``run.final``; stats."""
    from transformers import PrinterCallback
    trainer.remove_callback(PrinterCallback)      # the log goes to train_log.jsonl, not stdout
    step_log = _step_log_class()(run.log_path)
    trainer.add_callback(step_log)
    t0 = time.time()
    try:
        output = trainer.train(resume_from_checkpoint=run.checkpoint)
    finally:
        step_log.close()
    train_s = round(time.time() - t0, 2)
    save_adapter(trainer, run.final)
    from common.results import read_jsonl
    rows = read_jsonl(run.log_path) if is_main_process() and run.log_path.is_file() else []
    losses = [r["loss"] for r in rows]
    model, state, args = trainer.model, trainer.state, trainer.args
    return {"trainer": "trl", "optimizer_steps": state.global_step, "micro_batches": step_log.micro,
            "planned_steps": state.max_steps, "warmup_steps": args.get_warmup_steps(state.max_steps),
            "micro_batches_per_epoch": math.ceil(n_examples / (cfg.batch_size * world_size())),
            "first_loss": losses[0] if losses else None, "final_loss": losses[-1] if losses else None,
            "mean_loss": sum(losses) / len(losses) if losses else None, "train_loss": output.training_loss,
            "logged_steps": len(losses), "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "total_params": sum(p.numel() for p in model.parameters()), "device": str(args.device),
            "precision": "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32",
            "gradient_checkpointing": bool(args.gradient_checkpointing), "processes": world_size(),
            "resumed_from": Path(run.checkpoint).name if run.checkpoint else None, "train_seconds": train_s}


def save_adapter(trainer, path: Path) -> None:
    """The trained adapter (peft ``save_pretrained``) from the main process; the state dict is
    gathered on every process first (needed when FSDP or DeepSpeed shard the model)."""
    acc = trainer.accelerator
    state = acc.get_state_dict(trainer.model)
    if acc.is_main_process:
        acc.unwrap_model(trainer.model).save_pretrained(str(path), state_dict=state)
    acc.wait_for_everyone()


def train_into(run: AdapterRun, resolved, cfg, fit_fn, invocation, inputs: dict, extra: dict | None = None) -> dict:
    """The body every training shares: skip a finished ``run``; else load the base model
    (``cfg.dtype``), ``fit_fn(model, tokenizer)`` -> (trained model, stats, data counts), and write
    result.json (provenance, identity, model, settings, ``inputs`` such as the pairs' provenance
    (a ``train_config`` there replaces ``cfg.to_dict()``), data counts, stats, timings, ``extra``)
    with the adapter. Returns the result dict."""
    from common.models import load_model
    done = run.begin()
    if done is not None:
        log.info("training: %s already holds this run; skipped", run.out)
        return {**done, "skipped": True}
    t_start = time.time()
    model, tok = load_model(resolved, dtype=cfg.dtype, adapter=None)
    load_s = time.time() - t_start
    model, stats, data_counts = fit_fn(model, tok)
    result = {**invocation.provenance(), "identity": run.identity, "model": resolved.provenance(),
              "train_config": cfg.to_dict(), **inputs, "data": data_counts, "stats": stats,
              "timings": {"load_s": round(load_s, 2), "train_s": stats["train_seconds"],
                          "total_s": round(time.time() - t_start, 2)}, **(extra or {})}
    run.finish(result)
    log.info("training: %d steps, final loss %.4f, %.1fs -> %s", stats["optimizer_steps"],
             stats["final_loss"] or float("nan"), stats["train_seconds"], run.out)
    del model
    free_memory()
    return result


def fit_sft(model, tokenizer, examples: list[dict], cfg, run: AdapterRun, progress: bool = True):
    """Supervised fine-tuning through TRL's SFTTrainer on pre-tokenized examples
    (``common.lora.build_examples``: ``input_ids`` and ``labels``, -100 where no loss falls,
    used as they are). Returns (peft model, stats)."""
    from transformers import set_seed
    from trl import SFTConfig, SFTTrainer

    from common.lora import peft_config, sft_dataset
    if not examples:
        raise InputError("no training examples (every pair was empty after encoding)")
    score_label_positions_only()
    set_seed(cfg.seed)                 # LoRA initialisation happens inside the trainer's constructor
    args = SFTConfig(**trainer_args(cfg, run.work, progress), packing=False, dataset_num_proc=None)
    trainer = SFTTrainer(model=model, args=args, train_dataset=sft_dataset(examples), processing_class=tokenizer,
                         peft_config=peft_config(cfg))
    stats = fit(trainer, cfg, run, len(examples))
    model = trainer.model
    model.eval()
    del trainer
    return model, stats
