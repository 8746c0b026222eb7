"""Fast path: train a LoRA adapter on a file of repair pairs (TRL's SFTTrainer on peft LoRA).

Paper rows: PAPER.md §1 claim 3 (Qwen2.5-7B base, 40 pairs, r16, seeds 7/13/42: HumanEval
25 -> 104 / 112 / 95) and claim 1 (14B, 100 pairs, r32); the training step behind claims 4, 6, 10
and 11. Evaluate the adapter with ``evals/eval_raw.py --adapter DIR`` or ``evals/confirm.py``.

Full command (paper settings: r16/α32, q/k/v/o, 2 epochs, lr 1e-4, batch 1 × accum 4, max 1024),
on GPUs (bf16 is chosen where the device has it; several GPUs: data parallel):
    accelerate launch --num_processes 2 recipe/train_on_pairs.py --model Qwen/Qwen2.5-7B \\
        --pairs data/pairs_7b_40.jsonl --seed 13 --out adapters/7b_seed13 --gradient-checkpointing \\
        --save-steps 5
Quick command (embedded 0.5B model, 4 pairs, 2 optimizer steps; ~30 s on a busy 2-core machine):
    python recipe/train_on_pairs.py --pairs tests/fixtures/pairs_valid.jsonl --out /tmp/adapter_quick \\
        --max-steps 2 --grad-accum 1
The original fast-path format (loss on every token, PAPER.md §4 defect 8), for comparison:
    python recipe/train_on_pairs.py --pairs PAIRS --out DIR --format raw-markdown
The earlier hand-written loop, for the TRL-vs-loop comparison on the same pairs and seed:
    python recipe/train_on_pairs.py --pairs PAIRS --out DIR --trainer loop

The pairs file is validated first: any malformed line (bad JSON, a missing or empty field,
tests that are not asserts, a ``fixed`` that does not parse) stops the script with one error
line naming every bad line, and nothing is written. ``--out DIR`` then receives the adapter
(``adapter_config.json``, ``adapter_model.safetensors``), ``train_log.jsonl`` (loss, learning
rate and gradient norm per logged optimizer step, plus TRL's token accuracy and entropy) and
``result.json`` (provenance, the pairs file's path/sha256/count, every hyperparameter,
first/final/mean loss, token counts, timings). The directory appears only when training
finished (until then the run lives in ``DIR.partial/``); rerunning the same command on a finished
directory does nothing. ``--save-steps N`` writes a checkpoint every N optimizer steps and
``--resume`` continues an interrupted run from the latest one. On a shared CPU machine set
``OMP_NUM_THREADS=1``: oversubscribed torch threads slowed our runs tenfold.

Trainers. ``--trainer trl`` (default): TRL's SFTTrainer on the pre-tokenized examples of
``common.lora`` (input_ids + labels, used as they are), LoRA from peft, the Trainer's AdamW,
linear schedule and clipping, its label-position-only LM head. ``--trainer loop``: the earlier
hand-written loop (``common/lora_loop.py``), one process, the same examples, optimizer,
schedule and clipping. What differs between the two: the Trainer divides the summed token
losses of an optimizer step by its label-token count (the loop averages each micro-batch's mean),
and it draws the example order from its own seeded sampler.

What was run and what could not be: the TRL path on CPU (float32), as one process and under
``accelerate launch --num_processes 1`` (tests/test_training.py), with checkpoints and resume;
the committed 58-pair training (results/train_multi_ext_qwen05b, 933 s, loss 0.300 -> 0.142)
used the loop. On a lent NVIDIA H200 (torch 2.11 + CUDA 13, transformers 5.17, TRL 1.16),
tests/test_gpu_path.py ran this script and recipe/train_preference.py with ``--device cuda
--precision bf16 --gradient-checkpointing``, once under ``accelerate launch --mixed_precision
bf16``, on a tiny random checkpoint built in the test (code path only; results/gpu_path_check).
Several processes (GPUs) and fp16 have not been run.

Deviations from the paper:
1. The default format masks the prompt (loss on the assistant turn only), as the scripts behind
   the published numbers did; the released fast path's format is ``--format raw-markdown``,
   which is still not padded to the maximum length (PAPER.md §4 defect 8).
2. Training is seeded (``--seed``; order and LoRA initialisation); the original was not (defect 9).
"""
from __future__ import annotations

import argparse


def build_parser() -> argparse.ArgumentParser:
    from common.cli import accept_seed_spellings
    from common.lora import add_lora_args, add_training_script_args
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    add_training_script_args(p, "{signature, tests, broken, error, fixed}")
    add_lora_args(p, seed_flag="--seed")
    accept_seed_spellings(p)
    return p


def main(argv=None) -> int:
    from common.cli import run_main
    return run_main(_main, argv)


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    from common.cli import RunOptions
    from common.evaluation import Invocation
    from common.lora import TrainConfig, first_pairs, train_adapter
    from common.models import resolve_model
    from common.pairs import load_pairs, pairs_provenance

    cfg = TrainConfig.from_args(args)
    pairs = load_pairs(args.pairs)          # names every malformed line; nothing written before this
    info = pairs_provenance(args.pairs, pairs)
    pairs = first_pairs(pairs, info, args.limit_pairs)
    res = train_adapter(resolve_model(args.model), pairs, info, cfg, args.out, Invocation(__file__, argv, vars(args)),
                        RunOptions(overwrite=args.overwrite, progress=not args.quiet))
    s = res["stats"]
    print(f"\n{'already trained' if res.get('skipped') else 'trained'}: {len(pairs)} pairs, "
          f"{s['optimizer_steps']} steps, loss {s['first_loss']:.4f} -> {s['final_loss']:.4f} "
          f"(mean {s['mean_loss']:.4f})\n  adapter: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
