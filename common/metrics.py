"""Metrics: the unbiased pass@k estimator, its aggregates, intervals, paired tests, slices,
best-of-N selectors and output-diversity probes. Pure functions; numpy/scipy only.

pass@k = 1 - C(n-c, k) / C(n, k) per task (Chen et al. 2021), computed as a stable product;
1.0 when n - c < k. A k larger than n is an error, never silently dropped.

Units: every estimate and interval here is a fraction in [0, 1]; :func:`format_ci` turns one
into percent for tables. Aggregates are means over tasks (each task weighs the same).

Oracle vs deployable: :func:`oracle_pass` (and pass@k itself) let the benchmark's own tests pick
the winner, so they measure *coverage*, not what a deployed system would score. The selectors
(:func:`select_max`, :func:`select_majority`, :func:`select_codet`) choose without the
benchmark tests; score the chosen candidate to get a deployable best-of-N number.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from typing import Hashable, Iterable, Mapping, NamedTuple, Sequence

import numpy as np

DEFAULT_N_BOOT = 2000
DEFAULT_SEED = 0
DEFAULT_CONFIDENCE = 0.95
DEFAULT_THRESHOLDS = (0.3, 0.7)

# --------------------------------------------------------------------------------------------
# pass@k
# --------------------------------------------------------------------------------------------


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one task with ``n`` samples of which ``c`` passed.

    Raises ValueError unless 0 <= c <= n and 1 <= k <= n (no fallback: a k larger than n is
    never silently clipped or dropped). Returns 1.0 when n - c < k (every k-subset holds a pass).
    """
    if not (0 <= c <= n):
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if k < 1 or k > n:
        raise ValueError(f"k={k} is not in 1..n (n={n}); pass@k needs at least k samples per task")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def pass_at_k_per_task(counts: Mapping[str, tuple[int, int]], k: int) -> dict[str, float]:
    """pass@k for each task from ``{task_id: (n, c)}``.

    No fallback: any task with k > n (or an invalid count) raises ValueError naming the task.
    """
    out = {}
    for tid, (n, c) in counts.items():
        try:
            out[tid] = pass_at_k(int(n), int(c), int(k))
        except ValueError as e:
            raise ValueError(f"task {tid!r}: {e}") from None
    return out


KS_LADDER = (1, 2, 4, 5, 8, 10, 16, 20, 32, 50, 64, 100, 128, 256)


def ks_for(n: int) -> list[int]:
    """The k values every script reports for n samples per task: the ladder's values up to n,
    and n itself (n = 1: just [1])."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return sorted({k for k in KS_LADDER if k <= n} | {n})


def sample_counts(outcomes: Mapping[str, Sequence[bool]]) -> dict[str, tuple[int, int]]:
    """task -> (samples, passing samples); an empty mapping or a task with no samples raises."""
    if not outcomes:
        raise ValueError("no tasks: outcomes is empty")
    counts = {}
    for tid, res in outcomes.items():
        res = list(res)
        if not res:
            raise ValueError(f"task {tid!r} has no samples")
        counts[tid] = (len(res), int(sum(bool(r) for r in res)))
    return counts


def _check_ks(ks: Iterable[int], counts: Mapping[str, tuple[int, int]]) -> list[int]:
    ks = [int(k) for k in ([ks] if isinstance(ks, (int, np.integer)) else ks)]
    if not ks:
        raise ValueError("ks is empty")
    n_min = min(n for n, _ in counts.values())
    worst = min(counts, key=lambda t: counts[t][0])
    for k in ks:
        if k < 1:
            raise ValueError(f"k={k} must be >= 1")
        if k > n_min:
            raise ValueError(
                f"k={k} is larger than the smallest number of samples per task (n={n_min}, "
                f"task {worst!r}); pass@{k} cannot be estimated -- draw more samples or drop k")
    return ks


def pass_at_k_summary(outcomes: Mapping[str, Sequence[bool]], ks: Iterable[int] | int, *,
                      confidence: float = DEFAULT_CONFIDENCE, n_boot: int = DEFAULT_N_BOOT,
                      seed: int = DEFAULT_SEED) -> dict[str, dict]:
    """Mean pass@k over tasks with a confidence interval, for each k.

    ``outcomes`` maps task_id -> list of per-sample pass/fail. Returns
    ``{"pass@k": {"k", "mean", "ci": (low, high), "ci_method", "n_tasks", "n_min", "n_max"}}``
    with all values as fractions in [0, 1].

    Interval method (named in ``ci_method``): Wilson score interval when k == 1 and every task
    has exactly one sample (greedy pass@1 is a proportion of tasks); otherwise a seeded
    percentile bootstrap over tasks. Raises ValueError for empty outcomes, a task with no
    samples, or k larger than the smallest n (never silently dropped).
    """
    counts = sample_counts(outcomes)
    ks = _check_ks(ks, counts)
    ns = [n for n, _ in counts.values()]
    out = {}
    for k in ks:
        vals = np.array(list(pass_at_k_per_task(counts, k).values()))
        if k == 1 and max(ns) == 1:
            ci = wilson_interval(int(vals.sum()), len(vals), confidence)
            method = "wilson"
        else:
            ci = bootstrap_mean_ci(vals, n_boot=n_boot, confidence=confidence, seed=seed)
            method = f"bootstrap(n_boot={n_boot},seed={seed})"
        out[f"pass@{k}"] = {"k": k, "mean": float(vals.mean()), "ci": ci, "ci_method": method,
                            "confidence": confidence, "n_tasks": len(vals),
                            "n_min": min(ns), "n_max": max(ns)}
    return out


# --------------------------------------------------------------------------------------------
# Confidence intervals
# --------------------------------------------------------------------------------------------


def _z(confidence: float) -> float:
    if not (0.0 < confidence < 1.0):
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    from scipy.stats import norm
    return float(norm.ppf(0.5 + confidence / 2.0))


def wilson_interval(successes: int, n: int, confidence: float = DEFAULT_CONFIDENCE
                    ) -> tuple[float, float]:
    """Wilson score interval (low, high) for a proportion ``successes / n``, as fractions.

    No fallback: n < 1 or successes outside 0..n raises ValueError. Bounds are clipped to [0, 1]
    against rounding only.
    """
    if n < 1:
        raise ValueError(f"Wilson interval needs n >= 1, got n={n}")
    if not (0 <= successes <= n):
        raise ValueError(f"need 0 <= successes <= n, got {successes}/{n}")
    z = _z(confidence)
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def _bootstrap_means(values: np.ndarray, n_boot: int, rng: np.random.Generator,
                     chunk: int = 256) -> np.ndarray:
    """Means of ``n_boot`` resamples (with replacement) of ``values`` along axis 0, chunked so
    memory stays at chunk × len(values) indices."""
    m = len(values)
    means = np.empty(n_boot)
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        idx = rng.integers(0, m, size=(b, m))
        means[start:start + b] = values[idx].mean(axis=1)
    return means


def bootstrap_mean_ci(values: Sequence[float], *, n_boot: int = DEFAULT_N_BOOT,
                      confidence: float = DEFAULT_CONFIDENCE, seed: int = DEFAULT_SEED
                      ) -> tuple[float, float]:
    """Percentile bootstrap interval (low, high) of the mean of per-task ``values``.

    Resamples tasks with replacement using ``numpy.random.default_rng(seed)``, so the result is
    reproducible. Same units as the values. No fallback: empty values or n_boot < 1 raise
    ValueError; a single task gives the degenerate interval (v, v).
    """
    vals = np.asarray(values, dtype=float)
    if vals.ndim != 1 or len(vals) == 0:
        raise ValueError("bootstrap needs a non-empty 1-D list of per-task values")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    _z(confidence)  # validates
    means = _bootstrap_means(vals, n_boot, np.random.default_rng(seed))
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return (float(lo), float(hi))


def format_ci(estimate: float, ci: tuple[float, float], n: int, *, scale: float = 100.0,
              digits: int = 1) -> str:
    """Format an estimate and its interval, e.g. ``"61.6 [54.0, 68.8] (n=164)"``.

    ``scale`` multiplies fractions into percent (pass 1.0 for values already in percent).
    """
    f = f"{{:.{digits}f}}"
    lo, hi = ci
    return f"{f.format(estimate * scale)} [{f.format(lo * scale)}, {f.format(hi * scale)}] (n={n})"


# --------------------------------------------------------------------------------------------
# Paired comparisons
# --------------------------------------------------------------------------------------------


class McNemarResult(NamedTuple):
    b: int      # pairs where the first system passes and the second fails
    c: int      # pairs where the first system fails and the second passes
    p: float    # exact two-sided p-value (binomial on the b + c discordant pairs, p=0.5)


def mcnemar_exact(a: Sequence[bool], b: Sequence[bool]) -> McNemarResult:
    """Exact McNemar test for two systems' pass/fail on the same tasks (same order).

    Returns (b, c, p): b = first passes & second fails, c = first fails & second passes,
    p = two-sided ``scipy.stats.binomtest(b, b + c, 0.5)`` p-value. Fallback: with no discordant
    pairs (b + c == 0) p is 1.0 (no evidence of a difference). Unequal lengths raise ValueError.
    """
    if len(a) != len(b):
        raise ValueError(f"paired test needs equal lengths, got {len(a)} and {len(b)}")
    nb = sum(1 for x, y in zip(a, b) if bool(x) and not bool(y))
    nc = sum(1 for x, y in zip(a, b) if not bool(x) and bool(y))
    if nb + nc == 0:
        return McNemarResult(0, 0, 1.0)
    from scipy.stats import binomtest
    return McNemarResult(nb, nc, float(binomtest(nb, nb + nc, 0.5).pvalue))


def paired_bootstrap_ci(a: Sequence[float], b: Sequence[float], *, n_boot: int = DEFAULT_N_BOOT,
                        confidence: float = DEFAULT_CONFIDENCE, seed: int = DEFAULT_SEED
                        ) -> tuple[float, float]:
    """Percentile bootstrap interval of ``mean(b) - mean(a)`` resampling *tasks* (pairs kept
    together), seeded. Same units as the inputs. Unequal lengths or empty inputs raise ValueError.
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired bootstrap needs equal lengths, got {len(a)} and {len(b)}")
    return bootstrap_mean_ci(b - a, n_boot=n_boot, confidence=confidence, seed=seed)


def paired_delta(a: Mapping[str, float], b: Mapping[str, float], *,
                 n_boot: int = DEFAULT_N_BOOT, confidence: float = DEFAULT_CONFIDENCE,
                 seed: int = DEFAULT_SEED) -> dict:
    """Compare system ``b`` against system ``a`` on the same tasks.

    ``a``/``b`` map task_id -> per-task score (0/1 pass, or a pass rate in [0, 1]). Returns
    ``{"delta": mean(b) - mean(a), "ci": (low, high), "n", "mean_a", "mean_b", "a_only",
    "b_only", "mcnemar_p", "binary"}``. Tasks are paired by id (sorted, so the seeded bootstrap
    does not depend on dict order). ``a_only``/``b_only`` count tasks where one side scores
    higher than the other (for 0/1 inputs these are McNemar's discordant pairs).

    Fallback: ``mcnemar_p`` is None unless every value on both sides is 0 or 1. Different task
    id sets raise ValueError listing (up to 5 of) the ids missing from each side.
    """
    ka, kb = set(a), set(b)
    if ka != kb:
        only_a, only_b = sorted(ka - kb), sorted(kb - ka)
        raise ValueError(
            f"paired comparison needs the same task ids: {len(only_a)} only in a "
            f"{only_a[:5]}, {len(only_b)} only in b {only_b[:5]}")
    if not ka:
        raise ValueError("paired comparison needs at least one task")
    ids = sorted(ka)
    va = np.array([float(a[t]) for t in ids])
    vb = np.array([float(b[t]) for t in ids])
    binary = bool(np.isin(va, (0.0, 1.0)).all() and np.isin(vb, (0.0, 1.0)).all())
    p = mcnemar_exact(va == 1.0, vb == 1.0).p if binary else None
    return {"delta": float(vb.mean() - va.mean()),
            "ci": paired_bootstrap_ci(va, vb, n_boot=n_boot, confidence=confidence, seed=seed),
            "confidence": confidence, "n": len(ids),
            "mean_a": float(va.mean()), "mean_b": float(vb.mean()),
            "a_only": int((va > vb).sum()), "b_only": int((vb > va).sum()),
            "mcnemar_p": p, "binary": binary}


# --------------------------------------------------------------------------------------------
# Difficulty slices
# --------------------------------------------------------------------------------------------

SLICES = ("easy", "medium", "hard")


def difficulty_label(rate: float, thresholds: tuple[float, float] = DEFAULT_THRESHOLDS) -> str:
    """``"easy"`` if rate >= hi, ``"medium"`` if lo <= rate < hi, else ``"hard"``.

    No fallback: thresholds outside 0 <= lo <= hi <= 1 or a rate outside [0, 1] raise ValueError.
    """
    lo, hi = thresholds
    if not (0.0 <= lo <= hi <= 1.0):
        raise ValueError(f"thresholds must satisfy 0 <= lo <= hi <= 1, got {thresholds}")
    if not (0.0 <= rate <= 1.0):
        raise ValueError(f"pass rate must be in [0, 1], got {rate}")
    if rate >= hi:
        return "easy"
    if rate >= lo:
        return "medium"
    return "hard"


def difficulty_slices(outcomes: Mapping[str, Sequence[bool]], ks: Iterable[int] | int,
                      thresholds: tuple[float, float] = DEFAULT_THRESHOLDS, *,
                      rates: Mapping[str, float] | None = None,
                      confidence: float = DEFAULT_CONFIDENCE, n_boot: int = DEFAULT_N_BOOT,
                      seed: int = DEFAULT_SEED) -> dict[str, dict]:
    """Per-difficulty pass@k: label each task easy/medium/hard by its base pass rate, then
    summarise each slice with :func:`pass_at_k_summary`.

    ``rates`` (task_id -> fraction of base samples passing) defines difficulty; by default it is
    each task's own pass fraction in ``outcomes``. Pass the *base model's* rates to slice a
    fine-tuned model's outcomes by the base model's difficulty (ids must match; else ValueError).
    Returns ``{slice: {"n_tasks", "task_ids", "pass@k": {...}, ...}}`` for all three slices;
    fallback: an empty slice has ``n_tasks`` 0 and no pass@k entries (named, not omitted).
    k larger than the smallest n raises ValueError (as in :func:`pass_at_k_summary`).
    """
    counts = sample_counts(outcomes)
    ks = _check_ks(ks, counts)
    if rates is None:
        rates = {t: c / n for t, (n, c) in counts.items()}
    elif set(rates) != set(outcomes):
        missing = sorted(set(outcomes) - set(rates))
        extra = sorted(set(rates) - set(outcomes))
        raise ValueError(f"rates and outcomes need the same task ids: missing {missing[:5]}, "
                         f"extra {extra[:5]}")
    groups: dict[str, list[str]] = {s: [] for s in SLICES}
    for tid in outcomes:
        groups[difficulty_label(float(rates[tid]), thresholds)].append(tid)
    out = {}
    for s in SLICES:
        ids = groups[s]
        entry = {"n_tasks": len(ids), "task_ids": ids, "thresholds": tuple(thresholds)}
        if ids:
            entry.update(pass_at_k_summary({t: outcomes[t] for t in ids}, ks,
                                           confidence=confidence, n_boot=n_boot, seed=seed))
        out[s] = entry
    return out


# --------------------------------------------------------------------------------------------
# Selectors (deployable best-of-N) and oracle
# --------------------------------------------------------------------------------------------


def _nonempty(xs: Sequence, what: str) -> None:
    if len(xs) == 0:
        raise ValueError(f"{what}: no candidates")


def select_max(scores: Sequence[float | None]) -> int:
    """Index of the highest score (e.g. mean log-probability); ties -> lowest index.

    Fallbacks: None and NaN scores count as -inf (never chosen over a real score); if every
    score is None/NaN, index 0. Empty input raises ValueError.
    """
    _nonempty(scores, "select_max")
    best, best_i = -math.inf, None
    for i, s in enumerate(scores):
        v = -math.inf if s is None else float(s)
        if math.isnan(v):
            v = -math.inf
        if best_i is None or v > best:
            best, best_i = v, i
    return best_i


def select_majority(keys: Sequence[Hashable | None]) -> int:
    """Index of the first member of the largest cluster of equal keys (majority vote /
    behaviour clustering; keys are answers or execution signatures).

    Ties between clusters -> the cluster whose first member appears earliest. None keys (no
    answer / crashed) are never selected while any non-None key exists; fallback: all None ->
    index 0. Empty input raises ValueError.
    """
    _nonempty(keys, "select_majority")
    counts = Counter(k for k in keys if k is not None)
    if not counts:
        return 0
    first: dict = {}
    for i, k in enumerate(keys):
        if k is not None and k not in first:
            first[k] = i
    best = max(counts, key=lambda k: (counts[k], -first[k]))
    return first[best]


def select_codet(pass_matrix: Sequence[Sequence[bool]]) -> int:
    """CodeT dual agreement: ``pass_matrix[i][j]`` is True when candidate i passes generated
    test j. Candidates passing the identical set of tests form a group; a group scores
    (#candidates in it) × (#tests it passes); return the first candidate of the best group.
    Ties -> the group whose first member appears earliest.

    Fallback: when no candidate passes any test (or there are no tests) every group scores 0
    and index 0 is returned. Empty input or ragged rows raise ValueError.
    """
    _nonempty(pass_matrix, "select_codet")
    rows = [tuple(bool(x) for x in row) for row in pass_matrix]
    if len({len(r) for r in rows}) != 1:
        raise ValueError("select_codet: every candidate needs a result for every test")
    groups: dict[tuple, list[int]] = {}
    for i, r in enumerate(rows):
        groups.setdefault(r, []).append(i)
    best = max(groups.values(), key=lambda m: (len(m) * sum(rows[m[0]]), -m[0]))
    return best[0]


def expected_random_pass(passed: Sequence[bool]) -> float:
    """Expected pass@1 of picking one candidate uniformly at random = fraction passing.
    Empty input raises ValueError (no fallback)."""
    _nonempty(passed, "expected_random_pass")
    return sum(bool(p) for p in passed) / len(passed)


def oracle_pass(passed: Sequence[bool]) -> bool:
    """ORACLE pass@N: True if any candidate passes the benchmark tests. The benchmark picks the
    winner, so this is coverage, not a deployable score (the paper's "best-of-N pass@1" was
    this). Empty input raises ValueError (no fallback)."""
    _nonempty(passed, "oracle_pass")
    return any(bool(p) for p in passed)


# --------------------------------------------------------------------------------------------
# Output-diversity probes (SSD anti-collapse battery)
# --------------------------------------------------------------------------------------------

_TOKEN_RE = re.compile(r"\w+|[^\w\s]")


def tokenize(text: str) -> list[str]:
    """Code-friendly tokens: runs of word characters, and each other non-space character."""
    return _TOKEN_RE.findall(text)


def _ngrams(tokens: Sequence[str], n: int) -> Counter:
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def distinct_n(texts: Sequence[str], n: int = 2) -> float | None:
    """Distinct-n: unique n-grams / total n-grams pooled over all samples of one prompt
    (1.0 = no repetition, near 0 = collapse). Tokens from :func:`tokenize`.

    Fallback: None when the samples contain no n-gram at all (all shorter than n tokens).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    pooled: Counter = Counter()
    for t in texts:
        pooled.update(_ngrams(tokenize(t), n))
    total = sum(pooled.values())
    return len(pooled) / total if total else None


def pairwise_ngram_overlap(texts: Sequence[str], n: int = 4) -> float | None:
    """Self-BLEU-like overlap: for every ordered pair (i, j), i != j, the clipped fraction of
    sample i's n-grams that also occur in sample j; returns the mean (1.0 = identical samples,
    0.0 = no shared n-gram).

    Fallbacks: pairs whose first sample has no n-gram are skipped; None when fewer than two
    samples or no pair is left.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    grams = [_ngrams(tokenize(t), n) for t in texts]
    vals = []
    for i, gi in enumerate(grams):
        ti = sum(gi.values())
        if not ti:
            continue
        for j, gj in enumerate(grams):
            if i != j:
                vals.append(sum(min(c, gj[g]) for g, c in gi.items()) / ti)
    return float(np.mean(vals)) if vals else None


def length_stats(lengths: Sequence[float]) -> dict:
    """``{"n", "mean", "median", "p95", "min", "max"}`` of lengths (chars, tokens...).
    Fallback: empty input gives n=0 and None for every statistic."""
    x = np.asarray(lengths, dtype=float)
    if len(x) == 0:
        return {"n": 0, "mean": None, "median": None, "p95": None, "min": None, "max": None}
    return {"n": int(len(x)), "mean": float(x.mean()), "median": float(np.median(x)),
            "p95": float(np.percentile(x, 95)), "min": float(x.min()), "max": float(x.max())}


def diversity_report(texts: Sequence[str], ns: Sequence[int] = (1, 2, 4)) -> dict:
    """All diversity probes for the samples of one prompt: distinct-n and pairwise overlap for
    each n, exact-duplicate fraction, and char/token length stats. Undefined probes are None
    (see :func:`distinct_n`, :func:`pairwise_ngram_overlap`)."""
    texts = list(texts)
    rep = {"n_samples": len(texts),
           "duplicate_fraction": (1.0 - len(set(texts)) / len(texts)) if texts else None,
           "chars": length_stats([len(t) for t in texts]),
           "tokens": length_stats([len(tokenize(t)) for t in texts])}
    for n in ns:
        rep[f"distinct_{n}"] = distinct_n(texts, n)
        rep[f"overlap_{n}"] = pairwise_ngram_overlap(texts, n)
    return rep
