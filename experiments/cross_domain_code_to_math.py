"""Code -> math transfer: a code-repair adapter evaluated on math against its base model, paired per task.

Paper row: PAPER.md §1 claim 16 (the 7B code adapter on GSM8K: +2, "marginal"); seed 002 §3.10
(``python experiments/cross_domain_code_to_math.py --code-adapter adapter_7b_seed13``; seed
spellings ``--code-adapter`` and ``--base-model`` are read as ``--adapter`` and ``--model``).

Method, one function per stage (results/<run>/eval/, each evaluation resumable):
1. base      greedy evaluation of the base model on ``--eval-bench`` (default the procedural set,
   300 problems; ``--base-run`` reuses a finished evals/eval_math.py run after checking it);
2. adapter   the same with the code adapter (default results/train_multi_ext_qwen05b_trl, the
   committed adapter trained on 58 code repair pairs by recipe/train_on_pairs.py);
3. compare   base vs adapter per task under the flexible, strict and faithful verdicts: delta,
   paired bootstrap 95% interval, McNemar exact p, tasks gained and lost.

Full command (embedded 0.5B model and its committed code adapter):
    python experiments/cross_domain_code_to_math.py --run-name code2math_qwen05b
Quick command (SmolLM2-135M with a tiny adapter trained by tests/test_math_recipes.py; 2 problems):
    python experiments/cross_domain_code_to_math.py --model smollm2-135m-instruct --adapter ADAPTER_DIR \\
        --limit 2 --eval-max-new-tokens 32 --run-name code2math_quick

Writes results/<run>/result.json (model and adapter with their sha256, the training result of the
adapter when it has one, base and adapter accuracy with intervals, the paired comparisons) and the
two evaluations in results/<run>/eval/{base,code-adapter}/. Expected runtime on 2 CPU cores with
the 0.5B model: two greedy evaluations of 300 problems x ~200 tokens at ~100 tokens/s, ~20 min
(~10 with --base-run).

Deviations from the paper: the adapter is the 0.5B one committed here (58 multi-pair code pairs,
not the 7B seed-13 adapter), and the evaluation set is the procedural set (GSM8K through
--eval-bench gsm8k --eval-data-path FILE).
"""
from __future__ import annotations

import argparse

DEFAULT_ADAPTER = "results/train_multi_ext_qwen05b_trl"


def build_parser() -> argparse.ArgumentParser:
    from common.cli import add_model_args, add_run_args
    from common.math_eval import add_math_eval_args
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    add_model_args(p)
    p.set_defaults(adapter=DEFAULT_ADAPTER)
    for a in p._actions:
        if a.dest == "adapter":
            a.help = f"the code adapter to evaluate on math (default {DEFAULT_ADAPTER})"
    add_math_eval_args(p)
    add_run_args(p)
    return p


def main(argv=None) -> int:
    from common.cli import run_main
    return run_main(_main, argv)


def _main(argv) -> int:
    import dataclasses
    import json
    from pathlib import Path

    from common.cli import RunOptions
    from common.compare import ModelSlot
    from common.evaluation import Invocation
    from common.math_eval import EvalContext, MathEvalSpec, evaluate_and_compare_math, print_math_comparison
    from common.models import check_adapter_dir, resolve_model
    from common.results import REPO_ROOT, dir_sha256, results_root, slug, write_json_atomic
    from common.runtime import ModelConfig
    args = build_parser().parse_args(argv)
    adapter = Path(args.adapter)
    if not adapter.is_absolute() and not adapter.exists():
        adapter = REPO_ROOT / adapter
    check_adapter_dir(str(adapter))
    spec = MathEvalSpec.from_args(args)
    resolved = resolve_model(args.model)
    run_dir = Path(args.out_dir or results_root()) / (args.run_name or f"code2math_{slug(args.model)}_{spec.bench}")
    ev = EvalContext(Invocation(__file__, argv, vars(args)), dataclasses.replace(RunOptions.from_args(args), overwrite=False))
    slot = ModelSlot(resolved, ModelConfig.from_args(args).with_adapter(None))
    evaluation = evaluate_and_compare_math(slot, {"code-adapter": str(adapter)},   # 1. base, 2. adapter, 3. compare
                                           run_dir / "eval", spec, ev)
    train_res = adapter / "result.json"
    result = {**ev.invocation.provenance(), "model": resolved.provenance(), "adapter": str(adapter),
              "adapter_sha256": dir_sha256(adapter),
              "adapter_training": json.loads(train_res.read_text()).get("pairs") if train_res.is_file() else None,
              "evaluation": evaluation}
    write_json_atomic(run_dir / "result.json", result)
    print_math_comparison(f"code -> math · {resolved.ref} + {adapter} · {run_dir}", evaluation)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
