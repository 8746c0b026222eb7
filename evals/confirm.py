"""Confirm an adapter's lift: base vs adapter on the same tasks, paired per task.

Paper rows: every "base -> after" number of PAPER.md §1 (claims 1, 3, 4, 6, 11, 12, 15), read
as a paired comparison: the same HumanEval tasks under the same protocol, McNemar's exact test
on the discordant tasks and a paired bootstrap CI of the difference (common.metrics.paired_delta).

Full command (all 164 tasks, both protocols, greedy):
    python evals/confirm.py --model Qwen/Qwen2.5-7B --adapter adapters/7b_seed13 --run-name confirm_7b_s13
Quick command (embedded 0.5B model, 5 tasks, one protocol; ~5 min on 2 CPU cores, estimated):
    python evals/confirm.py --adapter /tmp/adapter_quick --limit 5 --eval-protocols he-chat \\
        --run-name confirm_quick
Reuse two finished eval_raw runs (no model is loaded):
    python evals/confirm.py --base-run results/eval_A --adapter-run results/eval_B --run-name confirm_AB

Writes results/<run>/result.json: provenance, model and adapter (sha256), and per protocol the
base and adapter pass@1 with intervals, the paired comparison (delta, 95% CI, McNemar p, tasks
gained and lost) and every task's outcome on both sides. The evaluations themselves live in
results/<run>/base_<protocol>/ and adapter_<protocol>/ (common.evaluation.evaluate_code; a rerun
resumes them). Expect twice the time of one evals/eval_raw.py run per protocol.

Deviations from the paper:
1. The paper reports two unpaired counts; this script adds the paired test and interval, so a
   lift on few tasks is not mistaken for a real one.
2. Evaluation uses the corrected he-chat post-processing by default (PAPER.md §4 defects 2–3);
   ``--eval-protocols he-chat-faithful`` gives the original.
"""
from __future__ import annotations

import argparse


def build_parser() -> argparse.ArgumentParser:
    from common.cli import add_model_args, add_run_args
    from common.compare import add_eval_args
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    add_model_args(p)
    add_eval_args(p)
    g = p.add_argument_group("reuse")
    g.add_argument("--base-run", default=None, help="a finished eval run directory (samples.jsonl) for the base side")
    g.add_argument("--adapter-run", default=None,
                   help="a finished eval run directory for the adapter side (with --base-run: no model is loaded)")
    add_run_args(p)
    return p


def main(argv=None) -> int:
    from common.cli import run_main
    return run_main(_main, argv)


def _per_task(base: dict, other: dict) -> dict:
    return {t: {"base": base[t], "adapter": other[t]} for t in sorted(base)}


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    import json
    from pathlib import Path

    from common.compare import EvalRun, ModelSlot, compare, evaluate_and_compare, task_outcomes
    from common.models import check_adapter_dir, resolve_model
    from common.results import InputError, dir_sha256, results_root, slug, write_json_atomic
    from common.runtime import ModelConfig

    ev = EvalRun.from_args(__file__, argv, args)
    root = Path(args.out_dir or results_root())
    comparisons = {}
    if args.base_run or args.adapter_run:
        if not (args.base_run and args.adapter_run):
            raise InputError("--base-run and --adapter-run go together")
        cfgs = []
        for d in (args.base_run, args.adapter_run):
            c = Path(d) / "config.json"
            if not c.is_file():
                raise InputError(f"{d}: no config.json; not an evaluation run directory")
            cfgs.append(json.loads(c.read_text()))
        if cfgs[0].get("task_ids") != cfgs[1].get("task_ids"):
            raise InputError("the two runs cover different tasks; a paired comparison needs the same tasks")
        if cfgs[0].get("protocol") != cfgs[1].get("protocol"):
            raise InputError(f"the two runs use different protocols ({cfgs[0].get('protocol')} vs "
                             f"{cfgs[1].get('protocol')})")
        run_name = args.run_name or f"confirm_{Path(args.base_run).name}_vs_{Path(args.adapter_run).name}"
        run_dir = root / run_name
        b, a = task_outcomes(args.base_run), task_outcomes(args.adapter_run)
        comparisons[cfgs[0].get("protocol")] = {
            "base": {"run_dir": args.base_run, "model": cfgs[0].get("model")},
            "adapter": {"run_dir": args.adapter_run, "model": cfgs[1].get("model")},
            "comparison": compare(b, a), "per_task": _per_task(b, a)}
        model = {"base": cfgs[0].get("model"), "adapter": cfgs[1].get("model")}
    else:
        if not args.adapter:
            raise InputError("give --adapter DIR (or --base-run and --adapter-run)")
        check_adapter_dir(args.adapter)
        if not ev.spec.protocols:
            raise InputError("--eval-protocols is empty; nothing to compare")
        resolved = resolve_model(args.model)
        run_name = args.run_name or f"confirm_{slug(args.model)}_{slug(args.adapter)}" + (
            f"_limit{args.limit}" if args.limit else "")
        run_dir = root / run_name
        evaluation = evaluate_and_compare(ModelSlot(resolved, ModelConfig.from_args(args)), {"adapter": args.adapter},
                                          run_dir, ev)
        for proto, entry in evaluation.items():
            b = task_outcomes(entry["base"]["run_dir"])
            a = task_outcomes(entry["adapter"]["run_dir"])
            comparisons[proto] = {"base": entry["base"], "adapter": {k: v for k, v in entry["adapter"].items()
                                                                      if k != "comparison"},
                                  "comparison": entry["adapter"]["comparison"], "per_task": _per_task(b, a)}
        model = {**resolved.provenance(), "adapter": args.adapter, "adapter_sha256": dir_sha256(args.adapter)}
    result = {**ev.invocation.provenance(), "model": model, "comparisons": comparisons}
    write_json_atomic(run_dir / "result.json", result)
    print(f"\nconfirm · {run_dir}")
    for proto, c in comparisons.items():
        print(f"  [{proto}] {c['comparison']['headline']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
