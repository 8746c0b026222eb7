"""Self-bootstrap: the model writes problems, solves them, mines repair pairs, trains on them.

Paper rows: PAPER.md §1 claims 3 and 4 (the 7B pairs behind 25 -> 95–112 on HumanEval), 11
(cross-architecture), 12 (saturation: ``recipe/bootstrap.py --model Qwen/Qwen3-8B-Base``),
15 (recursive bootstrap: ``--iterations 3``, iteration 1 gives most of the lift) and 18 (the
boundary chart runs this script once per model). Method: PAPER.md §2, stages 1–5.

Full command (paper constants; a GPU and vLLM for a 7B model):
    python recipe/bootstrap.py --model Qwen/Qwen2.5-7B --problems-per-iter 100 --run-name boot_7b \\
        --dtype bfloat16 --device cuda
Recursive bootstrap (claim 15):
    python recipe/bootstrap.py --model Qwen/Qwen2.5-7B --iterations 3 --run-name recursive_7b
Quick command (embedded 0.5B model on CPU: 8 problems, 2 attempts, 5 evaluation tasks; roughly
10–20 min on 2 cores, an estimate from the per-stage timings below):
    python recipe/bootstrap.py --problems-per-iter 8 --attempts 2 --max-new-tokens 256 --limit 5 \\
        --max-steps 4 --run-name boot_quick

Stages per iteration, each written under results/<run>/iter<i>/ and skipped on a rerun once
complete (``stages.json`` records each stage's counts and seconds):
1. generate  ``generated.jsonl``  one problem per call (T=0.9, top-p 0.95; ``--problem-style
   hard``: non-trivial algorithms at T=0.95);
2. verify    ``problems.jsonl``   parse with ``ast`` (>= 2 asserts, non-trivial body), drop
   problems sharing a 13-gram with HumanEval prompts/solutions (reported) and duplicates
   (normalised hash), run the reference against its own tests in the sandbox (8 s);
3. solve     ``solutions.jsonl``  4 attempts per problem at T=0.8, 400 tokens; the solver sees
   the signature, docstring and tests only, never the reference body;
4. check     ``attempts.jsonl``   every attempt's extracted code against the tests, in the sandbox;
5. repair    ``repair_pairs.jsonl`` one repair attempt (T=0.8) for problems every attempt failed;
   a passing repair becomes a pair;
6. mine      ``pairs.jsonl``      first failing attempt + first passing one per mixed problem,
   format junk (no code) never used as ``broken``, duplicate pairs dropped, pairs decontaminated;
7. train     ``adapter/``         LoRA (common.lora, PAPER.md §3) from the base model on all pairs
   so far (+ ``--extra-pairs``), after every ``--train-every`` iterations; later iterations mine
   with the newest adapter (``--mine-with-base`` turns that off);
8. evaluate  ``results/<run>/eval/`` base and adapter, greedy, under ``--eval-protocols``
   (he-chat and qwen-official by default) with common.evaluation.evaluate_code; paired deltas
   (McNemar p, bootstrap CI) in result.json.
The mined pairs go to ``data/pairs_<run-name>.jsonl`` (``--pairs-out``); results/<run>/result.json
holds provenance, every stage's counts, the pairs file's sha256 and the comparisons.
Expect, for the 0.5B model on 2 CPU cores (estimates, not a measured full run): seconds per
generated problem and per attempt (batched decoding), ~8 s per training example and epoch
(measured), ~10 min per 164-task evaluation and protocol (evals/eval_raw.py). The test run
(SmolLM2-135M, 2 problems + 2 seeded, 2 attempts of 64 tokens, 1 step, 2 tasks) takes ~2 min.

Deviations from the paper:
1. The solver never sees the reference body (PAPER.md §4 defect 1): the signature is rebuilt
   from the ``ast`` with the docstring as the only body.
2. Pairs never use format junk (an attempt with no extractable code) as ``broken``; the counts
   of such attempts are recorded (defect 4).
3. Programs pass only when the tests demonstrably ran (sandbox; defect 6); harness errors are
   never mined.
4. Problems and pairs that share a 13-gram with HumanEval are dropped (``--keep-contaminated``
   keeps them); the original did no decontamination.
5. Training masks the prompt (chat-masked) and is seeded; evaluation uses the corrected he-chat
   post-processing (defects 2, 3, 8, 9); ``--eval-protocols he-chat-faithful`` gives the original.
6. The solver prompt's wording is ours (the paper gives none): "Implement: {signature}\\n\\nTests:
   \\n{tests}\\n\\nOutput the complete function in a ```python block."
7. A resumed generation stage draws fresh seeds for the items it still has to generate.
"""
from __future__ import annotations

import sys


def build_parser():
    from common.recipe import build_bootstrap_parser
    return build_bootstrap_parser(__doc__, "plain")


def main(argv=None) -> int:
    from common.cli import run_main
    return run_main(_main, argv)


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    from common.recipe import print_summary, run_bootstrap
    res = run_bootstrap(args, script=__file__, argv=argv if argv is not None else sys.argv[1:], variant="plain")
    print_summary(res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
