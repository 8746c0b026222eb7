"""What evals/ssd_eval.py computes from scored runs, as pure functions: T_eval selection on the
validation split, per-task pass@k, and one SSD arm against the base on the held-out set (greedy
pass@1 and sampled pass@1 / pass@k, paired, overall and per difficulty slice of the base).
"""
from __future__ import annotations

from common.results import InputError


def best_temperature(grid: list[dict]) -> float:
    """The T_eval of a tuning grid: the highest validation pass@1 (``{"t", "pass@1": {"mean"}}``
    rows); ties go to the lower temperature. An empty grid raises InputError."""
    if not grid:
        raise InputError("T_eval tuning needs at least one temperature")
    return min(grid, key=lambda r: (-round(r["pass@1"]["mean"], 12), r["t"]))["t"]


def per_task_pass_at(outcomes: dict[str, list[bool]], k: int) -> dict[str, float]:
    """task -> unbiased pass@k of its samples."""
    from common.metrics import pass_at_k
    return {t: pass_at_k(len(v), sum(bool(x) for x in v), k) for t, v in outcomes.items()}


def slices_of(base_sampled: dict[str, list[bool]], thresholds=(0.3, 0.7)) -> dict[str, str]:
    """Each held-out task's difficulty slice from the base model's sampled pass rate."""
    from common.metrics import difficulty_label
    return {t: difficulty_label(sum(v) / len(v), tuple(thresholds)) for t, v in base_sampled.items()}


def _paired(a: dict, b: dict, ids: list[str]) -> dict | None:
    from common.compare import compare
    if not ids:
        return None
    return compare({t: a[t] for t in ids}, {t: b[t] for t in ids}, "base", "arm")


def compare_arm(base: dict, arm: dict, slice_of: dict[str, str], ks: list[int]) -> dict:
    """One arm against the base. ``base``/``arm``: ``{"greedy": task -> [bool], "sampled": task ->
    [bool]}`` on the same tasks. Returns greedy (pass@1 with Wilson intervals for both sides and
    the paired comparison), sampled pass@k deltas for each k in ``ks`` (paired bootstrap), and
    both per slice."""
    from common.tts_summary import proportion
    for mode in ("greedy", "sampled"):
        if set(base[mode]) != set(arm[mode]):
            raise InputError(f"{mode}: the arm and the base were evaluated on different tasks")
    bg = {t: float(v[0]) for t, v in base["greedy"].items()}
    ag = {t: float(v[0]) for t, v in arm["greedy"].items()}
    ids = sorted(bg)
    out = {"greedy": {"pass@1": proportion(ag), "base_pass@1": proportion(bg), "comparison": _paired(bg, ag, ids)},
           "sampled": {}, "by_slice": {}}
    for k in ks:
        pb, pa = per_task_pass_at(base["sampled"], k), per_task_pass_at(arm["sampled"], k)
        out["sampled"][f"pass@{k}"] = {"base": sum(pb.values()) / len(pb), "arm": sum(pa.values()) / len(pa),
                                       "comparison": _paired(pb, pa, sorted(pb))}
    for sl in ("hard", "medium", "easy"):
        sids = [t for t in ids if slice_of.get(t) == sl]
        entry = {"n_tasks": len(sids), "greedy": _paired(bg, ag, sids)}
        for k in ks:
            pb, pa = per_task_pass_at(base["sampled"], k), per_task_pass_at(arm["sampled"], k)
            entry[f"sampled_pass@{k}"] = _paired(pb, pa, [t for t in sids if t in pb])
        out["by_slice"][sl] = entry
    return out


def deltas_for_battery(arm_cmp: dict, k: int) -> tuple[float | None, float | None]:
    """(sampled pass@1 delta, sampled pass@k delta) of :func:`compare_arm`'s result, for the
    battery's diversity probe; None where that k was not evaluated."""
    s = arm_cmp.get("sampled", {})
    get = lambda key: s[key]["comparison"]["delta"] if key in s and s[key]["comparison"] else None
    return get("pass@1"), get(f"pass@{k}")
