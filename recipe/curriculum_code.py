"""Auto-difficulty curriculum for code: keep a pool of problems at the edge of what the model solves.

Paper rows: PAPER.md §1 claim 5 is the math version of this curriculum (Qwen2.5-3B, 13 pairs,
GSM8K 32 -> 66); this is the code variant of the guide's §2.3 ("recipe/curriculum_code.py").
Method: PAPER.md §2 "Variants: curriculum".

Full command (GPU):
    python recipe/curriculum_code.py --model Qwen/Qwen2.5-7B --pool-size 60 --rounds 4 \\
        --run-name curriculum_7b --dtype bfloat16 --device cuda
Quick command (embedded 0.5B model on CPU: 6 problems, 2 rounds, 2 attempts, 5 evaluation tasks;
roughly 15–25 min on 2 cores, estimated):
    python recipe/curriculum_code.py --pool-size 6 --rounds 2 --attempts 2 --max-new-tokens 256 \\
        --limit 5 --max-steps 4 --run-name curriculum_quick

Each round r (files under results/<run>/round<r>/, every stage skipped on a rerun once done):
1. pool       ``pool.jsonl``       round 1: ``--pool-size`` generated problems (+ ``--seed-problems``),
   parsed, decontaminated and self-verified as in recipe/bootstrap.py; later rounds: the
   verified variants made in the previous round;
2. solve      ``greedy.jsonl``, ``samples.jsonl`` one greedy attempt and ``--attempts`` sampled
   ones (T=0.8) per problem; the solver sees signature, docstring and tests only;
3. check      ``attempts.jsonl``   all attempts in the sandbox (attempt 0 is the greedy one);
4. classify   ``classes.jsonl``, ``pairs.jsonl``  solved greedily -> ask for a harder variant;
   never solved (no attempt passes) -> ask for an easier variant; problems with both passing
   and failing attempts ("solved sometimes", greedy included) are mined (first distinct failing +
   first passing attempt, as the plain recipe); every problem then leaves the pool;
5. variants   ``variants.jsonl``   the model writes each requested variant (T=0.9), verified like
   any generated problem; they form the next round's pool.
Each stage is a function below (``pool_stage`` ... ``variants_stage``) and :func:`run_curriculum`
is the loop. After the last round the pairs of every round are trained on (common.lora, PAPER.md §3) and
base and adapter are evaluated and compared (``--eval-protocols``). Pairs go to
data/pairs_<run-name>.jsonl (``--pairs-out``); results/<run>/result.json holds every round's
counts (pool size, greedy solves, never-solved, sometimes-solved, pairs, variants requested and
verified). Expect per round well under a minute per problem for the 0.5B model on 2 CPU cores
(estimate: 1 + ``--attempts`` solving samples and at most one variant per problem).

Deviations from the paper:
1. The code curriculum's exact prompts and pool rules are not published; ours are described
   above (variants see the full problem, reference included; the next pool is the verified
   variants only).
2. The recipe's corrections apply: no reference leak, sandboxed execution, decontamination,
   masked and seeded training (PAPER.md §4 defects 1, 6, 8, 9).
"""
from __future__ import annotations

import argparse

from common.results import InputError


def build_parser() -> argparse.ArgumentParser:
    from common.cli import add_model_args, add_run_args
    from common.compare import add_eval_args
    from common.lora import add_lora_args
    from common.mining import add_mining_args
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    add_model_args(p, adapter=False)
    g = p.add_argument_group("curriculum")
    g.add_argument("--rounds", type=int, default=4, help="classify -> mine -> make variants rounds (default 4)")
    g.add_argument("--pool-size", type=int, default=60, help="problems generated for the first pool (default 60)")
    g.add_argument("--seed-problems", default=None,
                   help="problems JSONL ({id, entry_point, signature, reference, tests}) added to the first pool")
    g.add_argument("--pairs-out", default=None,
                   help="where the mined pairs go (default data/pairs_<run-name>.jsonl in the repository)")
    add_mining_args(p, repair_all_fail=False)
    add_lora_args(p, system_flag=False)
    add_eval_args(p)
    add_run_args(p)
    return p


def main(argv=None) -> int:
    from common.cli import run_main
    return run_main(_main, argv)


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    from common.compare import print_comparisons
    res = run_curriculum(args, argv)
    print(f"\ncurriculum · {res['model']['ref']} · {res['run_dir']}\n  pairs: {res['pairs_out']['count']} -> "
          f"{res['pairs_out']['path']}")
    for k, v in res["stages"].items():
        if k.endswith("/classify"):
            c = v["counts"]
            print(f"  {k.split('/')[0]}: pool {c['pool']}, harder {c.get('class_harder', 0)}, "
                  f"easier {c.get('class_easier', 0)}, sometimes {c['solved_sometimes']}, pairs {c['pairs_out']}")
    print_comparisons("evaluation", res["evaluation"])
    return 0


def classify(attempts: list[dict]) -> str:
    """'harder' (greedy attempt passed), 'easier' (nothing passed) or 'mine' (greedy failed, a sample passed)."""
    if attempts[0]["passed"]:
        return "harder"
    if not any(a["passed"] for a in attempts):
        return "easier"
    return "mine"


# --------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------


def run_curriculum(args, argv) -> dict:
    """Rounds of pool -> solve -> check -> classify (mine) -> variants, then train on every
    round's pairs and compare base and adapter; writes results/<run>/result.json."""
    import time

    from common.compare import ModelSlot, train_and_evaluate
    from common.mining import MiningRun, write_pairs_file
    from common.results import write_json_atomic
    mcfg, train_eval, seeds, resolved = configure(args, argv)
    run_dir, pairs_out, config = run_place(args, mcfg, train_eval, seeds, resolved)
    t_start = time.time()
    slot = ModelSlot(resolved, train_eval.model)
    with MiningRun.open(run_dir, config, train_eval.overwrite, slot, mcfg, train_eval.ev.options) as run:
        get = lambda: slot.get(None)  # noqa: E731 - the curriculum mines with the base model
        for r in range(1, args.rounds + 1):
            problems = pool_stage(run, r, get, args.pool_size, seeds)
            if not problems:
                run.book.mark(f"round{r}/empty", {"pool": 0}, 0.0)
                break
            checked = run.check(f"round{r}/check", run.dir / f"round{r}" / "attempts.jsonl", problems,
                                solve_stage(run, r, get, problems))
            classes = classify_stage(run, r, problems, checked)
            if r < args.rounds:
                variants_stage(run, r, get, problems, classes)
    out_info = write_pairs_file(pairs_out, run.pairs)
    training, evaluation = {"skipped": True, "reason": "no pairs"}, {}
    if run.pairs:
        res = train_and_evaluate(slot, run.pairs, out_info, train_eval.train, run_dir, "curriculum", train_eval.ev)
        training, evaluation = res["training"], res["evaluation"]
    result = {**train_eval.ev.invocation.provenance(), "config": config, "model": resolved.provenance(),
              "stages": run.book.data, "pairs_out": out_info, "training": training, "evaluation": evaluation,
              "timings": {"total_s_this_invocation": round(time.time() - t_start, 1)}}
    write_json_atomic(run_dir / "result.json", result)
    return {**result, "run_dir": str(run_dir)}


def configure(args, argv):
    """(mining settings, model/training/evaluation settings, the seed problems, the resolved
    model), checked."""
    from common.compare import TrainEvalSetup
    from common.mining import MiningConfig
    from common.models import resolve_model
    from common.problems import load_problems
    if args.rounds < 1 or args.pool_size < 0:
        raise InputError(f"--rounds must be >= 1 and --pool-size >= 0, got {args.rounds}, {args.pool_size}")
    mcfg, train_eval = MiningConfig.from_args(args), TrainEvalSetup.from_args(__file__, argv, args)
    seeds = load_problems(args.seed_problems) if args.seed_problems else []
    if not args.pool_size and not seeds:
        raise InputError("--pool-size 0 needs --seed-problems")
    return mcfg, train_eval, seeds, resolve_model(args.model)


def run_place(args, mcfg, train_eval, seeds, resolved):
    """(results/<run>/, the output pairs file, the run's config.json)."""
    import json
    from pathlib import Path

    from common.pairs import pairs_provenance
    from common.results import REPO_ROOT, slug
    run_name = args.run_name or f"curriculum_{slug(args.model)}_s{mcfg.seed}"
    run_dir = train_eval.run_dir(run_name)
    pairs_out = Path(args.pairs_out) if args.pairs_out else REPO_ROOT / "data" / f"pairs_{run_name}.jsonl"
    config = {"curriculum": "code", "model": {"ref": resolved.ref, "file_sha256": resolved.file_sha256},
              "mining": mcfg.to_dict(), "training": train_eval.train.to_dict(), "rounds": args.rounds,
              "pool_size": args.pool_size,
              "seed_problems": pairs_provenance(args.seed_problems, seeds) if seeds else None,
              "eval": train_eval.ev.spec.to_config()}
    return run_dir, pairs_out, json.loads(json.dumps(config))


# --------------------------------------------------------------------------------------------
# Stages (files under results/<run>/round<r>/)
# --------------------------------------------------------------------------------------------


def seed_of(run, r: int) -> int:
    """Round ``r``'s sampling seed (rounds draw disjoint streams)."""
    return run.cfg.seed + 1000 * (r - 1)


def pool_stage(run, r: int, get, pool_size: int, seeds: list[dict]) -> list[dict]:
    """1. Round 1: ``pool_size`` generated problems + the seed problems; later rounds: the previous
    round's variants. Parsed, decontaminated, deduplicated, self-verified (pool.jsonl)."""
    from common.mining import generate_problems, seed_candidates
    from common.rundir import read_rows
    rdir = run.dir / f"round{r}"

    def candidates():
        if r > 1:
            return [{"key": v["key"], "text": v["samples"][0]["text"], "origin": f"variant:{v['direction']}"}
                    for v in read_rows(run.dir / f"round{r - 1}" / "variants.jsonl")]
        rows = generate_problems(rdir / "generated.jsonl", get, "r1", pool_size, run.cfg, seed_of(run, r),
                                 run.progress) if pool_size else []
        return [{"key": x["key"], "text": x["samples"][0]["text"]} for x in rows] + seed_candidates(seeds)
    return run.verify(f"round{r}/pool", rdir / "pool.jsonl", candidates)


def solve_stage(run, r: int, get, problems: list[dict]) -> list[dict]:
    """2. One greedy attempt (greedy.jsonl) and ``attempts`` sampled ones (samples.jsonl) per
    problem; the rows of every attempt, greedy first."""
    from common.mining import generate_into, solve_items
    from common.rundir import read_rows
    rdir, cfg = run.dir / f"round{r}", run.cfg

    def solve():
        items = solve_items(problems, cfg.system)
        generate_into(rdir / "greedy.jsonl", get, items, cfg.params(0.0), desc="greedy", progress=run.progress)
        generate_into(rdir / "samples.jsonl", get, items,
                      cfg.params(cfg.solve_temperature, n=cfg.attempts, seed=seed_of(run, r) + 11),
                      desc="samples", progress=run.progress)
        return [], {"problems": len(problems)}
    run.book.run(f"round{r}/solve", None, solve)
    greedy = {x["key"]: x for x in read_rows(rdir / "greedy.jsonl")}
    sampled = {x["key"]: x for x in read_rows(rdir / "samples.jsonl")}
    return [{"key": p["problem_id"], "samples": greedy[p["problem_id"]]["samples"] +
             sampled[p["problem_id"]]["samples"]} for p in problems]


def classify_stage(run, r: int, problems: list[dict], checked: list[dict]) -> list[dict]:
    """4. Each problem's class (classes.jsonl); problems solved sometimes are mined (pairs.jsonl),
    and their pairs join ``run.pairs``. Returns the classes."""
    from collections import Counter

    from common.results import write_jsonl_atomic
    from common.rundir import read_rows
    rdir = run.dir / f"round{r}"

    def mine():
        classes = [{"problem_id": c["problem_id"], "class": classify(c["attempts"]), "n_pass": c["n_pass"],
                    "n_attempts": len(c["attempts"])} for c in checked]
        sometimes = {c["problem_id"] for c in checked if 0 < c["n_pass"] < len(c["attempts"])}
        pairs, counts = run.mine([p for p in problems if p["problem_id"] in sometimes],
                                 [c for c in checked if c["problem_id"] in sometimes])
        write_jsonl_atomic(rdir / "classes.jsonl", classes)
        per_class = Counter(c["class"] for c in classes)
        return pairs, {"pool": len(problems), **{f"class_{k}": v for k, v in per_class.items()},
                       "solved_sometimes": len(sometimes), **counts}
    run.pairs += run.book.run(f"round{r}/classify", rdir / "pairs.jsonl", mine)
    return read_rows(rdir / "classes.jsonl")


def variants_stage(run, r: int, get, problems: list[dict], classes: list[dict]) -> None:
    """5. A harder variant of each problem solved greedily, an easier one of each never solved
    (variants.jsonl): the next round's pool."""
    from collections import Counter

    from common.mining import chat, generate_into
    from common.problems import variant_prompt
    by_id = {p["problem_id"]: p["problem"] for p in problems}
    items = []
    for i, c in enumerate(classes):
        if c["class"] != "mine":
            direction = "harder" if c["class"] == "harder" else "easier"
            items.append({"key": f"r{r + 1}-v{i}", "parent": c["problem_id"], "direction": direction,
                          "messages": chat(run.cfg.system, variant_prompt(by_id[c["problem_id"]], direction))})

    def variants():
        if items:
            generate_into(run.dir / f"round{r}" / "variants.jsonl", get, items,
                          run.cfg.params(run.cfg.gen_temperature, seed=seed_of(run, r) + 31), desc="variants",
                          progress=run.progress)
        return [], {"requested": len(items),
                    **{f"requested_{k}": v for k, v in Counter(i["direction"] for i in items).items()}}
    run.book.run(f"round{r}/variants", None, variants)


if __name__ == "__main__":
    raise SystemExit(main())
