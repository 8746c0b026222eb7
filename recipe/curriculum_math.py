"""Auto-difficulty math curriculum: the model writes problems at a difficulty level that follows its own success, solves them, keeps verified solutions, trains.

Paper row: PAPER.md §1 claim 5 (Qwen2.5-3B base, 13 pairs, GSM8K first 100 chat: 32 -> 66);
seed 002 §3.8 (``python recipe/curriculum_math.py --model Qwen/Qwen2.5-3B --iterations 16``);
PAPER.md §2 "Variants: curriculum" and "math". The vanilla variant without the difficulty
control is recipe/math_bootstrap.py.

Method: ``--iterations`` rounds at a difficulty level (1-5: steps of arithmetic and size of the
numbers asked for, starting at ``--start-level``); each round, one function per stage (files under
results/<run>/iter<i>/, each stage skipped on a rerun once done):
1. write     ``written.jsonl``, ``problems.jsonl``  ``--problems-per-iter`` requests (T=0.9) for a
   new word problem at the round's level as PROBLEM / EXPRESSION / ANSWER, kept when the bounded
   evaluator (common/arith.py, no ``eval``) gives the expression the stated integer answer,
   deduplicated, decontaminated against every evaluation set;
2. solve     ``attempts.jsonl``  one greedy and ``--attempts`` sampled solutions (T=0.8) per problem
   under the evaluation's instruction, graded with math-verify against the problem's answer;
3. adjust    the share of problems solved greedily decides the next round's level: >=
   ``--raise-at`` -> one level harder, <= ``--lower-at`` -> one level easier, else the same;
   the first correct solution of each problem that ended on its own is kept.
Then LoRA (PAPER.md §3) on every round's kept solutions, and base vs adapter greedily on
``--eval-bench`` (default the procedural set, 300 problems), paired per task.

Full command (embedded 0.5B model, the seed's 16 iterations):
    python recipe/curriculum_math.py --iterations 16 --run-name curr_math_qwen05b
Quick command (SmolLM2-135M, 2 iterations of 2 problems; about a minute on 2 CPU cores):
    python recipe/curriculum_math.py --model smollm2-135m-instruct --iterations 2 --problems-per-iter 2 \\
        --attempts 2 --max-new-tokens 64 --limit 2 --eval-max-new-tokens 32 --max-steps 1 --run-name curr_math_quick

Writes results/<run>/result.json (config; per round the level, problems requested / verified /
kept with parse failures by reason, greedy solve share, next level; decontamination reports;
training records; training result; base vs adapter accuracy with the paired delta, 95% interval
and McNemar p under the flexible, strict and faithful verdicts), the adapter and the evaluations
(results/<run>/eval/). Expected runtime on 2 CPU cores with the 0.5B model: 16 rounds x 8
problems x (~100 + 5 x ~200 tokens) at ~100 tokens/s ~25 min, training ~10 min, two evaluations
~10 min each (--base-run reuses one): ~55 min.

Deviations from the paper: the original's prompts and level rule are not published; ours are
above. Problems are verified by their own expression (self-consistency, not correctness; PAPER.md
§4 defect 11). Training records are correct solutions ("pairs" in the paper's count). The
evaluation set is the procedural set, not GSM8K (offline).
"""
from __future__ import annotations

import argparse

LEVELS = (1, 2, 3, 4, 5)


def build_parser() -> argparse.ArgumentParser:
    from common.math_recipe import add_math_recipe_args
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    add_math_recipe_args(p, attempts=4)
    g = p.add_argument_group("curriculum")
    g.add_argument("--iterations", type=int, default=16, help="write -> solve -> adjust rounds (default 16)")
    g.add_argument("--problems-per-iter", type=int, default=8, help="problems requested per round (default 8)")
    g.add_argument("--start-level", type=int, default=2, choices=LEVELS, help="difficulty of the first round (default 2)")
    g.add_argument("--raise-at", type=float, default=0.75,
                   help="greedy solve share at or above which the next round is one level harder (default 0.75)")
    g.add_argument("--lower-at", type=float, default=0.25,
                   help="greedy solve share at or below which the next round is one level easier (default 0.25)")
    return p


def next_level(level: int, solved_share: float | None, raise_at: float, lower_at: float) -> int:
    """The next round's level (no verified problem: unchanged)."""
    if solved_share is None:
        return level
    if solved_share >= raise_at:
        return min(level + 1, LEVELS[-1])
    if solved_share <= lower_at:
        return max(level - 1, LEVELS[0])
    return level


def main(argv=None) -> int:
    from common.cli import run_main
    return run_main(_main, argv)


def _main(argv) -> int:
    import time
    from common.math_recipe import MathRun, MathSetup, print_result, train_and_compare, write_result
    from common.results import InputError, slug
    args = build_parser().parse_args(argv)
    if args.iterations < 1 or args.problems_per_iter < 1 or not 0 <= args.lower_at < args.raise_at <= 1:
        raise InputError("--iterations and --problems-per-iter must be >= 1 and 0 <= --lower-at < --raise-at <= 1")
    setup = MathSetup.from_args(__file__, argv, args, f"curr_math_{slug(args.model)}_s{args.seed}")
    config = setup.config({k: getattr(args, k) for k in ("iterations", "problems_per_iter", "start_level",
                                                          "raise_at", "lower_at")})
    t0 = time.time()
    run = MathRun.open(setup, config, args.overwrite)
    level, records, decon = args.start_level, [], {}
    for it in range(1, args.iterations + 1):
        problems = write_stage(run, it, args.problems_per_iter, level)             # 1. write
        solved = solve_round(run, it, problems)                                     # 2. solve
        level, kept = adjust_stage(run, it, level, problems, solved, args)          # 3. adjust, keep
        records += kept
        decon[f"iter{it}"] = run.book.done(f"iter{it}/write")["counts"]["decontamination"]
    body = train_and_compare(run, records, "curriculum", extra={"method": "math curriculum"})  # train, evaluate
    res = write_result(run, config, {"levels": [run.book.done(f"iter{i}/adjust")["counts"]
                                                for i in range(1, args.iterations + 1)],
                                     "decontamination": decon, **body}, t0)
    print_result("math curriculum", res)
    print("  levels: " + " -> ".join(str(x["level"]) for x in res["levels"]))
    return 0


def write_stage(run, it: int, n: int, level: int) -> list[dict]:
    """1. ``n`` problems written at ``level``, verified by their arithmetic, decontaminated."""
    from common.math_recipe import write_problems
    return run.book.run(f"iter{it}/write", run.dir / f"iter{it}" / "problems.jsonl",
                        lambda: write_problems(run, f"iter{it}", n, level, seed=1000 * it))


def solve_round(run, it: int, problems: list[dict]) -> list[dict]:
    """2. One greedy and ``--attempts`` sampled graded solutions per problem (greedy first)."""
    from common.math_recipe import solve_and_grade

    def solve():
        rows = solve_and_grade(run, run.dir / f"iter{it}" / "samples.jsonl", problems, greedy=True)
        return rows, {"problems": len(rows), "greedy_solved": sum(r["attempts"][0]["passed"] for r in rows)}
    return run.book.run(f"iter{it}/solve", run.dir / f"iter{it}" / "attempts.jsonl", solve)


def adjust_stage(run, it: int, level: int, problems: list[dict], solved: list[dict], args) -> tuple[int, list]:
    """3. The next level from the greedy solve share; the kept solutions of this round."""
    from common.math_recipe import solution_records
    kept = solution_records(problems, solved)
    share = sum(r["attempts"][0]["passed"] for r in solved) / len(solved) if solved else None
    new = next_level(level, share, args.raise_at, args.lower_at)
    run.book.run(f"iter{it}/adjust", None, lambda: ([], {"level": level, "verified_problems": len(problems),
                                                         "greedy_solved_share": share, "kept": len(kept),
                                                         "next_level": new}))
    return run.book.done(f"iter{it}/adjust")["counts"]["next_level"], kept


if __name__ == "__main__":
    raise SystemExit(main())
