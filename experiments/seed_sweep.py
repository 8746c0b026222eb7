"""Seed sweep: the same pairs trained with several seeds, each adapter evaluated against the base.

Paper row: PAPER.md §1 claim 3 (Qwen2.5-7B base, 40 pairs, r16, seeds 7/13/42: HumanEval
25 -> 104 / 112 / 95) and the guide's note that LoRA training is seed-sensitive at small N.

Full command (paper seeds; GPU):
    python experiments/seed_sweep.py --model Qwen/Qwen2.5-7B --pairs data/pairs_7b_40.jsonl \\
        --seeds 7,13,42 --run-name seeds_7b --dtype bfloat16 --device cuda
Quick command (embedded 0.5B model, 4 fixture pairs, 2 seeds, 2 optimizer steps each, 5
evaluation tasks, one protocol; ~5–10 min on 2 CPU cores, estimated):
    python experiments/seed_sweep.py --pairs tests/fixtures/pairs_valid.jsonl --seeds 7,13 \\
        --max-steps 2 --grad-accum 1 --limit 5 --eval-protocols he-chat --run-name seeds_quick

Each seed sets the training seed (example order and LoRA initialisation) of one arm,
results/<run>/seed<k>/; the pairs and every other setting are shared. The base model is
evaluated once; each adapter is compared with it on the same tasks (paired delta, 95% CI,
McNemar p). results/<run>/result.json holds the table per protocol and the spread across
seeds. Expect per seed the time of recipe/train_on_pairs.py plus one evaluation per protocol.

Deviations from the paper:
1. The original trainer was unseeded (PAPER.md §4 defect 9); here the seed fully determines
   training on CPU (GPU kernels may still be nondeterministic).
"""
from __future__ import annotations

import argparse


def build_parser() -> argparse.ArgumentParser:
    from common.compare import add_training_path_args
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--pairs", required=True, help="pairs JSONL file shared by every arm")
    p.add_argument("--seeds", default="7,13,42", help="comma-separated training seeds (default 7,13,42)")
    p.add_argument("--limit-pairs", type=int, default=None, help="use the first N pairs only")
    add_training_path_args(p)
    p.set_defaults(train_seed=None)  # the seeds come from --seeds
    return p


def main(argv=None) -> int:
    from common.cli import run_main
    return run_main(_main, argv)


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    import dataclasses

    from common.compare import TrainEvalSetup
    from common.pairs import load_pairs, pairs_provenance
    from common.results import InputError
    from common.sweeps import parse_int_list, print_table, run_sweep
    seeds = parse_int_list(args.seeds, "--seeds", minimum=0)
    if args.train_seed is not None:
        raise InputError("--train-seed: this sweep sets the training seed per arm; use --seeds")
    if args.limit_pairs is not None and args.limit_pairs < 1:
        raise InputError(f"--limit-pairs must be >= 1, got {args.limit_pairs}")
    args.train_seed = seeds[0]                       # recorded with the flags; each arm sets its own
    setup = TrainEvalSetup.from_args(__file__, argv, args)
    pairs = load_pairs(args.pairs)
    info = pairs_provenance(args.pairs, pairs)
    arms = [(f"seed{s}", pairs[:args.limit_pairs], dataclasses.replace(setup.train, seed=s)) for s in seeds]
    res = run_sweep(setup, "seed_sweep", arms, info, {"seeds": seeds, "limit_pairs": args.limit_pairs})
    print_table(res)
    for proto, rows in res["table"].items():
        vals = [r["pass@1"] for r in rows]
        print(f"  [{proto}] spread across seeds: {100 * min(vals):.1f}% .. {100 * max(vals):.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
