"""STaR baseline (rejection-sampling fine-tuning): keep the first correct chain per training problem, train.

Paper row: the related-work baseline of seed 002 ("STaR / rejection-sampling FT on GSM8K",
``experiments/star_baseline_gsm8k.py``), the comparison point for claim 5 (PAPER.md §1: the math
curriculum, GSM8K 32 -> 66) and PAPER.md §2 "Variants: STaR baseline".

Method, one function per stage (files under results/<run>/, each stage skipped on a rerun once done):
1. pool      ``pool.jsonl``      training problems with known answers: the procedural generator
   (common/mathgen.py) with ``--pool-seed`` (default 1; the evaluation set is seed 0), or
   ``--train-data`` (a GSM8K-schema file, e.g. GSM8K train); decontaminated against every
   evaluation set (exact text, 13-gram overlap; report in result.json);
2. solve     ``attempts.jsonl``  ``--attempts`` chains per problem (T=0.8, top-p 0.95) under the
   evaluation's instruction ("... End with the answer on a new line as: #### <number>"), each
   graded against the gold answer with math-verify;
3. keep      ``train.jsonl``     the first correct chain of each problem (problems never solved
   give nothing: no rationalisation, as the paper's baseline);
4. train and evaluate: LoRA (PAPER.md §3) on the kept chains (user = the instruction + problem,
   loss on the chain only), then base vs adapter greedily on ``--eval-bench`` (default the
   procedural set, 300 problems) paired per task.

Full command (embedded 0.5B model, 100 training problems, 4 chains each):
    python experiments/star_baseline_gsm8k.py --run-name star_qwen05b
Quick command (SmolLM2-135M, 3 problems, 2 chains, 2 evaluation problems; about a minute on 2 CPU cores):
    python experiments/star_baseline_gsm8k.py --model smollm2-135m-instruct --pool-per-level 1 --limit-pool 3 \\
        --attempts 2 --max-new-tokens 48 --limit 2 --eval-max-new-tokens 48 --max-steps 1 --run-name star_quick

Writes results/<run>/result.json (config, stages with counts, decontamination report, training
records, training result, base and adapter accuracy with the paired delta, 95% interval, McNemar p
under the flexible, strict and faithful verdicts), the adapter in results/<run>/adapter/ and the
evaluations in results/<run>/eval/. Expected runtime on 2 CPU cores with the 0.5B model: 100
problems x 4 chains x ~200 tokens at ~100 tokens/s is ~15 min, training on ~50-100 chains ~10-20
min, two evaluations of 300 problems ~10 min each (reuse a base run with --base-run): ~45-60 min.

Deviations from the paper: training problems are procedural (offline; GSM8K train through
--train-data) rather than GSM8K train; no rationalisation step (the original STaR gives the
answer as a hint for unsolved problems; the paper's baseline keeps correct chains only); the
evaluation set is the procedural set, not GSM8K test.
"""
from __future__ import annotations

import argparse


def build_parser() -> argparse.ArgumentParser:
    from common.math_recipe import add_math_recipe_args
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    add_math_recipe_args(p, attempts=4, pool=True)
    return p


def main(argv=None) -> int:
    from common.cli import run_main
    return run_main(_main, argv)


def _main(argv) -> int:
    import dataclasses
    import time
    from common.math_recipe import (MathRun, MathSetup, PoolSpec, print_result, solve_stage, train_and_compare,
                                    training_pool, write_result)
    from common.results import slug
    args = build_parser().parse_args(argv)
    setup = MathSetup.from_args(__file__, argv, args, f"star_{slug(args.model)}_pool-s{args.pool_seed}")
    pool = PoolSpec.from_args(args)
    config = setup.config({"pool": dataclasses.asdict(pool)})
    t0 = time.time()
    run = MathRun.open(setup, config, args.overwrite)
    problems, decon = training_pool(run, pool)                                      # 1. pool
    solved = solve_stage(run, problems)                                             # 2. solve
    records = keep_stage(problems, solved)                                          # 3. keep
    body = train_and_compare(run, records, "star", extra={"method": "star"})        # 4. train, evaluate
    res = write_result(run, config, {"decontamination": decon, **body}, t0)
    print_result("STaR baseline", res)
    return 0


def keep_stage(problems: list[dict], solved: list[dict]) -> list[dict]:
    """3. The first correct chain of each problem that ended on its own, as a conversation record."""
    from common.math_recipe import solution_records
    return solution_records(problems, solved)


if __name__ == "__main__":
    raise SystemExit(main())
