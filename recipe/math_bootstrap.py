"""Math self-bootstrap (vanilla, no curriculum): the model writes math problems, solves them, keeps verified solutions, trains.

Paper row: PAPER.md §1 claim 5's comparison (seed 002 §3.8: "Compare to recipe/math_bootstrap.py
(vanilla, no curriculum) which regresses"); PAPER.md §2 "Variants: math".

Method, one function per stage (files under results/<run>/, each stage skipped on a rerun once done):
1. write     ``gen/written.jsonl``, ``problems.jsonl``  ``--problems`` requests (T=0.9, top-p
   0.95) for one new word problem as PROBLEM / EXPRESSION / ANSWER; kept when the bounded
   evaluator (common/arith.py, no ``eval``) gives the expression exactly the stated integer
   answer, deduplicated and decontaminated against every evaluation set (report in result.json);
2. solve     ``attempts.jsonl``  ``--attempts`` solutions per problem (T=0.8) under the
   evaluation's instruction (PAPER.md §3 GSM8K prompt), each graded with math-verify against the
   problem's own (verified) answer;
3. keep      ``train.jsonl``     the first correct solution of each problem that ended on its own;
4. train and evaluate: LoRA (PAPER.md §3) on those conversations (loss on the solution only),
   base vs adapter greedily on ``--eval-bench`` (default the procedural set, 300 problems),
   paired per task with a 95% interval and McNemar p.

Full command (embedded 0.5B model):
    python recipe/math_bootstrap.py --problems 120 --run-name math_boot_qwen05b
Quick command (SmolLM2-135M; about a minute on 2 CPU cores):
    python recipe/math_bootstrap.py --model smollm2-135m-instruct --problems 3 --attempts 2 \\
        --max-new-tokens 64 --limit 2 --eval-max-new-tokens 32 --max-steps 1 --run-name math_boot_quick

Writes results/<run>/result.json (config, stage counts with parse failures by reason,
decontamination report, training records, training result, base vs adapter accuracy with the
paired delta under the flexible, strict and faithful verdicts), the adapter and the evaluations
(results/<run>/eval/). Expected runtime on 2 CPU cores with the 0.5B model: 120 problems x ~100
tokens + 120 x 4 solutions x ~200 tokens at ~100 tokens/s ~18 min, training ~10 min, two
evaluations ~10 min each (--base-run reuses one): ~45-50 min.

Deviations from the paper: a problem is verified by its own expression (self-consistency, not
correctness: PAPER.md §4 defect 11 makes the model's expression the gold answer; here the stated
answer must also equal it, evaluated without ``eval``); the evaluation set is the procedural set
instead of GSM8K (offline); training records are correct solutions, not repair pairs.
"""
from __future__ import annotations

import argparse


def build_parser() -> argparse.ArgumentParser:
    from common.math_recipe import add_math_recipe_args
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    add_math_recipe_args(p, attempts=4)
    g = p.add_argument_group("bootstrap")
    g.add_argument("--problems", type=int, default=120, help="problems the model is asked to write (default 120)")
    return p


def main(argv=None) -> int:
    from common.cli import run_main
    return run_main(_main, argv)


def _main(argv) -> int:
    import time
    from common.math_recipe import (MathRun, MathSetup, print_result, solution_records, solve_stage,
                                    train_and_compare, write_result)
    from common.results import InputError, slug
    args = build_parser().parse_args(argv)
    if args.problems < 1:
        raise InputError(f"--problems must be >= 1, got {args.problems}")
    setup = MathSetup.from_args(__file__, argv, args, f"math_boot_{slug(args.model)}_s{args.seed}")
    config = setup.config({"problems": args.problems})
    t0 = time.time()
    run = MathRun.open(setup, config, args.overwrite)
    problems = write_stage(run, args.problems)                                    # 1. write
    solved = solve_stage(run, problems)                                           # 2. solve
    records = solution_records(problems, solved)                                  # 3. keep
    body = train_and_compare(run, records, "math-boot", extra={"method": "math bootstrap"})  # 4. train, evaluate
    res = write_result(run, config, {"decontamination": run.book.done("write")["counts"]["decontamination"],
                                     **body}, t0)
    print_result("math bootstrap", res)
    return 0


def write_stage(run, n: int) -> list[dict]:
    """1. ``n`` model-written problems, verified by their arithmetic, decontaminated."""
    from common.math_recipe import write_problems
    return run.book.run("write", run.dir / "problems.jsonl", lambda: write_problems(run, "gen", n, None, seed=0))


if __name__ == "__main__":
    raise SystemExit(main())
