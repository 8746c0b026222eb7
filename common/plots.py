"""Figures (matplotlib, Agg backend, written atomically): pass@k curves with bands, bar charts
with interval whiskers, selector bars and heat-maps. Used by figures/plot.py and
experiments/sampling_sweep.py; every value is a fraction, shown in percent."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_pass_at_k(curves: Mapping[str, Mapping[int, tuple[float, tuple[float, float]]]], path: Path,
                   title: str = "pass@k (unbiased estimator)", xlabel: str = "k",
                   ylabel: str = "pass@k (%)") -> Path:
    """One line per run: {label: {k: (mean, (lo, hi))}} in fractions, 95% bands; log2 x axis
    with plain tick labels."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    all_k = set()
    for label, pts in curves.items():
        ks = sorted(pts)
        all_k |= set(ks)
        m = [100 * pts[k][0] for k in ks]
        lo = [100 * pts[k][1][0] for k in ks]
        hi = [100 * pts[k][1][1] for k in ks]
        ax.plot(ks, m, marker="o", label=label)
        ax.fill_between(ks, lo, hi, alpha=0.15)
    ax.set_xscale("log", base=2)
    ticks = sorted(all_k)
    ax.set_xticks(ticks)
    ax.set_xticklabels([str(k) for k in ticks])
    ax.minorticks_off()
    ax.set_ylim(bottom=0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, path)


def plot_bars(labels: Sequence[str], means: Sequence[float], cis: Sequence[tuple[float, float]], path: Path,
              title: str, ylabel: str = "pass@1 (%)", colors: Sequence[str] | None = None,
              hatches: Sequence[str] | None = None) -> Path:
    """Bar chart of fractions with 95% interval whiskers (shown in percent)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(5, 0.9 * len(labels) + 2), 4))
    m = [100 * x for x in means]
    err = [[100 * (x - c[0]) for x, c in zip(means, cis)], [100 * (c[1] - x) for x, c in zip(means, cis)]]
    bars = ax.bar(range(len(labels)), m, yerr=err, capsize=3, color=colors or "#4c72b0")
    for b, h in zip(bars, hatches or []):
        if h:
            b.set_hatch(h)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def plot_selectors(table: Sequence[dict], path: Path, title: str) -> Path:
    """Selector bar chart from a :func:`tts_summary` table: greedy, random, selectors, oracle
    (the oracle bar is hatched grey and labelled as oracle)."""
    labels = [r["method"] for r in table]
    colors = ["#999999" if lab.startswith("oracle") else "#dd8452" if lab == "greedy"
              else "#55a868" if lab.startswith("random") else "#4c72b0" for lab in labels]
    return plot_bars(labels, [r["pass@1"] for r in table], [tuple(r["ci"]) for r in table], path, title,
                     colors=colors, hatches=["//" if lab.startswith("oracle") else "" for lab in labels])


def plot_heatmap(rows: Sequence[float], cols: Sequence[float], values, path: Path, title: str,
                 row_label: str = "temperature", col_label: str = "top-p") -> Path:
    """Heat-map of fractions ``values[i][j]`` (None = not run), annotated in percent; a row
    value of 0 is labelled as greedy (the same greedy cell repeats across the columns)."""
    import numpy as np
    plt = _plt()
    arr = np.array([[np.nan if v is None else 100 * v for v in r] for r in values], dtype=float)
    fig, ax = plt.subplots(figsize=(1.2 * len(cols) + 2.5, 0.8 * len(rows) + 1.8))
    finite = arr[~np.isnan(arr)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if hi - lo < 1e-9:
        lo, hi = lo - 1.0, hi + 1.0
    im = ax.imshow(arr, cmap="viridis", aspect="auto", vmin=lo, vmax=hi)
    ax.set_xticks(range(len(cols)))
    ax.set_xticklabels([f"{c:g}" for c in cols])
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(["0 (greedy)" if r == 0 else f"{r:g}" for r in rows])
    ax.set_xlabel(col_label)
    ax.set_ylabel(row_label)
    for i in range(arr.shape[0]):
        for j in range(arr.shape[1]):
            if not math.isnan(arr[i, j]):
                ax.text(j, i, f"{arr[i, j]:.1f}", ha="center", va="center", color="w", fontsize=8)
    fig.colorbar(im, ax=ax, label="%")
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)
    return path

