"""Multi-pair mining: 8 attempts per problem, up to 4 distinct failing attempts each, r32/α64.

Paper rows: PAPER.md §1 claims 1 and 2 (Qwen2.5-14B base + 100 pairs: HumanEval 44 -> 131–132,
HumanEval+ 122) and the §3.7 pipeline (200 generated problems, 8 attempts, <= 4 pairs per
problem, r32, plus 40 warm-up pairs). Method: PAPER.md §2 "Variants: multi-pair".

Full command (paper settings; GPU):
    python recipe/multi_pair.py --model Qwen/Qwen2.5-14B --warmup-pairs data/pairs_7b_40.jsonl \\
        --problems-per-iter 200 --run-name multi_14b --dtype bfloat16 --device cuda
Quick command (embedded 0.5B model on CPU, 6 problems, 3 attempts, 5 evaluation tasks; roughly
15–25 min on 2 cores, estimated):
    python recipe/multi_pair.py --problems-per-iter 6 --attempts 3 --max-new-tokens 256 --limit 5 \\
        --max-steps 4 --run-name multi_quick

Same stages and files as recipe/bootstrap.py (see its docstring), with these settings: system
prompt "You are an expert Python coder. Output one ```python block only." while mining, training
and (``he-chat-multi``) evaluating; 8 attempts at T=0.8 with 500 new tokens; up to
``--max-pairs-per-problem 4`` distinct failing attempts per problem (normalised-hash dedup),
pair k fixed by passing attempt k (cycling); no repair attempt for all-fail problems; LoRA
r32/α64. ``--warmup-pairs FILE`` is added to the training set; its path, sha256, count and the
models that mined it are recorded in result.json (the paper's 14B adapter silently included
40 pairs mined by the 7B model, PAPER.md §4 defect 10). Expect roughly twice the bootstrap's
solving time per problem.

Deviations from the paper: those of recipe/bootstrap.py, plus
1. The warm-up pairs' origin is recorded, and they are not written to the output pairs file
   (defect 10).
2. Evaluation runs ``he-chat-multi`` (the multi-pair system prompt, corrected extraction),
   ``he-chat`` and ``qwen-official`` by default.
"""
from __future__ import annotations

import sys


def build_parser():
    from common.recipe import build_bootstrap_parser
    return build_bootstrap_parser(__doc__, "multi")


def main(argv=None) -> int:
    from common.cli import run_main
    return run_main(_main, argv)


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    from common.recipe import print_summary, run_bootstrap
    res = run_bootstrap(args, script=__file__, argv=argv if argv is not None else sys.argv[1:], variant="multi")
    print_summary(res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
