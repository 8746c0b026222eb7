"""SSD held-out evaluation (issue 17, acceptance 1): T_eval tuned on a validation split disjoint
from the held-out test set, separately for the base model and each SSD arm, then on the held-out
set greedy pass@1 and pass@k from n samples at each model's own tuned T_eval, per difficulty slice,
each arm paired against the base (the SSD result must beat the best-tuned base, not a fixed T).

Not a PAPER.md claim: seed 003's evaluation of recipe/ssd.py's arms.

Full command (embedded 0.5B model; the arms and the validation split come from the SSD run):
    python evals/ssd_eval.py --ssd-run results/ssd_qwen05b --slices-from results/ssd_precondition_qwen05b \\
        --run-name ssd_eval_qwen05b
Quick command (SmolLM2, 2 tasks per set, 2 temperatures):
    python evals/ssd_eval.py --ssd-run results/ssd_quick --model smollm2-135m-instruct --limit 2 --val-limit 2 \\
        --t-grid 0.6,1.0 --val-samples 2 --n-samples 2 --max-new-tokens 48 --run-name ssd_eval_quick

Stages, per model (``base`` and each arm), each an evaluation run directory under results/<run>/
(resumable; a finished run with identical settings named by ``--runs`` is read instead):
1. tune      ``<model>/val_t<T>``: ``--val-samples`` samples per validation problem (the SSD run's
   pool/val.jsonl, never trained on) at every T of ``--t-grid``; T_eval = highest validation
   pass@1, ties to the lower T;
2. greedy    ``<model>/greedy_<bench>``: greedy on every held-out set;
3. sampled   ``<model>/sampled_<bench>``: ``--n-samples`` samples at the model's T_eval.
result.json: per model the tuning grid, T_eval, greedy and sampled pass@k with intervals; per arm
(``arms.minimal``, ``arms.verifier``: never merged) the paired comparison with the base — greedy
pass@1 (Wilson intervals both sides, McNemar, paired bootstrap), sampled pass@1 and pass@k deltas
— overall and per slice (the base's sampled pass rate, from ``--slices-from``'s independent samples
when given: hard < 0.3 <= medium < 0.7 <= easy).
Expect for the 0.5B model on 2 cores: 206 greedy problems ≈ 10-25 min per model; 206 x 10 samples ≈
1-2.5 h per model; the grid ≈ 5 T x val x 4 samples (≈ 10-20 min per model for ~50 val problems).

Deviations: the validation split is the model's own verified problems (pool/val.jsonl), the only
offline code problems with tests that are disjoint from both the held-out set and the training
prompts; their asserts are model-written.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from common.results import InputError


def build_parser() -> argparse.ArgumentParser:
    from common.cli import add_model_args, add_run_args
    from common.prompts import PROTOCOLS
    from common.ssd import add_arm_args
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    g = p.add_argument_group("what to evaluate")
    add_arm_args(g)
    g.add_argument("--val-file", default=None, help="validation problems file (default: <ssd-run>/pool/val.jsonl)")
    g.add_argument("--heldout", default="humaneval,problems", help="held-out benchmarks (default humaneval,problems)")
    g.add_argument("--slices-from", default=None,
                   help="a precondition run (evals/ssd_precondition.py) whose base samples, drawn independently of "
                        "this evaluation, set each held-out problem's difficulty slice (default: the base's own "
                        "held-out samples at T_eval, whose per-slice deltas carry regression to the mean)")
    g.add_argument("--runs", default=None, help="comma-separated finished evaluation runs to read when their settings match")
    g = p.add_argument_group("T_eval tuning and sampling")
    g.add_argument("--t-grid", default="0.2,0.4,0.6,0.8,1.0", help="temperatures tried on the validation split")
    g.add_argument("--val-samples", type=int, default=4, help="samples per validation problem (default 4)")
    g.add_argument("--val-limit", type=int, default=None, help="only the first N validation problems")
    g.add_argument("--n-samples", type=int, default=10, help="held-out samples per problem at T_eval (default 10)")
    g.add_argument("--top-p", type=float, default=0.95, help="nucleus truncation when sampling (default 0.95)")
    g.add_argument("--max-new-tokens", type=int, default=None, help="tokens per sample (default: the protocol's)")
    g.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    g.add_argument("--protocol", default="he-chat", choices=sorted(PROTOCOLS), help="prompt protocol (default he-chat)")
    add_model_args(p, adapter=False)
    add_run_args(p)
    return p


def models_of(args) -> tuple[dict, str]:
    """{"base": None, arm: adapter dir, ...} and the validation problems file."""
    from common.ssd import arm_adapters
    models = arm_adapters(args.ssd_run, args.arms)
    val = args.val_file or (str(Path(args.ssd_run) / "pool" / "val.jsonl") if args.ssd_run else None)
    if not val:
        raise InputError("T_eval tuning needs a validation split: --ssd-run or --val-file")
    return models, val


def main(argv=None) -> int:
    from common.cli import run_main
    return run_main(_main, argv)


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    from common.benchmarks import load_tasks
    from common.cli import RunOptions, comma_list
    from common.compare import ModelSlot
    from common.evaluation import Invocation
    from common.models import resolve_model
    from common.results import results_root, slug, write_json_atomic
    from common.rundir import lock_run_dir
    from common.runtime import ModelConfig
    from common.ssd import heldout_set, load_thresholds
    models, val_file = models_of(args)
    grid = comma_list(args.t_grid, "--t-grid", float)
    if not grid or min(grid) <= 0:
        raise InputError("--t-grid needs temperatures > 0")
    if args.slices_from and not any(Path(args.slices_from).glob("*/samples.jsonl")):
        raise InputError(f"--slices-from {args.slices_from}: no <bench>/samples.jsonl there (a precondition run?)")
    th = load_thresholds(args.thresholds)
    held = heldout_set([{"bench": b.strip()} for b in args.heldout.split(",") if b.strip()], args.limit)
    val = load_tasks("problems", limit=args.val_limit, path=val_file)
    if not val[0]:
        raise InputError(f"the validation split {val_file} is empty; T_eval cannot be tuned (raise --val-fraction "
                         f"in recipe/ssd.py or give --val-file)")
    run_dir = Path(args.out_dir or results_root()) / (args.run_name or f"ssd_eval_{slug(args.model)}")
    lock_run_dir(run_dir)
    ctx = EvalCtx(run_dir, ModelSlot(resolve_model(args.model), ModelConfig.from_args(args)), args,
                  Invocation(__file__, argv, vars(args)), RunOptions.from_args(args),
                  [c.strip() for c in (args.runs or "").split(",") if c.strip()])
    per_model = {}
    for label, adapter in models.items():
        tuned = tune_stage(ctx, label, adapter, val, grid)
        per_model[label] = {"adapter": adapter, "tuning": tuned,
                            "greedy": heldout_stage(ctx, label, adapter, held, None),
                            "sampled": heldout_stage(ctx, label, adapter, held, tuned["t_eval"])}
    ctx.slot.release()
    result = summary_stage(ctx, per_model, held, val, th)
    write_json_atomic(run_dir / "result.json", result)
    print_summary(result, run_dir)
    return 0


class EvalCtx:
    """What the stages share: run directory, model slot, flags, provenance, reusable runs."""

    def __init__(self, run_dir, slot, args, invocation, options, candidates):
        self.dir, self.slot, self.args = Path(run_dir), slot, args
        self.invocation, self.options, self.candidates = invocation, options, candidates

    def params(self, temperature: float | None, n: int):
        from common.prompts import get_protocol
        from common.sampling import SamplingParams
        proto = get_protocol(self.args.protocol)
        greedy = temperature is None
        return SamplingParams(n=1 if greedy else n, temperature=0.0 if greedy else temperature,
                              top_p=1.0 if greedy else self.args.top_p, top_k=0, stop=proto.stop, seed=self.args.seed,
                              max_new_tokens=self.args.max_new_tokens or proto.max_new_tokens, logprobs=True)

    def run(self, sub: str, adapter, tasks, dataset, params) -> tuple[dict, dict]:
        """(outcomes, run record) of one evaluation (reused when a finished identical run exists)."""
        import json
        from common.evaluation import EvalJob, EvalModel
        from common.prompts import get_protocol
        from common.ssd import evaluate_or_reuse, outcomes_of
        job = EvalJob(self.dir / sub, tasks, dataset, get_protocol(self.args.protocol), params,
                      EvalModel(self.slot.info(adapter), lambda: self.slot.get(adapter)), self.invocation, self.options)
        used, reused = evaluate_or_reuse(job, self.candidates)
        res = json.loads((used / "result.json").read_text())
        return outcomes_of(used), {"run_dir": str(used), "reused": reused, "timings": res.get("timings"),
                                   "pass_at_k": res["metrics"]["pass_at_k"]}


def tune_stage(ctx: EvalCtx, label: str, adapter, val: tuple, grid: list[float]) -> dict:
    """1. Validation pass@1 at every temperature of the grid; T_eval = the best."""
    from common.ssd_eval import best_temperature
    tasks, dataset = val
    rows = []
    for t in grid:
        _, rec = ctx.run(f"{label}/val_t{t:g}", adapter, tasks, dataset, ctx.params(t, ctx.args.val_samples))
        rows.append({"t": t, "pass@1": rec["pass_at_k"]["pass@1"], "run": rec["run_dir"], "timings": rec["timings"]})
    return {"grid": rows, "t_eval": best_temperature(rows), "val_n": len(tasks), "val_samples": ctx.args.val_samples,
            "val_dataset": dataset}


def heldout_stage(ctx: EvalCtx, label: str, adapter, held: dict, t_eval: float | None) -> dict:
    """2./3. Every held-out set greedy (``t_eval`` None) or with n samples at T_eval."""
    mode = "greedy" if t_eval is None else "sampled"
    outcomes, runs = {}, {}
    for bench, tasks, dataset in held["parts"]:
        out, rec = ctx.run(f"{label}/{mode}_{bench}", adapter, tasks, dataset, ctx.params(t_eval, ctx.args.n_samples))
        outcomes.update(out)
        runs[bench] = rec
    return {"t": t_eval, "outcomes": outcomes, "runs": runs}


def difficulty_slices(slices_from: str | None, base_sampled: dict, cuts) -> tuple[dict, str]:
    """Each held-out problem's slice and where it came from: the base samples of a precondition
    run (every ``<run>/<bench>/samples.jsonl``; they must cover every held-out problem), else
    the base's own held-out samples, the same draws the deltas compare."""
    from common.ssd import outcomes_of
    from common.ssd_eval import slices_of
    if not slices_from:
        return (slices_of(base_sampled, cuts), "the base model's own held-out samples at T_eval (the draws the "
                "deltas compare: per-slice deltas carry regression to the mean)")
    outcomes = {}
    for d in sorted(p.parent for p in Path(slices_from).glob("*/samples.jsonl")):
        outcomes.update(outcomes_of(d))
    missing = sorted(set(base_sampled) - set(outcomes))
    if missing:
        raise InputError(f"--slices-from {slices_from}: no samples for {len(missing)} held-out problems "
                         f"(first: {missing[0]})")
    n = min(len(outcomes[t]) for t in base_sampled)
    return (slices_of({t: outcomes[t] for t in base_sampled}, cuts),
            f"the base model's samples in {slices_from} (at least {n} per problem, drawn independently of this "
            f"evaluation)")


def summary_stage(ctx: EvalCtx, per_model: dict, held: dict, val: tuple, th: dict) -> dict:
    """pass@k per model; each arm against the base, overall and per slice."""
    from common.metrics import ks_for, pass_at_k_summary
    from common.ssd import describe_heldout
    from common.ssd_eval import compare_arm
    n = ctx.args.n_samples
    ks = sorted({1, min(n, th["battery"]["diversity_at_k"]["k"]), n})
    base = per_model["base"]
    slice_of, slice_source = difficulty_slices(ctx.args.slices_from, base["sampled"]["outcomes"],
                                               th["precondition"]["difficulty_thresholds"])
    models = {}
    for label, m in per_model.items():
        models[label] = {"adapter": m["adapter"], "tuning": m["tuning"], "t_eval": m["tuning"]["t_eval"],
                         "greedy": {"pass_at_k": pass_at_k_summary(m["greedy"]["outcomes"], [1]),
                                    "runs": m["greedy"]["runs"]},
                         "sampled": {"t": m["sampled"]["t"], "pass_at_k": pass_at_k_summary(m["sampled"]["outcomes"],
                                                                                              ks_for(n)),
                                     "runs": m["sampled"]["runs"]}}
    arms = {label: {"adapter": m["adapter"], "t_eval": m["tuning"]["t_eval"],
                    **compare_arm({"greedy": base["greedy"]["outcomes"], "sampled": base["sampled"]["outcomes"]},
                                  {"greedy": m["greedy"]["outcomes"], "sampled": m["sampled"]["outcomes"]},
                                  slice_of, ks)}
            for label, m in per_model.items() if label != "base"}
    return {**ctx.invocation.provenance(), "heldout": {"description": describe_heldout(held), "n": held["n"]},
            "validation": {"n": len(val[0]), "dataset": val[1]}, "protocol": ctx.args.protocol,
            "n_samples": n, "ks": ks, "thresholds_sha256": th["_sha256"],
            "slice_source": slice_source,
            "slice_counts": {s: sum(1 for v in slice_of.values() if v == s) for s in ("hard", "medium", "easy")},
            "models": models, "arms": arms}


def print_summary(result: dict, run_dir: Path) -> None:
    print(f"\nheld-out: {result['heldout']['description']}")
    for label, m in result["models"].items():
        g = m["greedy"]["pass_at_k"]["pass@1"]
        print(f"  {label}: T_eval {m['t_eval']:g}; greedy pass@1 {100 * g['mean']:.1f}%")
    for arm, a in result["arms"].items():
        print(f"  {arm} vs base (greedy): {a['greedy']['comparison']['headline']}")
    print(f"  results: {run_dir}  (report with the battery: experiments/ssd_report.py)")


if __name__ == "__main__":
    raise SystemExit(main())
