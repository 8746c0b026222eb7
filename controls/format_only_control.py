"""Format-only control: repair pairs whose "broken" attempt is empty or junk, "fixed" = reference.

Paper row: PAPER.md §4 defect 4 — base models in a chat template run past the end of turn and
most released "broken" attempts are format junk, so part of the published lift (§1 claims 1, 3,
11) may be format learning. Training on pairs that carry only the format (how to answer: one
fenced block, then stop) and no real bug separates format learning from skill: compare its
lift with the recipe's and with controls/corrupt_pairs_control.py.

Full command (GPU; MBPP train split as the source):
    python controls/format_only_control.py --model Qwen/Qwen2.5-7B --mbpp data/mbpp.jsonl \\
        --run-name format_only_7b --dtype bfloat16 --device cuda
Quick command (embedded 0.5B model, 8 problems, 4 optimizer steps, 5 evaluation tasks, one
protocol; ~5 min on 2 CPU cores, estimated):
    python controls/format_only_control.py --limit-problems 8 --max-steps 4 --limit 5 \\
        --eval-protocols he-chat --run-name format_only_quick

How the pairs are made: for each verified, decontaminated problem of the source
(data/external_problems.jsonl by default, or ``--mbpp``), ``broken`` is one of (seeded choice,
``--control-seed``): an empty implementation (the signature with ``pass``), the signature line
cut off, the fragment "block." (what the original extraction produced from echoed
instructions, defect 2) or a sentence of prose; its ``error`` is what the sandbox reports when
that text is run against the tests; ``fixed`` is the reference solution. Then the recipe's
train -> evaluate path (results/<run>/result.json, pairs in results/<run>/pairs.jsonl).

Deviations from the paper:
1. This control is ours (the paper has none; PAPER.md §4 asks for it).
2. ``broken`` is never literally empty: the pair schema requires text, so "empty" is the
   signature with a ``pass`` body.
"""
from __future__ import annotations

import argparse

from common.results import InputError

JUNK_KINDS = ("stub", "cut_signature", "echo_fragment", "prose")


def build_parser() -> argparse.ArgumentParser:
    from common.compare import add_training_path_args
    from common.controls import add_source_args
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    add_source_args(p)
    p.add_argument("--control-seed", type=int, default=0, help="seed of the junk choice per problem (default 0)")
    p.add_argument("--junk", default=",".join(JUNK_KINDS),
                   help=f"comma-separated junk kinds to draw from: {', '.join(JUNK_KINDS)} (default all)")
    add_training_path_args(p)
    return p


def junk_attempt(kind: str, signature: str) -> str:
    """The junk text of one kind for a problem's signature."""
    def_lines = [l for l in signature.splitlines() if l.lstrip().startswith(("def ", "async def "))]
    head = def_lines[0] if def_lines else signature.splitlines()[0]
    if kind == "stub":
        return signature.rstrip() + "\n    pass"
    if kind == "cut_signature":
        return head
    if kind == "echo_fragment":
        return "block."
    if kind == "prose":
        return "Here is the corrected code:"
    raise InputError(f"unknown junk kind {kind!r}; choose from {', '.join(JUNK_KINDS)}")


def junk_kinds(text: str) -> list[str]:
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    bad = [k for k in kinds if k not in JUNK_KINDS]
    if bad or not kinds:
        raise InputError(f"--junk: unknown kinds {bad}; choose from {', '.join(JUNK_KINDS)}")
    return kinds


def make_format_pairs(problems: list[dict], pool, kinds: list[str], seed: int,
                      timeout: float) -> tuple[list[dict], dict]:
    """One pair per problem: ``broken`` = junk of a kind drawn from ``kinds`` (seeded), ``error``
    = what the sandbox says when it runs against the tests, ``fixed`` = the reference."""
    import random
    from collections import Counter

    from common.pairs import error_text, make_pair
    from common.sandbox import Job
    rng = random.Random(seed)
    chosen = [(p, rng.choice(kinds)) for p in problems]
    broken = [junk_attempt(k, p["signature"]) for p, k in chosen]
    res = pool.run_many([Job.asserts(b, p["tests"], timeout=timeout) for (p, _), b in zip(chosen, broken)])
    pairs, used, passed = [], Counter(), 0
    for (p, k), b, r in zip(chosen, broken, res):
        if r.passed or r.status == "harness_error":
            passed += 1            # junk that passes (impossible unless the tests are empty) is not a pair
            continue
        used[k] += 1
        pairs.append(make_pair(signature=p["signature"], tests=p["tests"], broken=b, error=error_text(r.status, r.error),
                               fixed=p["reference"], problem_id=str(p["id"]), source="format-only-control",
                               model=None, seed=seed, junk=k))
    return pairs, {"problems": len(problems), "pairs": len(pairs), "junk_kinds": dict(used),
                   "junk_not_failing": passed}


def main(argv=None) -> int:
    from common.cli import run_main
    return run_main(_main, argv)


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    from common.compare import TrainEvalSetup, print_comparisons
    from common.controls import SourceConfig, run_control
    kinds = junk_kinds(args.junk)             # bad input fails before anything is loaded or written
    source = SourceConfig.from_args(args)

    def make_pairs(problems, pool):
        return make_format_pairs(problems, pool, kinds, args.control_seed, source.mining_timeout)
    res = run_control(TrainEvalSetup.from_args(__file__, argv, args), source, "format_only", make_pairs,
                      {"control_seed": args.control_seed, "junk": args.junk})
    print_comparisons(f"format-only control · {res['pairs']['count']} pairs · {res['run_dir']}", res["evaluation"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
