"""Regenerate the test-time-sampling figures from committed results/*/result.json files.

Paper rows: the figures behind PAPER.md §1 claims 7–10 (pass@k / best-of-N curves, recipe × TTS)
and seed 000 §8.1–8.3 (sampling sweep, selectors, prompt strategies). Nothing is recomputed
from samples: every number comes from a result.json written by the scripts below.

Figures (PNG, matplotlib Agg), by result kind:
  tts_code / tts_math (tts/tts_humaneval.py, tts_math500.py, tts_aime.py)
      pass_at_k_<bench>.png — pass@k curves of every run on that benchmark (95% bands)
      selectors_<run>.png   — greedy, random (expected), each selector, oracle_pass@n (hatched grey)
  tts_scaling (tts/tts_scaling.py)   scaling_<run>_<bench>.png — pass@1, selectors, oracle vs n
  sampling_sweep (experiments/sampling_sweep.py)   sampling_sweep_<run>_pass@k.png heat-maps
  self_consistency (experiments/self_consistency.py)   self_consistency_<run>.png — maj@m curve
  prompt_strategies (experiments/prompt_strategies.py)   strategies_<run>.png — pass@1 bars
  synergy (experiments/recipe_x_tts_synergy.py)   synergy_<run>.png — base/adapter × greedy/TTS

Full command:   python figures/plot.py
Quick command:  python figures/plot.py --only tts_code --results-dir results
Runtime: a few seconds per figure on 2 CPU cores.

Deviations: none (plots only). The oracle is always labelled oracle_pass@n, never best-of-N.
"""
from __future__ import annotations

import argparse

KINDS = ("tts_code", "tts_math", "tts_scaling", "sampling_sweep", "self_consistency", "prompt_strategies",
         "synergy")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--results-dir", default=None,
                   help="where to look for <run>/result.json and <run>/<sub>/result.json "
                        "(default: ./results or $SELFIMPROVE_RESULTS)")
    p.add_argument("--out-dir", default=None, help="where the PNG files go (default: figures/ in the repository)")
    p.add_argument("--only", default=None, help=f"comma-separated result kinds to plot ({', '.join(KINDS)})")
    p.add_argument("--run", default=None, help="only runs whose directory name contains this text")
    return p


def find_results(root, kinds=KINDS, run_filter: str | None = None) -> list[tuple[str, dict]]:
    """(run name, result) for every result.json one or two levels below ``root`` whose kind is
    in ``kinds``; unreadable files are skipped with a warning."""
    import json
    import logging
    from pathlib import Path
    root = Path(root)
    out = []
    for path in sorted(set(root.glob("*/result.json")) | set(root.glob("*/*/result.json"))):
        name = str(path.parent.relative_to(root)).replace("/", "__")
        if run_filter and run_filter not in name:
            continue
        try:
            res = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            logging.getLogger(__name__).warning("skipping %s: %s", path, e)
            continue
        if isinstance(res, dict) and res.get("kind") in kinds:
            out.append((name, res))
    return out


def _label(res: dict) -> str:
    m = res.get("model") or {}
    lab = str(m.get("ref", "?")).split("/")[-1]
    if m.get("adapter"):
        lab += " + " + str(m["adapter"]).rstrip("/").split("/")[-1]
    proto = res.get("protocol") if isinstance(res.get("protocol"), str) else res.get("format")
    return f"{lab} · {proto}" if proto else lab


def plot_all(results: list[tuple[str, dict]], out_dir) -> list:
    from pathlib import Path
    from common.plots import plot_bars, plot_heatmap, plot_pass_at_k, plot_selectors
    out_dir = Path(out_dir)
    written = []
    by_bench: dict[str, dict] = {}
    for name, res in results:
        kind = res["kind"]
        if kind in ("tts_code", "tts_math"):
            bench = (res.get("dataset") or {}).get("name") or res.get("bench") or "?"
            m = res["metrics"]
            by_bench.setdefault(bench, {})[f"{_label(res)} · {name}"] = {
                int(v["k"]): (v["mean"], tuple(v["ci"])) for v in m["pass_at_k"].values()}
            written.append(plot_selectors(m["table"], out_dir / f"selectors_{name}.png",
                                          f"{bench} · {_label(res)} · n={m['n_samples_per_task']} "
                                          f"(pass@1 of the selected sample)"))
        elif kind == "tts_scaling":
            for bench, b in res["benches"].items():
                curve = b["curve"]
                lines = {"pass@1 (random)": {int(n): (e["pass@1"], (e["pass@1"], e["pass@1"])) for n, e in curve.items()}}
                sels = sorted({s for e in curve.values() for s in e["selectors"]})
                for s in sels:
                    lines[s] = {int(n): (e["selectors"][s]["mean"], tuple(e["selectors"][s]["ci"]))
                                for n, e in curve.items() if s in e["selectors"]}
                lines["oracle_pass@n"] = {int(n): (e["oracle_pass@n"], (e["oracle_pass@n"],) * 2) for n, e in curve.items()}
                written.append(plot_pass_at_k(lines, out_dir / f"scaling_{name}_{bench}.png",
                                              f"{bench} · {_label(res)}\nselected sample's pass@1 vs number of samples",
                                              xlabel="n (samples per task)", ylabel="pass@1 of the selection (%)"))
        elif kind == "sampling_sweep":
            cells, temps, tps = res["cells"], res["temperatures"], res["top_ps"]
            greedy = next((c for c in cells if c["temperature"] == 0), None)
            keys = sorted({k for c in cells for k in c["pass_at_k"]}, key=lambda k: int(k.split("@")[1]))
            for key in keys:
                rows = [t for t in temps if t > 0 or greedy]
                grid = [[(greedy if t == 0 else next((c for c in cells if c["temperature"] == t and c["top_p"] == p), {}))
                         .get("pass_at_k", {}).get(key, {}).get("mean") for p in tps] for t in rows]
                written.append(plot_heatmap(rows, tps, grid, out_dir / f"sampling_sweep_{name}_{key}.png",
                                            f"{res.get('bench')} {key} · {_label(res)} · n={res.get('n')}"))
        elif kind == "self_consistency":
            m = res["metrics"]
            lines = {"pass@1 (random)": {int(n): (e["pass@1"], (e["pass@1"],) * 2) for n, e in m["curve"].items()},
                     f"majority ({m['selector']})": {int(n): (e["majority"]["mean"], tuple(e["majority"]["ci"]))
                                                     for n, e in m["curve"].items()},
                     "oracle_pass@n": {int(n): (e["oracle_pass@n"], (e["oracle_pass@n"],) * 2) for n, e in m["curve"].items()}}
            written.append(plot_pass_at_k(lines, out_dir / f"self_consistency_{name}.png",
                                          f"self-consistency · {res.get('bench')} · maj@m vs oracle",
                                          xlabel="m (samples voting)", ylabel="pass@1 (%)"))
        elif kind == "prompt_strategies":
            m = res["metrics"]
            labels = list(m)
            written.append(plot_bars(labels, [m[s]["pass@1"]["mean"] for s in labels],
                                     [tuple(m[s]["pass@1"]["ci"]) for s in labels],
                                     out_dir / f"strategies_{name}.png",
                                     f"{res.get('bench')} · {_label(res)} · prompt strategies"))
        elif kind == "synergy":
            m = res["metrics"]
            bg = m["greedy_lift"]
            labels = ["base greedy", "adapter greedy"]
            means = [bg["mean_a"], bg["mean_b"]]
            cis = [(bg["mean_a"], bg["mean_a"]), (bg["mean_b"], bg["mean_b"])]
            for tts in ("selector", "oracle"):
                e = m[tts]
                labels += [f"base {e['label']}", f"adapter {e['label']}"]
                means += [e["base_tts"], e["adapter_tts"]]
                cis += [(e["base_tts"],) * 2, (e["adapter_tts"],) * 2]
            written.append(plot_bars(labels, means, cis, out_dir / f"synergy_{name}.png",
                                     f"recipe × TTS · n={m['n']} · interaction (selector) "
                                     f"{100 * m['selector']['interaction']['delta']:+.1f} pp"))
    for bench, curves in by_bench.items():
        written.append(plot_pass_at_k(curves, out_dir / f"pass_at_k_{bench}.png",
                                      f"{bench}: pass@k (unbiased estimator, 95% bands)"))
    return written


def main(argv=None) -> int:
    from common.cli import run_main
    return run_main(_main, argv)


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    from pathlib import Path
    from common.results import REPO_ROOT, InputError, results_root
    root = Path(args.results_dir) if args.results_dir else results_root()
    if not root.is_dir():
        raise InputError(f"results directory {root} does not exist")
    kinds = KINDS
    if args.only:
        kinds = tuple(k.strip() for k in args.only.split(",") if k.strip())
        bad = [k for k in kinds if k not in KINDS]
        if bad or not kinds:
            raise InputError(f"--only: unknown kind(s) {bad or kinds}; choose from {', '.join(KINDS)}")
    results = find_results(root, kinds, args.run)
    if not results:
        raise InputError(f"no result.json of kind {', '.join(kinds)} under {root}")
    written = plot_all(results, Path(args.out_dir) if args.out_dir else REPO_ROOT / "figures")
    for p in written:
        print(p)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
