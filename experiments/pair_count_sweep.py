"""Pair-count sweep: train on the first N pairs for several N, evaluate each against the base.

Paper row: PAPER.md §1 claim 4 (Qwen2.5-7B, HumanEval: n=10 -> ~51, n=21 -> 86–95, n=40 ->
95–112 of 164; the guide's Figure 3 loop ``head -n N pairs | train_on_pairs | eval_raw``).

Full command (paper sweep; GPU):
    python experiments/pair_count_sweep.py --model Qwen/Qwen2.5-7B --pairs data/pairs_7b_40.jsonl \\
        --counts 10,21,40 --seed 13 --run-name sweep_7b --dtype bfloat16 --device cuda
Quick command (embedded 0.5B model, 2 and 4 fixture pairs, 2 optimizer steps each, 5 evaluation
tasks, one protocol; ~5–10 min on 2 CPU cores, estimated):
    python experiments/pair_count_sweep.py --pairs tests/fixtures/pairs_valid.jsonl --counts 2,4 \\
        --max-steps 2 --grad-accum 1 --limit 5 --eval-protocols he-chat --run-name sweep_quick

For each N the first N pairs of ``--pairs`` (file order, like ``head -n``) are written to
results/<run>/n<N>/pairs.jsonl and trained with common.lora.train_adapter (all arms share the
LoRA flags and ``--seed``; an arm already trained is skipped); the base model is evaluated once,
each adapter on the same tasks, and each adapter is compared with the base (paired delta, 95%
bootstrap CI, McNemar p). results/<run>/result.json holds the table per protocol. Expect per
arm the time of recipe/train_on_pairs.py plus one evaluation per protocol.

Deviations from the paper:
1. Paired comparisons with intervals instead of single counts; everything else as the fast path
   (recipe/train_on_pairs.py, whose deviations apply).
"""
from __future__ import annotations

import argparse


def build_parser() -> argparse.ArgumentParser:
    from common.compare import add_training_path_args
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--pairs", required=True, help="pairs JSONL file; arms take its first N lines")
    p.add_argument("--counts", default="10,21,40", help="comma-separated pair counts N (default 10,21,40)")
    add_training_path_args(p, seed_flag="--seed")
    return p


def main(argv=None) -> int:
    from common.cli import run_main
    return run_main(_main, argv)


def count_arms(pairs: list[dict], counts: list[int], cfg, path: str) -> list[tuple[str, list[dict], object]]:
    """One arm per N: the first N pairs of ``path`` (file order, like ``head -n``), all with the
    same training settings ``cfg``."""
    from common.results import InputError
    too_many = [n for n in counts if n > len(pairs)]
    if too_many:
        raise InputError(f"--counts {too_many} exceed the {len(pairs)} pairs in {path}")
    return [(f"n{n}", pairs[:n], cfg) for n in counts]


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    from common.compare import TrainEvalSetup
    from common.pairs import load_pairs, pairs_provenance
    from common.sweeps import parse_int_list, print_table, run_sweep
    counts = parse_int_list(args.counts, "--counts", minimum=1)
    setup = TrainEvalSetup.from_args(__file__, argv, args)
    pairs = load_pairs(args.pairs)
    res = run_sweep(setup, "pair_count_sweep", count_arms(pairs, counts, setup.train, args.pairs),
                    pairs_provenance(args.pairs, pairs), {"counts": counts})
    print_table(res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
