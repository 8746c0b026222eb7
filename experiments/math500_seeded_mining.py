"""Seeded math mining: repair pairs mined from a given math source's problems (wrong attempt -> correct solution), trained, evaluated.

Paper row: PAPER.md §1 claim 13 (distribution mismatch: Qwen3-8B base, pairs mined from MATH-500
problems, MATH-500 279 -> 239); seed 002 §3.10 (``python experiments/math500_seeded_mining.py
--model Qwen/Qwen3-8B-Base``). Runs offline on any math source: ``--bench`` with ``--data-path``
(MATH-500, GSM8K, AIME files in their Hugging Face schemas), CHAMP from its wheel, or the
procedural generator (default: ``--pool-seed`` 1, never the evaluation set's seed 0).

Method, one function per stage (files under results/<run>/, each stage skipped on a rerun once done):
1. seeds     ``pool.jsonl``      the source's problems with their gold answers (first
   ``--limit-pool``), decontaminated against every evaluation set but the source itself; when the
   source is the evaluation benchmark, against the evaluated tasks (``--limit``), so the two are
   disjoint parts of one set (report in result.json);
2. solve     ``attempts.jsonl``  ``--attempts`` attempts per problem (T=0.8) under the source's own
   instruction (``####`` line or \\boxed{}), graded with math-verify against the gold answer;
3. mine      ``train.jsonl``     every problem solved sometimes gives one repair pair, the math form
   of PAPER.md §2 stage 4: user = the instruction + problem + "My attempt: <first wrong attempt>
   My final answer <a> is wrong. Solve the problem again.", assistant = the first correct attempt;
4. train and evaluate: LoRA (PAPER.md §3), base vs adapter greedily on ``--eval-bench``
   (default the procedural set), paired per task.

Full commands (embedded 0.5B model):
    python experiments/math500_seeded_mining.py --run-name seeded_procedural_qwen05b
    python experiments/math500_seeded_mining.py --bench champ --eval-bench champ --limit 135 \\
        --run-name seeded_champ_qwen05b
    python experiments/math500_seeded_mining.py --bench math500 --data-path MATH-500/test.jsonl \\
        --eval-bench math500 --eval-data-path MATH-500/test.jsonl --limit 250   # with the MATH-500 file
Quick command (SmolLM2-135M, 3 seed problems; about a minute on 2 CPU cores):
    python experiments/math500_seeded_mining.py --model smollm2-135m-instruct --limit-pool 3 --attempts 2 \\
        --max-new-tokens 48 --limit 2 --eval-max-new-tokens 32 --max-steps 1 --run-name seeded_quick

Writes results/<run>/result.json (config, stage counts, decontamination report, pairs, training
result, base vs adapter accuracy with the paired delta, 95% interval and McNemar p per verdict),
the adapter and the evaluations (results/<run>/eval/). Expected runtime on 2 CPU cores with the
0.5B model, default command: 100 problems x 4 attempts x ~200 tokens at ~100 tokens/s ~14 min,
training ~5-10 min, two evaluations ~10 min each: ~40 min; the CHAMP command (135 x 4 x ~500
tokens mining, 2 x 135 x ~500 evaluating) ~2 h.

Deviations from the paper: MATH-500 is not offline; CHAMP or the procedural generator stand in
(same method on any source). Pairs are kept only from problems solved sometimes (no repair
attempt for problems never solved, as the multi-pair variant).
"""
from __future__ import annotations

import argparse


def build_parser() -> argparse.ArgumentParser:
    from common.math_benchmarks import MATH_BENCHMARKS
    from common.math_recipe import add_math_recipe_args
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    add_math_recipe_args(p, attempts=4, pool=True)
    g = p.add_argument_group("seed source")
    g.add_argument("--bench", default="procedural", choices=sorted(MATH_BENCHMARKS),
                   help="math source whose problems seed the mining (default procedural: the generator with "
                        "--pool-seed; gsm8k, math500, aime need --data-path)")
    g.add_argument("--data-path", default=None, help="the source's file (for procedural: a file instead of the generator)")
    return p


def main(argv=None) -> int:
    from common.cli import run_main
    return run_main(_main, argv)


def _main(argv) -> int:
    import time
    from common.math_recipe import (MathRun, MathSetup, print_result, solve_stage, train_and_compare,
                                    write_result)
    from common.results import InputError, slug
    args = build_parser().parse_args(argv)
    if args.train_data:
        raise InputError("--train-data is for the procedural pool's scripts; give the source with --bench/--data-path")
    setup = MathSetup.from_args(__file__, argv, args, f"seeded_{args.bench}_{slug(args.model)}_s{args.seed}")
    config = setup.config({k: getattr(args, k) for k in ("pool_seed", "pool_per_level", "limit_pool", "bench",
                                                          "data_path")})
    source = load_source(args)
    t0 = time.time()
    run = MathRun.open(setup, config, args.overwrite)
    problems, decon = seed_stage(run, args, source)                                 # 1. seeds
    solved = solve_stage(run, problems, bench=args.bench)    # 2. solve (the source's instruction)
    records = mine_stage(problems, solved, args.bench)                                # 3. mine
    body = train_and_compare(run, records, "seeded", extra={"method": f"seeded mining on {args.bench}"})  # 4.
    res = write_result(run, config, {"decontamination": decon, **body}, t0)
    print_result(f"seeded mining on {args.bench}", res)
    return 0


def load_source(args) -> tuple[list[dict], str]:
    """The source's problems and where they come from (checked before anything is written)."""
    from common.math_benchmarks import load_math_tasks
    from common.math_recipe import procedural_pool
    if args.bench == "procedural" and not args.data_path:
        return procedural_pool(args.pool_seed, args.pool_per_level), f"common/mathgen.py seed {args.pool_seed}"
    items, info = load_math_tasks(args.bench, path=args.data_path)
    return items, info["path"]


def seed_stage(run, args, source: tuple[list[dict], str]) -> tuple[list[dict], dict]:
    """1. The source's problems, decontaminated against the evaluation sets (pool.jsonl)."""
    from common.math_recipe import decontaminate, evaluation_sets
    from common.results import InputError
    spec, (items, where) = run.setup.spec, source

    def make():
        generated = args.bench == "procedural" and not args.data_path
        against = evaluation_sets(spec, skip=() if generated else (args.bench,))
        if not generated and spec.bench not in against:   # the source family is the evaluation one
            against[f"{spec.bench} (evaluated tasks)"] = spec.tasks()[0]
        chosen = _first(items, against, args.limit_pool) if args.limit_pool is not None else items
        kept, report = decontaminate(chosen, against)
        if chosen and not kept:
            raise InputError("no seed problem is left after decontamination; evaluate on fewer tasks (--limit) "
                             "or on another benchmark")
        return kept, {"source": where, "problems": len(kept), "decontamination": report}
    rows = run.book.run("seeds", run.dir / "pool.jsonl", make)
    return rows, run.book.done("seeds")["counts"]["decontamination"]


def _first(items: list[dict], against: dict, n: int) -> list[dict]:
    """The first ``n`` source problems that are not evaluation problems (so --limit-pool counts
    usable seeds when the source is the evaluation set)."""
    evaluated = {t["task_id"] for tasks in against.values() for t in tasks}
    return [it for it in items if it["task_id"] not in evaluated][:n]


def mine_stage(problems: list[dict], solved: list[dict], bench: str) -> list[dict]:
    """3. One repair pair per problem solved sometimes: first wrong attempt -> first correct one."""
    from common.math_recipe import first_correct, first_wrong, repair_record
    by_id = {p["task_id"]: p for p in problems}
    out = []
    for r in solved:
        right, wrong = first_correct(r), first_wrong(r)
        if right and wrong:
            out.append(repair_record(by_id[r["task_id"]], wrong, right["text"], bench))
    return out


if __name__ == "__main__":
    raise SystemExit(main())
