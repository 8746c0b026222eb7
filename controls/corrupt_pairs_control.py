"""Negative control: repair pairs from an external source with mechanically corrupted solutions.

Paper row: PAPER.md §1 claim 6 (7B, corrupted external pairs: HumanEval 25 -> 25) and the
guide's §3.6 "format alone does not explain the lift". If training on pairs that have the
recipe's exact format but none of the model's own mistakes gives no lift, the recipe's lift
comes from the self-mined content.

Full command (the paper's source is MBPP's train split; a GPU for a 7B model):
    python controls/corrupt_pairs_control.py --model Qwen/Qwen2.5-7B --mbpp data/mbpp.jsonl \\
        --run-name corrupt_7b --dtype bfloat16 --device cuda
Offline default source (data/external_problems.jsonl: 42 hand-written problems, see data/README.md):
    python controls/corrupt_pairs_control.py --run-name corrupt_05b
Quick command (embedded 0.5B model, 8 problems, 4 optimizer steps, 5 evaluation tasks, one
protocol; ~5 min on 2 CPU cores, estimated):
    python controls/corrupt_pairs_control.py --limit-problems 8 --max-steps 4 --limit 5 \\
        --eval-protocols he-chat --run-name corrupt_quick

How the pairs are made: each problem's reference solution (verified against its own tests in
the sandbox; problems sharing a 13-gram with HumanEval are dropped and reported) is corrupted
by one mechanical edit — off-by-one in a ``range`` stop or an index/slice bound, a swapped
comparison or arithmetic operator, a return of the wrong variable, a dropped statement, a
flipped boolean (common.corruptions.corruptions). Candidate edits are tried in a seeded random order
(``--control-seed``; kinds taken round-robin so that no kind dominates because it has more
sites) until one really fails the tests in the sandbox; its error message becomes
the pair's ``error``, the (``ast``-normalised, like the corruption) reference becomes ``fixed``.
Problems where no edit fails are skipped and counted. Then exactly the recipe's path: LoRA
training (common.lora, PAPER.md §3) and greedy evaluation of base and adapter with paired
comparisons (results/<run>/result.json; pairs in results/<run>/pairs.jsonl).

Deviations from the paper:
1. Offline, the source is our own 42-problem file instead of MBPP (``--mbpp FILE`` restores it).
2. Every corruption is checked to fail in the sandbox, and the real error is recorded.
3. Training masks the prompt and evaluation uses the corrected he-chat extraction (defects 2, 3, 8).
"""
from __future__ import annotations

import argparse


def build_parser() -> argparse.ArgumentParser:
    from common.compare import add_training_path_args
    from common.controls import add_source_args
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    add_source_args(p)
    p.add_argument("--control-seed", type=int, default=0,
                   help="seed of the order in which corruptions are tried (default 0)")
    add_training_path_args(p)
    return p


def make_corrupt_pairs(problems: list[dict], pool, seed: int, timeout: float) -> tuple[list[dict], dict]:
    """One corrupted-reference pair per problem whose corruption fails the tests (``seed``: the
    order candidates are tried in; ``timeout``: sandbox seconds per program)."""
    import ast
    import random
    from collections import Counter

    from common.corruptions import corruptions
    from common.pairs import error_text, make_pair
    from common.sandbox import Job
    rng = random.Random(seed)
    cands = {}
    for p in problems:               # kinds in a seeded order, round-robin, so no kind dominates
        by_kind: dict[str, list] = {}
        for c in corruptions(p["reference"], p["entry_point"]):
            by_kind.setdefault(c[0], []).append(c)
        kinds = sorted(by_kind)
        rng.shuffle(kinds)
        for k in kinds:
            rng.shuffle(by_kind[k])
        order = []
        while any(by_kind.values()):
            order += [by_kind[k].pop() for k in kinds if by_kind[k]]
        cands[p["id"]] = order
    chosen, pending = {}, [p for p in problems if cands[p["id"]]]
    rounds = 0
    while pending:                        # round r tries each unresolved problem's r-th candidate
        jobs = [(p, cands[p["id"]][rounds]) for p in pending if rounds < len(cands[p["id"]])]
        if not jobs:
            break
        res = pool.run_many([Job.asserts(code, p["tests"], timeout=timeout) for p, (_, _, code) in jobs])
        for (p, cand), r in zip(jobs, res):
            if r.status in ("failed", "timeout", "memory", "crashed"):
                chosen[p["id"]] = (cand, r)
        pending = [p for p in pending if p["id"] not in chosen]
        rounds += 1
    pairs, kinds = [], Counter()
    for p in problems:
        if p["id"] not in chosen:
            continue
        (kind, site, code), r = chosen[p["id"]]
        kinds[kind] += 1
        pairs.append(make_pair(signature=p["signature"], tests=p["tests"], broken=code,
                               error=error_text(r.status, r.error), fixed=ast.unparse(ast.parse(p["reference"])),
                               problem_id=str(p["id"]), source="corrupt-control", model=None,
                               seed=seed, corruption={"kind": kind, "site": site}))
    return pairs, {"problems": len(problems), "pairs": len(pairs), "no_failing_corruption": len(problems) - len(pairs),
                   "corruption_kinds": dict(kinds), "sandbox_rounds": rounds}


def main(argv=None) -> int:
    from common.cli import run_main
    return run_main(_main, argv)


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    from common.compare import TrainEvalSetup, print_comparisons
    from common.controls import SourceConfig, run_control
    source = SourceConfig.from_args(args)

    def make_pairs(problems, pool):
        return make_corrupt_pairs(problems, pool, args.control_seed, source.mining_timeout)
    res = run_control(TrainEvalSetup.from_args(__file__, argv, args), source, "corrupt_pairs", make_pairs,
                      {"control_seed": args.control_seed})
    print_comparisons(f"corrupt-pairs control · {res['pairs']['count']} pairs · {res['run_dir']}", res["evaluation"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
