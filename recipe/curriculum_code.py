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
After the last round the pairs of every round are trained on (common.lora, PAPER.md §3) and
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
import sys


def build_parser() -> argparse.ArgumentParser:
    from common.cli import add_model_args, add_run_args
    from common.lora import add_lora_args
    from common.recipe import add_eval_args, add_mining_args
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


def classify(attempts: list[dict]) -> str:
    """'harder' (greedy attempt passed), 'easier' (nothing passed) or 'mine' (greedy failed, a sample passed)."""
    if attempts[0]["passed"]:
        return "harder"
    if not any(a["passed"] for a in attempts):
        return "easier"
    return "mine"


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    import json
    import os
    import time
    from collections import Counter
    from pathlib import Path

    from common.lora import config_from_args
    from common.models import resolve_model
    from common.pairs import code_hash, humaneval_index, load_problems, pairs_provenance, variant_prompt
    from common.recipe import (ModelSlot, chat, check_attempts, eval_spec_from_args, finalize_pairs,
                               generate_into, generate_problems, mine_all, mining_from_args, print_comparisons,
                               sampling, solve_items, train_and_evaluate, verify_problems, write_pairs_file)
    from common.results import slug, write_jsonl_atomic
    from common.rundir import StageBook, prepare_run_dir, read_rows
    from common.results import REPO_ROOT, InputError, provenance, results_root, write_json_atomic
    from common.sandbox import SandboxPool

    if args.rounds < 1 or args.pool_size < 0:
        raise InputError(f"--rounds must be >= 1 and --pool-size >= 0, got {args.rounds}, {args.pool_size}")
    argv = argv if argv is not None else sys.argv[1:]
    mcfg = mining_from_args(args)
    tcfg = config_from_args(args)
    spec = eval_spec_from_args(args)
    seeds = load_problems(args.seed_problems) if args.seed_problems else []
    if not args.pool_size and not seeds:
        raise InputError("--pool-size 0 needs --seed-problems")
    resolved = resolve_model(args.model)
    run_name = args.run_name or f"curriculum_{slug(args.model)}_s{mcfg.seed}"
    run_dir = Path(args.out_dir or results_root()) / run_name
    pairs_out = Path(args.pairs_out) if args.pairs_out else REPO_ROOT / "data" / f"pairs_{run_name}.jsonl"
    config = {"curriculum": "code", "model": {"ref": resolved.ref, "file_sha256": resolved.file_sha256},
              "mining": mcfg.to_dict(), "training": tcfg.to_dict(), "rounds": args.rounds,
              "pool_size": args.pool_size,
              "seed_problems": pairs_provenance(args.seed_problems, seeds) if seeds else None,
              "eval": {"protocols": list(spec.protocols), "bench": spec.bench, "limit": spec.limit,
                       "max_new_tokens": spec.max_new_tokens}}
    prepare_run_dir(run_dir, config, args.overwrite)
    book = StageBook(run_dir)
    slot = ModelSlot(resolved, args)
    get = lambda: slot.get(None)  # noqa: E731 - the curriculum mines with the base model
    progress = not args.quiet
    bindex = humaneval_index()
    seen: set = set()
    all_pairs: list[dict] = []
    t_start = time.time()
    pool = SandboxPool(workers=args.workers, timeout=mcfg.mining_timeout)
    try:
        for r in range(1, args.rounds + 1):
            rdir = run_dir / f"round{r}"
            seed_r = mcfg.seed + 1000 * (r - 1)
            key = f"round{r}/pool"
            if not book.done(key):
                t0 = time.time()
                if r == 1:
                    rows = generate_problems(rdir / "generated.jsonl", get, "r1", args.pool_size, mcfg, seed_r,
                                             progress) if args.pool_size else []
                    cands = [{"key": x["key"], "text": x["samples"][0]["text"]} for x in rows]
                    cands += [{"key": f"seed-{p['id']}", "origin": "seed-file",
                               "problem": {k: p.get(k, "") for k in ("entry_point", "signature", "docstring",
                                                                     "reference", "tests")}} for p in seeds]
                else:
                    cands = [{"key": v["key"], "text": v["samples"][0]["text"], "origin": f"variant:{v['direction']}"}
                             for v in read_rows(run_dir / f"round{r - 1}" / "variants.jsonl")]
                recs, counts = verify_problems(cands, pool, mcfg, bindex, seen)
                write_jsonl_atomic(rdir / "pool.jsonl", recs)
                book.mark(key, counts, time.time() - t0)
            recs = read_rows(rdir / "pool.jsonl")
            seen.update(code_hash(x["problem"]["reference"]) for x in recs if "verify_status" in x)
            problems = [x for x in recs if x["verified"]]
            if not problems:
                book.mark(f"round{r}/empty", {"pool": 0}, 0.0)
                break

            key = f"round{r}/solve"
            if not book.done(key):
                t0 = time.time()
                items = solve_items(problems, mcfg.system)
                generate_into(rdir / "greedy.jsonl", get, items, sampling(0.0, mcfg), desc="greedy", progress=progress)
                generate_into(rdir / "samples.jsonl", get, items,
                              sampling(mcfg.solve_temperature, mcfg, n=mcfg.attempts, seed=seed_r + 11),
                              desc="samples", progress=progress)
                book.mark(key, {"problems": len(problems)}, time.time() - t0)
            greedy = {x["key"]: x for x in read_rows(rdir / "greedy.jsonl")}
            sampled = {x["key"]: x for x in read_rows(rdir / "samples.jsonl")}
            solved = [{"key": p["problem_id"], "samples": greedy[p["problem_id"]]["samples"] +
                       sampled[p["problem_id"]]["samples"]} for p in problems]

            key = f"round{r}/check"
            if not book.done(key):
                t0 = time.time()
                checked, counts = check_attempts(problems, solved, pool, mcfg, progress=progress)
                write_jsonl_atomic(rdir / "attempts.jsonl", checked)
                book.mark(key, counts, time.time() - t0)
            checked = read_rows(rdir / "attempts.jsonl")

            key = f"round{r}/classify"
            if not book.done(key):
                t0 = time.time()
                classes = [{"problem_id": c["problem_id"], "class": classify(c["attempts"]), "n_pass": c["n_pass"],
                            "n_attempts": len(c["attempts"])} for c in checked]
                sometimes = {c["problem_id"] for c in checked if 0 < c["n_pass"] < len(c["attempts"])}
                mined, mcounts = mine_all([p for p in problems if p["problem_id"] in sometimes],
                                          [c for c in checked if c["problem_id"] in sometimes], mcfg, resolved.ref,
                                          mcfg.seed)
                final, fcounts = finalize_pairs(mined, bindex, mcfg.keep_contaminated, prior=all_pairs)
                write_jsonl_atomic(rdir / "classes.jsonl", classes)
                write_jsonl_atomic(rdir / "pairs.jsonl", final)
                book.mark(key, {"pool": len(problems), **{f"class_{k}": v for k, v in
                                                           Counter(c["class"] for c in classes).items()},
                                "solved_sometimes": len(sometimes), **mcounts, **fcounts}, time.time() - t0)
            all_pairs += read_rows(rdir / "pairs.jsonl")

            if r == args.rounds:
                break
            key = f"round{r}/variants"
            if not book.done(key):
                t0 = time.time()
                by_id = {p["problem_id"]: p["problem"] for p in problems}
                items = [{"key": f"r{r + 1}-v{i}", "parent": c["problem_id"],
                          "direction": "harder" if c["class"] == "harder" else "easier",
                          "messages": chat(mcfg.system, variant_prompt(by_id[c["problem_id"]],
                                                                       "harder" if c["class"] == "harder" else "easier"))}
                         for i, c in enumerate(read_rows(rdir / "classes.jsonl")) if c["class"] != "mine"]
                rows = generate_into(rdir / "variants.jsonl", get, items,
                                     sampling(mcfg.gen_temperature, mcfg, seed=seed_r + 31), desc="variants",
                                     progress=progress) if items else []
                book.mark(key, {"requested": len(items),
                                **{f"requested_{k}": v for k, v in Counter(i["direction"] for i in items).items()}},
                          time.time() - t0)
    finally:
        pool.close()
        slot.release()

    out_info = write_pairs_file(pairs_out, all_pairs)
    training, evaluation = None, {}
    if all_pairs:
        res = train_and_evaluate(slot=slot, pairs=all_pairs, pairs_info=out_info, cfg=tcfg,
                                 adapter_dir=run_dir / "adapter", name="curriculum", spec=spec,
                                 eval_root=run_dir / "eval", script=__file__, argv=argv, args=vars(args),
                                 progress=progress)
        training, evaluation = res["training"], res["evaluation"]
    result = {**provenance(__file__, argv, vars(args)), "config": json.loads(json.dumps(config)),
              "model": resolved.provenance(), "stages": book.data, "pairs_out": out_info,
              "training": training or {"skipped": True, "reason": "no pairs"}, "evaluation": evaluation,
              "timings": {"total_s_this_invocation": round(time.time() - t_start, 1)}}
    write_json_atomic(run_dir / "result.json", result)
    print(f"\ncurriculum · {resolved.ref} · {run_dir}\n  pairs: {out_info['count']} -> {pairs_out}")
    for k, v in book.data.items():
        if k.endswith("/classify"):
            c = v["counts"]
            print(f"  {k.split('/')[0]}: pool {c['pool']}, harder {c.get('class_harder', 0)}, "
                  f"easier {c.get('class_easier', 0)}, sometimes {c['solved_sometimes']}, pairs {c['pairs_out']}")
    print_comparisons("evaluation", evaluation)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
