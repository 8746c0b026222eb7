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

This script is recipe/bootstrap.py run with ``variant="multi"``: the same stages and files (see
its docstring and code), with these settings (``VARIANTS["multi"]`` there): system
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


def _bootstrap() -> dict:
    """recipe/bootstrap.py's functions (scripts are files, not a package): this script is that
    one with ``variant="multi"``."""
    import runpy
    from pathlib import Path
    return runpy.run_path(str(Path(__file__).with_name("bootstrap.py")))


def build_parser():
    return _bootstrap()["build_parser"]("multi", __doc__)


def main(argv=None) -> int:
    return _bootstrap()["main"](argv, variant="multi", script=__file__, doc=__doc__)


if __name__ == "__main__":
    raise SystemExit(main())
