"""Recipe × test-time sampling: does a trained adapter add to best-of-N, or only to greedy?

Paper row: PAPER.md §1 claim 10 (14B: trained+TTS beats raw+TTS by +12.8 pp; with too few
pairs, 3B with 36 pairs, −4.9 pp). The paper's TTS numbers are ORACLE best-of-N (§4 defect 5);
here both the oracle and a deployable selector are reported.

What it does: two TTS runs on the same tasks and sampling settings (tts/tts_humaneval.py's
pipeline), base model and base + --adapter, each with greedy, n samples, model tests and
behaviour execution; or reuses two finished TTS runs (--base-run / --adapter-run). Then, per
task, with paired bootstrap intervals over tasks (and McNemar's exact p for 0/1 outcomes):
  * greedy lift:            adapter greedy − base greedy
  * synergy, first reading: adapter+TTS − base+TTS ("trained+TTS − raw+TTS", the paper's form)
  * synergy, interaction:   (adapter+TTS − adapter greedy) − (base+TTS − base greedy), i.e.
    does TTS gain more (> 0) or less (< 0) on top of the adapter than on top of the base
each for TTS = oracle_pass@n and TTS = the deployable selector (--rerank, default
behaviour_majority).

Full command (all 164 HumanEval tasks, n=10, 0.5B model and an adapter from recipe/):
    python experiments/recipe_x_tts_synergy.py --adapter adapters/<name> --n-samples 10
Reuse two finished tts_humaneval.py runs (seconds):
    python experiments/recipe_x_tts_synergy.py --base-run results/<tts base> --adapter-run results/<tts adapter>
Quick command (2 tasks, about 6 minutes on 2 CPU cores):
    python experiments/recipe_x_tts_synergy.py --adapter adapters/<name> --model smollm2-135m-instruct \\
        --limit 2 --n-samples 2 --max-new-tokens 48 --test-samples 0

Writes results/<run>/result.json (kind "synergy") and the two TTS runs in results/<run>/base/
and results/<run>/adapter/. Expected runtime on 2 CPU cores with the 0.5B model: twice
tts_humaneval.py, about 2–3 h.

Deviations: the paper compares a 14B base with its adapter on oracle best-of-N; we report the
oracle and a deployable selector, with per-task paired intervals instead of bare differences.
"""
from __future__ import annotations

import argparse

from common.results import InputError


def build_parser() -> argparse.ArgumentParser:
    from common.cli import add_code_bench_args
    from common.tts_run import add_code_tts_args
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    add_code_bench_args(p)
    p.add_argument("--base-run", default=None, help="finished TTS run directory of the base model (reuse)")
    p.add_argument("--adapter-run", default=None, help="finished TTS run directory of base + adapter (reuse)")
    add_code_tts_args(p, n=10)
    return p


def synergy(base: dict, adapter: dict, selector: str) -> dict:
    """Synergy numbers from two TTS results (kind tts_code, both with greedy). Pure."""
    from common.metrics import paired_delta
    for name, r in (("base", base), ("adapter", adapter)):
        if r.get("kind") not in ("tts_code", "tts_math"):
            raise InputError(f"{name} run is not a TTS result (kind {r.get('kind')!r})")
        if r["metrics"].get("greedy") is None:
            raise InputError(f"{name} run has no greedy reference (it was run with --no-greedy)")
        if selector not in r["metrics"]["selectors"]:
            raise InputError(f"{name} run has no {selector!r} selection")
    pb, pa = base["per_task"], adapter["per_task"]
    if set(pb) != set(pa):
        raise InputError(f"the runs cover different tasks ({len(pb)} vs {len(pa)})")
    nb, na = base["metrics"]["n_samples_per_task"], adapter["metrics"]["n_samples_per_task"]
    if nb != na:
        raise InputError(f"the runs drew different numbers of samples ({nb} vs {na})")

    def per(pt, what):
        if what == "greedy":
            return {t: float(v["greedy"]) for t, v in pt.items()}
        if what == "oracle":
            return {t: float(any(v["passed"])) for t, v in pt.items()}
        return {t: float(v["passed"][v["selected"][selector]]) for t, v in pt.items()}

    out = {"n": nb, "n_tasks": len(pb), "selector": selector,
           "greedy_lift": paired_delta(per(pb, "greedy"), per(pa, "greedy"))}
    for tts in ("oracle", "selector"):
        bt, at = per(pb, tts), per(pa, tts)
        bg, ag = per(pb, "greedy"), per(pa, "greedy")
        gain_b = {t: bt[t] - bg[t] for t in bt}
        gain_a = {t: at[t] - ag[t] for t in at}
        label = f"oracle_pass@{nb}" if tts == "oracle" else selector
        out[tts] = {"label": label,
                    "base_tts": sum(bt.values()) / len(bt), "adapter_tts": sum(at.values()) / len(at),
                    "tts_gain_base": paired_delta(bg, bt), "tts_gain_adapter": paired_delta(ag, at),
                    "trained_tts_minus_raw_tts": paired_delta(bt, at),
                    "interaction": paired_delta(gain_b, gain_a)}
    return out


def main(argv=None) -> int:
    from common.cli import run_main
    return run_main(_main, argv)


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    from pathlib import Path
    from common.results import InputError, provenance, results_root, slug, write_json_atomic
    from common.tts_run import read_tts_result, resolve_rerank
    if bool(args.base_run) != bool(args.adapter_run):
        raise InputError("--base-run and --adapter-run go together")
    if args.no_greedy:
        raise InputError("the synergy needs the greedy reference; drop --no-greedy")
    selector = resolve_rerank(args.rerank)
    if args.base_run:
        base, adapter = read_tts_result(args.base_run, "--base-run"), read_tts_result(args.adapter_run, "--adapter-run")
        name = args.run_name or f"synergy_{slug(args.base_run)}_vs_{slug(args.adapter_run)}"
        root = Path(args.out_dir or results_root()) / name
        sources = {"base": args.base_run, "adapter": args.adapter_run}
    else:
        if not args.adapter:
            raise InputError("give --adapter (a peft LoRA directory) or --base-run/--adapter-run")
        if args.greedy_run:
            raise InputError("--greedy-run is ambiguous here (base or adapter?); let the script run greedy")
        base, adapter, root = _run_both(args, argv)
        sources = {"base": str(root / "base"), "adapter": str(root / "adapter")}
    out = synergy(base, adapter, selector)
    result = {**provenance(__file__, argv, vars(args)), "kind": "synergy", "sources": sources,
              "model": base.get("model"), "adapter": (adapter.get("model") or {}).get("adapter"),
              "sampling": base.get("sampling"), "metrics": out}
    write_json_atomic(root / "result.json", result)
    pp = lambda d: f"{100 * d['delta']:+.1f} pp [{100 * d['ci'][0]:+.1f}, {100 * d['ci'][1]:+.1f}]"  # noqa: E731
    print(f"\nrecipe × TTS · n={out['n']} · {out['n_tasks']} tasks")
    print(f"  greedy lift (adapter − base): {pp(out['greedy_lift'])}")
    for tts in ("oracle", "selector"):
        e = out[tts]
        print(f"  {e['label']}: base {100 * e['base_tts']:.1f}, adapter {100 * e['adapter_tts']:.1f}; "
              f"trained+TTS − raw+TTS {pp(e['trained_tts_minus_raw_tts'])}; interaction {pp(e['interaction'])}")
    print(f"  results: {root}")
    return 0


def _run_both(args, argv):
    """The two TTS runs (base, base + --adapter) on the same tasks and settings, each the
    pipeline of tts/tts_humaneval.py: sample → execute → select → summarise."""
    from pathlib import Path
    from common.benchmarks import load_tasks
    from common.cli import RunOptions
    from common.evaluation import EvalJob, EvalModel, Invocation
    from common.models import check_adapter_dir, resolve_model
    from common.results import results_root, slug
    from common.runtime import ModelConfig
    from common.tts_code import CodeTTSRun, execute_code, sample_code, select_code, write_code_result
    from common.tts_run import code_tts_from_args
    strategy, params, settings = code_tts_from_args(args)
    check_adapter_dir(args.adapter)
    tasks, dataset = load_tasks(args.bench, limit=args.limit, path=args.data_path)
    resolved = resolve_model(args.model)
    name = args.run_name or "_".join(
        ["synergy", args.bench, slug(args.model), "adapter-" + slug(args.adapter), slug(strategy.protocol_name),
         f"n{params.n}-t{params.temperature}-p{params.top_p}-s{params.seed}"] + ([f"limit{args.limit}"] if args.limit else []))
    root = Path(args.out_dir or results_root()) / name
    results = {}
    for side, adapter in (("base", None), ("adapter", args.adapter)):
        model = EvalModel.load(ModelConfig.from_args(args).with_adapter(adapter), resolved)
        run = CodeTTSRun(EvalJob(root / side, tasks, dataset, strategy.protocol, params, model,
                                 Invocation(__file__, argv, vars(args)), RunOptions.from_args(args)),
                         strategy, settings)
        samples = sample_code(run)
        execution = execute_code(run, samples)
        results[side] = write_code_result(run, samples, execution, select_code(run, samples, execution))
        model.get_llm.cache_clear()  # free the first model before loading the second
    return results["base"], results["adapter"], root


if __name__ == "__main__":
    raise SystemExit(main())
