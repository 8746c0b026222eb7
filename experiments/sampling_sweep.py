"""Sampling-parameter sweep: pass@1 and pass@k over a temperature × top-p grid, with a heat-map.

Paper rows: seed 000 §8.1 (sampling strategy tuning: greedy for pass@1, T 0.1–0.2 for "tuned"
pass@1, T 0.6–0.8 for pass@10, T 0.8–1.0 for pass@100, top-p 0.95), and the sampling settings
behind PAPER.md §1 claims 7–10 (T=0.8, top-p 0.95) and seed 003 (the SSD precondition is
measured "at the same temperature and decoding config as production").

What it does: one evaluate_code run per grid cell (n samples per task, unbiased pass@k for
k = 1, 2, 4, 5, 8, 10, ... ≤ n with 95% intervals); a temperature of 0 in the grid adds one
greedy cell (n=1, top-p irrelevant, shown in every top-p column). Prints a table, writes
results/<run>/result.json (kind "sampling_sweep") with every cell, and two heat-maps
(pass@1 and pass@n) to figures/sampling_sweep_<run>_pass@1.png and ..._pass@<n>.png.

Full command (all 164 HumanEval tasks, 5 × 3 grid, n=10, 0.5B model):
    python experiments/sampling_sweep.py --temperatures 0,0.2,0.6,0.8,1.0 --top-ps 0.9,0.95,1.0 --n-samples 10
Quick command (2 tasks, 2 × 1 grid, n=2, about 3 minutes on 2 CPU cores):
    python experiments/sampling_sweep.py --model smollm2-135m-instruct --limit 2 --temperatures 0.2,0.8 \\
        --top-ps 0.95 --n-samples 2 --max-new-tokens 48

Rerunning resumes every finished cell. Expected runtime on 2 CPU cores with the 0.5B model:
about 1–1.5 h per sampled cell of the full command (164 × 10 samples), so 12 cells + greedy is
a 15-hour job; trim the grid or use --limit.

Deviations: the paper fixes T=0.8/top-p 0.95 and does not sweep; seed 000's table is advice,
not a measurement. Cells share the seed, so differences between cells are not confounded by
different random streams beyond what the parameters change.
"""
from __future__ import annotations

import argparse


def build_parser() -> argparse.ArgumentParser:
    from common.cli import add_code_bench_args, add_model_args, add_run_args, add_sampling_args
    from common.strategies import add_strategy_args
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    add_code_bench_args(p)
    p.add_argument("--temperatures", default="0,0.2,0.6,0.8,1.0",
                   help="comma-separated temperatures; 0 adds one greedy cell (default 0,0.2,0.6,0.8,1.0)")
    p.add_argument("--top-ps", default="0.9,0.95,1.0", help="comma-separated top-p values (default 0.9,0.95,1.0)")
    p.add_argument("--figure-dir", default=None, help="where the heat-maps go (default: figures/ in the repository)")
    add_strategy_args(p)
    add_model_args(p)
    add_sampling_args(p, n=10)
    add_run_args(p)
    for a in p._actions:  # the grid flags replace the single-cell ones
        if a.dest in ("temperature", "top_p"):
            a.help = "not used: the grid comes from --temperatures/--top-ps"
    return p


def parse_floats(text: str, flag: str, lo: float, hi: float, lo_open: bool = False) -> list[float]:
    from common.cli import comma_list
    from common.results import InputError
    vals = comma_list(text, flag, float)
    bad = [v for v in vals if v > hi or v < lo or (lo_open and v == lo)]
    if not vals or bad:
        raise InputError(f"{flag}: values must be in {'(' if lo_open else '['}{lo:g}, {hi:g}], got {bad or 'nothing'}")
    return vals


def main(argv=None) -> int:
    from common.cli import run_main
    return run_main(_main, argv)


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    import dataclasses
    from pathlib import Path
    from common.benchmarks import load_tasks
    from common.cli import RunOptions, sampling_from_args
    from common.evaluation import EvalJob, EvalModel, Invocation, evaluate_code
    from common.results import REPO_ROOT, InputError, results_root, slug, write_json_atomic
    from common.runtime import ModelConfig
    from common.strategies import strategy_from_args, strategy_job

    temps = parse_floats(args.temperatures, "--temperatures", 0.0, 5.0)
    top_ps = parse_floats(args.top_ps, "--top-ps", 0.0, 1.0, lo_open=True)
    if args.n_samples < 1:
        raise InputError("--n-samples must be >= 1")
    strategy = strategy_from_args(args)
    args.temperature = 1.0  # placeholder so the shared builder validates; replaced per cell
    base = sampling_from_args(args, strategy, logprobs=True)
    args.temperature = args.top_p = None  # not used (recorded as such in result.json)
    tasks, dataset = load_tasks(args.bench, limit=args.limit, path=args.data_path)
    name = args.run_name or "_".join(
        ["sweep", args.bench, slug(args.model)] + (["adapter-" + slug(args.adapter)] if args.adapter else [])
        + [slug(strategy.protocol_name), f"n{args.n_samples}-s{args.seed}"] + ([f"limit{args.limit}"] if args.limit else []))
    root = Path(args.out_dir or results_root()) / name
    job = EvalJob(root, tasks, dataset, strategy.protocol, base, EvalModel.load(ModelConfig.from_args(args)),
                  Invocation(__file__, argv, vars(args)), RunOptions.from_args(args))   # one per cell below
    cells = []
    plan = [(0.0, None)] if 0.0 in temps else []
    plan += [(t, p) for t in temps if t > 0 for p in top_ps]
    for t, p in plan:
        params = (dataclasses.replace(base, n=1, temperature=0.0, top_p=1.0) if t == 0
                  else dataclasses.replace(base, temperature=t, top_p=p))
        sub = root / ("greedy" if t == 0 else f"t{t:g}_p{p:g}")
        res = evaluate_code(strategy_job(strategy, dataclasses.replace(job, run_dir=sub, params=params)))
        pk = res["metrics"]["pass_at_k"]
        cells.append({"temperature": t, "top_p": None if t == 0 else p, "n": params.n, "run_dir": str(sub),
                      "pass_at_k": {k: {"mean": v["mean"], "ci": v["ci"]} for k, v in pk.items()}})
        print(f"  T={t:g} top_p={'—' if t == 0 else f'{p:g}'}: " +
              ", ".join(f"{k} {100 * v['mean']:.1f}" for k, v in pk.items()))
    fig_dir = Path(args.figure_dir) if args.figure_dir else REPO_ROOT / "figures"
    figs = plot_grid(cells, temps, top_ps, fig_dir, title=f"{args.bench} {{key}} · {args.model} · n={args.n_samples}",
                     stem=f"sampling_sweep_{name}")
    result = {**job.invocation.provenance(), "kind": "sampling_sweep", "model": job.model.info,
              "protocol": strategy.protocol_name, "bench": args.bench, "dataset": dataset, "n": args.n_samples,
              "temperatures": temps, "top_ps": top_ps, "cells": cells, "figures": figs}
    write_json_atomic(root / "result.json", result)
    print(f"  figures: {', '.join(figs.values())}\n  results: {root}")
    return 0


def plot_grid(cells: list[dict], temps: list[float], top_ps: list[float], fig_dir, title: str, stem: str) -> dict:
    """The pass@1 and pass@n heat-maps of the grid (the greedy cell repeated across the top-p
    columns); ``title`` has a ``{key}`` slot. Returns {key: path}."""
    from common.plots import plot_heatmap
    n = max(c["n"] for c in cells)
    sampled_t = [t for t in temps if t > 0]
    greedy = next((c for c in cells if c["temperature"] == 0), None)
    figs = {}
    for key in ["pass@1"] + ([f"pass@{n}"] if n > 1 else []):
        rows = ([0.0] if greedy else []) + sampled_t
        grid = [[(greedy if t == 0 else next(c for c in cells if c["temperature"] == t and c["top_p"] == p))
                 ["pass_at_k"].get(key, {}).get("mean") for p in top_ps] for t in rows]
        if sampled_t or key == "pass@1":
            path = fig_dir / f"{stem}_{key}.png"
            plot_heatmap(rows, top_ps, grid, path, title.format(key=key))
            figs[key] = str(path)
    return figs


if __name__ == "__main__":
    raise SystemExit(main())
