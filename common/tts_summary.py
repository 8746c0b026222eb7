"""Test-time sampling (TTS) summaries: pure functions from per-task verdicts to the numbers a
TTS run reports. No file, model or sandbox is touched here.

* :func:`tts_summary` — pass@k with the unbiased estimator, greedy, random (expected), every
  deployable selector as pass@1 of the selected sample with paired intervals, and
  ``oracle_pass@n``; :func:`summarise_selection` adds the SSD precondition and the difficulty
  slices (the "select" step of every TTS script).
* :func:`ssd_precondition` (seed 003's 5 pp rule with difficulty slices), :func:`by_slice`,
  :func:`selection_curve` (selectors and oracle as a function of n, by subsampling one draw of
  N), :func:`proportion`, :func:`gap_recovered`, :func:`candidates_from_rows`,
  :func:`format_table`.

Naming (PAPER.md §4 defect 5): ``oracle_pass@n`` is "any of the n samples passes the benchmark
tests" (coverage); it is never called best-of-N pass@1. Deployable selectors never read the
benchmark tests; they are reported as the pass@1 of the sample they chose.
"""
from __future__ import annotations

import collections
from typing import Mapping, Sequence

from common.results import InputError

SSD_THRESHOLD_PP = 5.0
SSD_KS = (4, 8, 16)
CODE_SELECTORS = ("mean_logprob", "sum_logprob", "behaviour_majority", "visible_filter", "codet")
MATH_SELECTORS = ("majority_vote", "mean_logprob", "sum_logprob")
SLICES = ("hard", "medium", "easy")


def proportion(values: Mapping[str, float], *, confidence: float = 0.95, n_boot: int = 2000,
               seed: int = 0) -> dict:
    """Mean over tasks of per-task values with an interval: Wilson when every value is 0 or 1
    (then ``passed_tasks`` is given too), else a seeded bootstrap over tasks."""
    from common.metrics import bootstrap_mean_ci, wilson_interval
    vals = [float(v) for v in values.values()]
    if not vals:
        raise ValueError("no tasks")
    if all(v in (0.0, 1.0) for v in vals):
        s = int(sum(vals))
        return {"mean": s / len(vals), "ci": wilson_interval(s, len(vals), confidence),
                "ci_method": "wilson", "n_tasks": len(vals), "passed_tasks": s}
    return {"mean": sum(vals) / len(vals),
            "ci": bootstrap_mean_ci(vals, n_boot=n_boot, confidence=confidence, seed=seed),
            "ci_method": f"bootstrap(n_boot={n_boot},seed={seed})", "n_tasks": len(vals)}


def gap_recovered(selected: float, pass1: float, oracle: float) -> float | None:
    """Share of the oracle gap a selector recovers: (selected − pass@1) / (oracle − pass@1).
    Fallback: None when there is no gap (oracle == pass@1)."""
    gap = oracle - pass1
    return None if abs(gap) < 1e-12 else (selected - pass1) / gap


# --------------------------------------------------------------------------------------------
# SSD precondition and difficulty slices
# --------------------------------------------------------------------------------------------


def _ssd_k(k: int | None, n_min: int) -> int:
    if n_min < 2:
        raise ValueError("the SSD precondition needs at least 2 samples per task (pass@k for k >= 2)")
    if k is None:
        k = max([x for x in SSD_KS if x <= n_min] or [n_min])
    if not (2 <= k <= n_min):
        raise ValueError(f"k={k} must be in 2..{n_min} (the smallest number of samples per task)")
    return k


def _gap_block(per_task: Mapping[str, dict], ids: list[str], k: int, threshold_pp: float) -> dict:
    """pass@1, pass@k, their gap in pp and the verdict over the tasks ``ids``."""
    if not ids:
        return {"n_tasks": 0, "pass@1": None, f"pass@{k}": None, "gap_pp": None, "verdict": None}
    p1 = sum(per_task[t]["pass@1"] for t in ids) / len(ids)
    pk = sum(per_task[t][f"pass@{k}"] for t in ids) / len(ids)
    gap = 100.0 * (pk - p1)
    return {"n_tasks": len(ids), "pass@1": p1, f"pass@{k}": pk, "gap_pp": gap,
            "verdict": "GO" if gap >= threshold_pp - 1e-9 else "NO-GO"}  # inclusive, float-safe


def ssd_precondition(outcomes: Mapping[str, Sequence[bool]], *, k: int | None = None,
                     threshold_pp: float = SSD_THRESHOLD_PP, thresholds=(0.3, 0.7),
                     rates: Mapping[str, float] | None = None, confidence: float = 0.95,
                     n_boot: int = 2000, seed: int = 0) -> dict:
    """Seed 003's precondition for simple self-distillation: is pass@k − pass@1 ≥ 5 pp?

    ``outcomes`` are the *base* model's sampled verdicts per task. ``k`` defaults to the
    largest of 4, 8, 16 that the smallest n allows (n itself when n < 4). Tasks are sliced
    easy/medium/hard by their pass rate (``rates``, default each task's own fraction passing;
    :func:`common.metrics.difficulty_label` with ``thresholds``). Returns per-task pass@1 and
    pass@k, the overall and per-slice gaps in percentage points (overall with a bootstrap
    interval), the verdict ``GO`` when the overall gap is at least ``threshold_pp`` (else
    ``NO-GO``), ``robust`` (the interval's lower end clears the threshold too), and a one-line
    statement. Raises ValueError when fewer than 2 samples per task exist (no gap to measure).
    """
    from common.metrics import bootstrap_mean_ci, difficulty_label, pass_at_k, sample_counts
    counts = sample_counts(outcomes)
    k = _ssd_k(k, min(n for n, _ in counts.values()))
    if rates is None:
        rates = {t: c / n for t, (n, c) in counts.items()}
    per_task = {t: {"pass@1": pass_at_k(n, c, 1), f"pass@{k}": pass_at_k(n, c, k),
                    "slice": difficulty_label(float(rates[t]), thresholds)}
                for t, (n, c) in counts.items()}
    ids = list(counts)
    overall = _gap_block(per_task, ids, k, threshold_pp)
    gaps = [per_task[t][f"pass@{k}"] - per_task[t]["pass@1"] for t in ids]
    lo, hi = bootstrap_mean_ci(gaps, n_boot=n_boot, confidence=confidence, seed=seed)
    overall["gap_ci_pp"] = (100.0 * lo, 100.0 * hi)
    slices = {s: _gap_block(per_task, [t for t in ids if per_task[t]["slice"] == s], k, threshold_pp)
              for s in SLICES}
    verdict = overall["verdict"]
    sl = "; ".join(f"{s} {b['gap_pp']:.1f} pp (n={b['n_tasks']})" if b["n_tasks"] else f"{s} — (n=0)"
                   for s, b in slices.items())
    line = (f"SSD precondition (seed 003, k={k}): pass@{k} − pass@1 = {overall['gap_pp']:.1f} pp "
            f"[{overall['gap_ci_pp'][0]:.1f}, {overall['gap_ci_pp'][1]:.1f}] "
            f"{'≥' if verdict == 'GO' else '<'} {threshold_pp:g} pp → {verdict}; by slice: {sl}")
    return {"k": k, "threshold_pp": threshold_pp, "thresholds": tuple(thresholds),
            "overall": overall, "slices": slices, "verdict": verdict,
            "robust": verdict == "GO" and overall["gap_ci_pp"][0] >= threshold_pp - 1e-9,
            "line": line, "per_task": per_task}


def by_slice(per_task: Mapping[str, dict], slice_of: Mapping[str, str]) -> dict:
    """Greedy, random (expected), every selector and the oracle within each difficulty slice.

    ``per_task``: :func:`tts_summary`'s per-task entries (``passed``, ``selected``, ``greedy``);
    ``slice_of``: task id -> ``"hard"``/``"medium"``/``"easy"`` (e.g. from
    :func:`ssd_precondition`). Returns ``{slice: {"n_tasks", "greedy", "random_expected",
    "selectors": {name: pass@1}, "oracle_pass@n"}}`` with fractions of the slice's tasks; an
    empty slice has ``n_tasks`` 0 and ``None`` values; ``greedy`` is ``None`` without greedy
    verdicts. Pure.
    """
    missing = [t for t in per_task if t not in slice_of]
    if missing:
        raise ValueError(f"no slice for {len(missing)} tasks, e.g. {missing[:3]}")
    out = {}
    for sl in SLICES:
        ids = [t for t in per_task if slice_of[t] == sl]
        if not ids:
            out[sl] = {"n_tasks": 0, "greedy": None, "random_expected": None, "selectors": {}, "oracle_pass@n": None}
            continue
        mean = lambda xs: sum(xs) / len(ids)  # noqa: E731
        names = per_task[ids[0]].get("selected", {})
        has_greedy = all(per_task[t].get("greedy") is not None for t in ids)
        out[sl] = {
            "n_tasks": len(ids),
            "greedy": mean([float(per_task[t]["greedy"]) for t in ids]) if has_greedy else None,
            "random_expected": mean([sum(per_task[t]["passed"]) / len(per_task[t]["passed"]) for t in ids]),
            "selectors": {s: mean([float(per_task[t]["passed"][per_task[t]["selected"][s]]) for t in ids])
                          for s in names},
            "oracle_pass@n": mean([float(any(per_task[t]["passed"])) for t in ids]),
        }
    return out


# --------------------------------------------------------------------------------------------
# The selection table
# --------------------------------------------------------------------------------------------


def _check_candidates(cands: Sequence) -> int:
    """The common number of samples per task; refuses no tasks, unequal n, duplicate ids."""
    if not cands:
        raise ValueError("no tasks")
    ns = {len(c.passed) for c in cands}
    if len(ns) != 1:
        raise ValueError(f"every task needs the same number of samples, got {sorted(ns)}")
    ids = [c.task_id for c in cands]
    if len(set(ids)) != len(ids):
        raise ValueError("duplicate task ids")
    return ns.pop()


def _greedy_values(greedy: Mapping[str, bool] | None, ids: list[str]) -> dict | None:
    if greedy is None:
        return None
    missing = [t for t in ids if t not in greedy]
    if missing:
        raise ValueError(f"greedy verdicts missing for {len(missing)} tasks, e.g. {missing[:3]}")
    return {t: float(bool(greedy[t])) for t in ids}


def _row(e: dict) -> dict:
    return {"pass@1": e["mean"], "ci": e["ci"], "passed_tasks": e.get("passed_tasks")}


def _table(greedy_out: dict | None, random_e: dict, sel_out: dict, orc: dict, primary: str | None) -> list[dict]:
    """The rows greedy, random (expected), each selector, oracle_pass@n, in that order."""
    table = [{"method": "greedy", **_row(greedy_out)}] if greedy_out else []
    table.append({"method": "random (expected)", **_row(random_e)})
    for s, e in sel_out.items():
        vg = e.get("vs_greedy")
        table.append({"method": s + (" (primary)" if s == primary else ""), **_row(e),
                      "vs_greedy_pp": None if vg is None else 100 * vg["delta"],
                      "oracle_gap_recovered": e["oracle_gap_recovered"]})
    table.append({"method": orc["label"], **_row(orc)})
    return table


def _cluster_ids(signatures: Sequence) -> list[int | None]:
    ids: dict = {}
    return [None if s is None else ids.setdefault(s, len(ids)) for s in signatures]


def _per_task(cands: Sequence, greedy: Mapping[str, bool] | None, choices: dict, present: list[str]) -> dict:
    per_task = {}
    for c in cands:
        t = c.task_id
        per_task[t] = {"passed": [bool(x) for x in c.passed], "mean_logprob": list(c.mean_logprob),
                       "greedy": None if greedy is None else bool(greedy[t]),
                       "selected": {s: choices[t][s][0] for s in present},
                       "how": {s: choices[t][s][1] for s in present}}
        if c.signatures:
            per_task[t]["cluster"] = _cluster_ids(c.signatures)
    return per_task


def tts_summary(cands: Sequence, *, greedy: Mapping[str, bool] | None = None,
                selectors: Sequence[str] = CODE_SELECTORS, primary: str | None = None,
                ks: Sequence[int] | None = None, confidence: float = 0.95, n_boot: int = 2000,
                seed: int = 0) -> tuple[dict, dict]:
    """Summarise N candidates per task: (metrics, per_task).

    ``cands``: :class:`common.selection.Candidates`, one per task, all with the same n.
    ``greedy``: task_id -> greedy verdict (optional). metrics holds ``pass_at_k`` (unbiased,
    every k of :func:`common.metrics.ks_for` unless given), ``greedy``, ``random_expected`` (the
    mean fraction of passing samples = expected pass@1 of a uniform pick), ``oracle_pass@n``,
    ``selectors`` (pass@1 of the chosen sample, how often each rule/fallback fired, paired
    deltas against random and greedy, share of the oracle gap recovered), ``primary`` and a
    ``table`` in that order. A selector whose inputs were not computed for every task is left
    out (named in ``selectors_missing``).
    """
    from common.metrics import format_ci, ks_for, oracle_pass, paired_delta, pass_at_k_summary
    from common.selection import select_all
    n = _check_candidates(cands)
    ids = [c.task_id for c in cands]
    outcomes = {c.task_id: list(c.passed) for c in cands}
    stats = dict(confidence=confidence, n_boot=n_boot, seed=seed)
    pk = pass_at_k_summary(outcomes, list(ks) if ks else ks_for(n), **stats)
    p1 = {t: sum(map(bool, xs)) / n for t, xs in outcomes.items()}
    random_e = proportion(p1, **stats)
    orc = proportion({t: float(oracle_pass(xs)) for t, xs in outcomes.items()}, **stats)
    orc.update(n=n, label=f"oracle_pass@{n}",
               note="ORACLE: benchmark tests pick the winner (coverage), not a deployable score")
    choices = {c.task_id: select_all(c, selectors) for c in cands}
    present = [s for s in selectors if all(s in choices[t] for t in ids)]
    g = _greedy_values(greedy, ids)
    sel_out = {}
    for s in present:
        vals = {c.task_id: float(bool(c.passed[choices[c.task_id][s][0]])) for c in cands}
        e = proportion(vals, **stats)
        e["how"] = dict(collections.Counter(choices[t][s][1] for t in ids))
        e["vs_random"] = paired_delta(p1, vals, **stats)
        if g is not None:
            e["vs_greedy"] = paired_delta(g, vals, **stats)
        e["oracle_gap_recovered"] = gap_recovered(e["mean"], random_e["mean"], orc["mean"])
        sel_out[s] = e
    if primary is not None and primary not in sel_out:
        raise ValueError(f"primary selector {primary!r} was not computed (have: {', '.join(sel_out) or 'none'})")
    greedy_out = proportion(g, **stats) if g is not None else None
    metrics = {
        "n_tasks": len(ids), "n_samples_per_task": n, "pass_at_k": pk,
        "headline": {k: format_ci(v["mean"], v["ci"], v["n_tasks"]) for k, v in pk.items()},
        "greedy": greedy_out, "random_expected": random_e, "oracle_pass@n": orc,
        "selectors": sel_out, "selectors_missing": [s for s in selectors if s not in present],
        "primary_selector": primary, "primary": sel_out.get(primary) if primary else None,
        "table": _table(greedy_out, random_e, sel_out, orc, primary),
    }
    return metrics, _per_task(cands, greedy, choices, present)


def summarise_selection(cands: Sequence, greedy: Mapping[str, bool] | None, *, selectors: Sequence[str],
                        primary: str, ssd_k: int | None = None, ssd_threshold_pp: float = SSD_THRESHOLD_PP,
                        per_task_ssd: bool = True) -> tuple[dict, dict]:
    """The select step of a TTS run: :func:`tts_summary`, then (n >= 2) the SSD precondition
    (``metrics["ssd_precondition"]``) and every row again per difficulty slice
    (``metrics["by_slice"]``); with ``per_task_ssd`` each task's SSD entry is kept in
    ``per_task[t]["ssd"]``. Returns (metrics, per_task)."""
    metrics, per_task = tts_summary(cands, greedy=greedy, selectors=selectors, primary=primary)
    if metrics["n_samples_per_task"] >= 2:
        ssd = ssd_precondition({c.task_id: c.passed for c in cands}, k=ssd_k, threshold_pp=ssd_threshold_pp)
        slice_of = {t: v["slice"] for t, v in ssd["per_task"].items()}
        for t, v in ssd.pop("per_task").items():
            if per_task_ssd:
                per_task[t]["ssd"] = v
        metrics["ssd_precondition"] = ssd
        metrics["by_slice"] = by_slice(per_task, slice_of)
    return metrics, per_task


def candidates_from_rows(rows: Sequence[dict], field: str = "passed") -> list:
    """Candidates (verdicts and log-probabilities only) from scored sample rows, e.g. an
    evaluate_code ``samples.jsonl``; tasks in first-seen order, samples by ``sample_index``.
    A row without the verdict field raises InputError."""
    from common.selection import Candidates
    by_task: dict[str, list[dict]] = {}
    for i, r in enumerate(rows, 1):
        if field not in r or "task_id" not in r:
            raise InputError(f"sample row {i} has no {field!r}/task_id field (not scored?)")
        by_task.setdefault(r["task_id"], []).append(r)
    out = []
    for t, rs in by_task.items():
        rs = sorted(rs, key=lambda r: r.get("sample_index", 0))
        out.append(Candidates(t, [bool(r[field]) for r in rs], [r.get("mean_logprob") for r in rs],
                              [r.get("sum_logprob") for r in rs]))
    return out


# --------------------------------------------------------------------------------------------
# Curves and text
# --------------------------------------------------------------------------------------------


def _subset_selections(c, N: int, m: int, selectors: Sequence[str], repeats: int, rng) -> dict[str, float]:
    """Each selector's mean success on ``repeats`` random m-subsets of one task's N samples."""
    from common.selection import select_all
    reps = 1 if m == N else repeats
    acc: dict[str, float] = collections.defaultdict(float)
    for _ in range(reps):
        idx = list(range(N)) if m == N else sorted(rng.choice(N, m, replace=False).tolist())
        for s, (i, _how) in select_all(c.subset(idx), selectors).items():
            acc[s] += float(bool(c.passed[idx[i]]))
    return {s: v / reps for s, v in acc.items()}


def selection_curve(cands: Sequence, ns: Sequence[int], *, selectors: Sequence[str] = CODE_SELECTORS,
                    repeats: int = 20, seed: int = 0, confidence: float = 0.95,
                    n_boot: int = 2000) -> dict:
    """Selectors and oracle as a function of the number of candidates m ≤ N, from one draw of
    N per task. For each m < N every selector runs on ``repeats`` random m-subsets per task
    (seeded) and its per-task success is averaged (an unbiased estimate of its expected
    pass@1 with m samples); pass@1 and ``oracle_pass@m`` use the unbiased estimator on all N.
    Returns ``{m: {"n": m, "pass@1", "oracle_pass@n", "selectors": {s: {"mean", "ci"}}}}``."""
    import numpy as np
    from common.metrics import bootstrap_mean_ci, pass_at_k
    N = min(len(c.passed) for c in cands)
    rng = np.random.default_rng(seed)
    counts = {c.task_id: (N, sum(map(bool, c.passed[:N]))) for c in cands}
    out = {}
    for m in sorted(set(int(x) for x in ns)):
        if not (1 <= m <= N):
            raise ValueError(f"n={m} is not in 1..{N} (samples drawn per task)")
        per_sel: dict[str, dict[str, float]] = collections.defaultdict(dict)
        for c in cands:
            for s, v in _subset_selections(c, N, m, selectors, repeats, rng).items():
                per_sel[s][c.task_id] = v
        entry = {"n": m,
                 "pass@1": sum(pass_at_k(n_, c_, 1) for n_, c_ in counts.values()) / len(counts),
                 "oracle_pass@n": sum(pass_at_k(n_, c_, m) for n_, c_ in counts.values()) / len(counts),
                 "selectors": {}}
        for s, vals in per_sel.items():
            if len(vals) != len(cands):
                continue
            v = list(vals.values())
            entry["selectors"][s] = {"mean": sum(v) / len(v),
                                     "ci": bootstrap_mean_ci(v, n_boot=n_boot, confidence=confidence, seed=seed)}
        out[m] = entry
    return out


def format_table(metrics: dict) -> str:
    """The selector table as aligned text (percent, 95% interval)."""
    lines = [f"  {'method':<28} {'pass@1':>7}  {'95% CI':>15}  {'tasks':>7}  {'vs greedy':>9}  {'gap rec.':>8}"]
    n = metrics.get("n_tasks")
    for r in metrics["table"]:
        lo, hi = r["ci"]
        vg = r.get("vs_greedy_pp")
        gr = r.get("oracle_gap_recovered")
        pt = r.get("passed_tasks")
        lines.append(f"  {r['method']:<28} {100 * r['pass@1']:7.1f}  [{100 * lo:5.1f}, {100 * hi:5.1f}]  "
                     f"{(f'{pt}/{n}' if pt is not None else '-'):>7}  "
                     f"{(f'{vg:+.1f} pp' if vg is not None else ''):>9}  "
                     f"{(f'{100 * gr:.0f}%' if gr is not None else ''):>8}")
    return "\n".join(lines)


def print_summary(title: str, metrics: dict, footer: Sequence[str] = ()) -> None:
    """A TTS run on stdout: the title, pass@k headlines, the selector table, the SSD line and
    ``footer`` lines."""
    print(f"\n{title}")
    for k, line in metrics["headline"].items():
        print(f"  {k}: {line}")
    print(format_table(metrics))
    if metrics.get("ssd_precondition"):
        print("  " + metrics["ssd_precondition"]["line"])
    for line in footer:
        print(f"  {line}")
