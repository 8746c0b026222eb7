"""Self-correction training on math: wrong attempt + reconsider marker + correct continuation (naive), or mixed with right-first-time solutions (fixed).

Paper row: PAPER.md §1 claim 14 (Qwen3-4B base, MATH-500: naive self-correction 299 -> 69;
mixing in right->right traces recovers), PAPER.md §2 "Variants: self-correction"; seed 002's
``experiments/self_correction_math_naive.py`` and ``_fixed.py`` are ``--variant naive`` and
``--variant fixed`` here.

Method, one function per stage (files under results/<run>/, each stage skipped on a rerun once done):
1. pool      ``pool.jsonl``      training problems: the procedural generator with ``--pool-seed``
   (default 1; the evaluation set is seed 0) or ``--train-data``; decontaminated against every
   evaluation set (report in result.json);
2. solve     ``attempts.jsonl``  ``--attempts`` attempts per problem (T=0.8) under the
   evaluation's instruction, graded with math-verify against the gold answer;
3. traces    ``train.jsonl``     for every problem with a wrong and a correct attempt: the first
   wrong attempt, the marker "Wait, that answer is wrong. Let me reconsider the problem.", the
   first correct attempt, as one assistant turn (naive: these only); ``fixed`` adds the first
   correct attempt of up to ``--mix-ratio`` x (number of traces) solved problems as a plain
   right-first-time solution, so the model also sees answers that need no correction;
4. train and evaluate: LoRA (PAPER.md §3), base vs adapter greedily on ``--eval-bench``
   (default the procedural set) paired per task; the result also counts how often each model's
   greedy answers contain the marker (over-correction).

Full commands (embedded 0.5B model, 100 training problems, 8 attempts each):
    python experiments/self_correction_math.py --variant naive --run-name selfcorr_naive_qwen05b
    python experiments/self_correction_math.py --variant fixed --run-name selfcorr_fixed_qwen05b \\
        --base-run results/selfcorr_naive_qwen05b/eval/base
Quick command (SmolLM2-135M, 3 problems; about a minute on 2 CPU cores):
    python experiments/self_correction_math.py --variant fixed --model smollm2-135m-instruct --limit-pool 3 \\
        --attempts 2 --max-new-tokens 48 --limit 2 --eval-max-new-tokens 48 --max-steps 1 --run-name sc_quick

Writes results/<run>/result.json (config, stage counts, decontamination report, records by kind,
training result, base vs adapter accuracy with the paired delta, 95% interval and McNemar p per
verdict, marker counts), the adapter and the evaluations (results/<run>/eval/). Expected runtime
on 2 CPU cores with the 0.5B model: 100 problems x 8 attempts x ~200 tokens at ~100 tokens/s
~27 min, training ~10-20 min, evaluations ~10 min each (--base-run reuses one): ~60 min.

Deviations from the paper: procedural training and evaluation problems stand in for MATH-500
(offline); the marker's wording is ours (the paper's is not published); the fixed variant's mix
ratio is a flag (default 1:1).
"""
from __future__ import annotations

import argparse

VARIANTS = ("naive", "fixed")


def build_parser() -> argparse.ArgumentParser:
    from common.math_recipe import add_math_recipe_args
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    add_math_recipe_args(p, attempts=8, pool=True)
    g = p.add_argument_group("self-correction")
    g.add_argument("--variant", default="naive", choices=VARIANTS,
                   help="naive: correction traces only; fixed: mixed with right-first-time solutions (default naive)")
    g.add_argument("--mix-ratio", type=float, default=1.0,
                   help="fixed variant: right-first-time solutions per correction trace (default 1.0)")
    return p


def main(argv=None) -> int:
    from common.cli import run_main
    return run_main(_main, argv)


def _main(argv) -> int:
    import dataclasses
    import time
    from common.math_recipe import (MathRun, MathSetup, PoolSpec, print_result, solve_stage, train_and_compare,
                                    training_pool, write_result)
    from common.results import InputError, slug
    args = build_parser().parse_args(argv)
    if args.mix_ratio < 0:
        raise InputError(f"--mix-ratio must be >= 0, got {args.mix_ratio}")
    setup = MathSetup.from_args(__file__, argv, args, f"selfcorr_{args.variant}_{slug(args.model)}_pool-s{args.pool_seed}")
    pool = PoolSpec.from_args(args)
    config = setup.config({"pool": dataclasses.asdict(pool), "variant": args.variant, "mix_ratio": args.mix_ratio})
    t0 = time.time()
    run = MathRun.open(setup, config, args.overwrite)
    problems, decon = training_pool(run, pool)                                     # 1. pool
    solved = solve_stage(run, problems)                                            # 2. solve
    records = trace_stage(problems, solved, args.variant, args.mix_ratio)          # 3. traces
    body = train_and_compare(run, records, f"selfcorr-{args.variant}",             # 4. train, evaluate
                             extra={"method": f"self-correction {args.variant}"})
    body["marker_counts"] = marker_counts(body.get("evaluation") or {})
    res = write_result(run, config, {"decontamination": decon, **body}, t0)
    print_result(f"self-correction ({args.variant})", res)
    print(f"  answers with the reconsider marker: {res['marker_counts']}")
    return 0


def trace_stage(problems: list[dict], solved: list[dict], variant: str, mix_ratio: float) -> list[dict]:
    """3. Correction traces (wrong -> marker -> right); ``fixed`` adds right-first-time
    solutions, first those of problems without a trace."""
    from common.math_recipe import correction_record, first_correct, first_wrong, solution_record
    by_id = {p["task_id"]: p for p in problems}
    traces, plain = [], []
    for r in solved:
        right, wrong = first_correct(r), first_wrong(r)
        if right and wrong:
            traces.append(correction_record(by_id[r["task_id"]], wrong["text"], right["text"]))
        if right:
            plain.append((wrong is not None, solution_record(by_id[r["task_id"]], right["text"])))
    if variant == "naive":
        return traces
    plain.sort(key=lambda x: x[0])   # problems solved every time first: they have no trace
    return traces + [rec for _, rec in plain[:int(round(mix_ratio * len(traces)))]]


def marker_counts(evaluation: dict) -> dict:
    """How many greedy answers of each evaluated model contain the reconsider marker."""
    from pathlib import Path
    from common.math_recipe import RECONSIDER
    from common.results import read_jsonl
    marker = RECONSIDER.strip().split(".")[0]
    out = {}
    for name, v in evaluation.items():
        if isinstance(v, dict) and v.get("run_dir"):
            rows = read_jsonl(Path(v["run_dir"]) / "samples.jsonl")
            out[name] = sum(marker in r["completion"] for r in rows)
    return out


if __name__ == "__main__":
    raise SystemExit(main())
