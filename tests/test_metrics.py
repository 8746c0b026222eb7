"""Table-driven tests for common.metrics; expected values computed by hand (see comments)."""
import math

import numpy as np
import pytest

from common import metrics as M

T, F = True, False


# ---------------------------------------------------------------- pass@k
@pytest.mark.parametrize("n,c,k,expected", [
    (1, 0, 1, 0.0),            # n=1, fail
    (1, 1, 1, 1.0),            # n=1, pass
    (5, 0, 1, 0.0),            # c=0
    (5, 5, 1, 1.0),            # c=n
    (5, 5, 5, 1.0),
    (5, 2, 1, 0.4),            # c/n
    (5, 2, 2, 0.7),            # 1 - C(3,2)/C(5,2) = 1 - 3/10
    (5, 2, 3, 0.9),            # 1 - C(3,3)/C(5,3) = 1 - 1/10
    (5, 2, 4, 1.0),            # n-c=3 < k=4
    (4, 1, 2, 0.5),            # 1 - C(3,2)/C(4,2) = 1 - 3/6
    (10, 3, 5, 1 - 21 / 252),  # 1 - C(7,5)/C(10,5)
    (200, 0, 100, 0.0),
])
def test_pass_at_k_table(n, c, k, expected):
    assert M.pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("n,c,k", [(3, 1, 4), (3, 1, 0), (3, 4, 1), (3, -1, 1), (0, 0, 1)])
def test_pass_at_k_errors(n, c, k):
    with pytest.raises(ValueError):
        M.pass_at_k(n, c, k)


def test_pass_at_k_per_task_and_error_names_task():
    out = M.pass_at_k_per_task({"a": (5, 2), "b": (4, 1)}, 2)
    assert out == pytest.approx({"a": 0.7, "b": 0.5})
    with pytest.raises(ValueError, match="'b'"):
        M.pass_at_k_per_task({"a": (5, 2), "b": (1, 1)}, 2)


OUTCOMES = {"a": [T, F, F, F], "b": [T, T, F, F], "c": [F, F, F, F]}


def test_pass_at_k_summary_values():
    s = M.pass_at_k_summary(OUTCOMES, [1, 2], n_boot=500)
    assert set(s) == {"pass@1", "pass@2"}
    assert s["pass@1"]["mean"] == pytest.approx((0.25 + 0.5 + 0) / 3)
    # pass@2: a = 1 - C(3,2)/C(4,2) = 0.5; b = 1 - 1/6; c = 0
    assert s["pass@2"]["mean"] == pytest.approx((0.5 + 5 / 6) / 3)
    for v in s.values():
        lo, hi = v["ci"]
        assert 0.0 <= lo <= v["mean"] <= hi <= 1.0
        assert v["n_tasks"] == 3 and v["ci_method"].startswith("bootstrap")


def test_pass_at_k_summary_greedy_uses_wilson():
    outcomes = {f"t{i}": [i < 5] for i in range(10)}
    s = M.pass_at_k_summary(outcomes, 1)["pass@1"]
    assert s["mean"] == 0.5 and s["ci_method"] == "wilson"
    assert s["ci"] == pytest.approx((0.2366, 0.7634), abs=1e-4)


@pytest.mark.parametrize("outcomes,ks,match", [
    (OUTCOMES, [5], "smallest number of samples"),
    ({"a": [T, F], "b": [T]}, [2], "task 'b'"),
    ({}, [1], "empty"),
    ({"a": []}, [1], "no samples"),
    (OUTCOMES, [0], ">= 1"),
])
def test_pass_at_k_summary_errors(outcomes, ks, match):
    with pytest.raises(ValueError, match=match):
        M.pass_at_k_summary(outcomes, ks)


# ---------------------------------------------------------------- intervals
@pytest.mark.parametrize("x,n,lo,hi", [
    (5, 10, 0.2366, 0.7634),
    (0, 10, 0.0, 0.2775),     # z^2 / (n + z^2)
    (10, 10, 0.7225, 1.0),
    (1, 1, 0.2065, 1.0),
])
def test_wilson_table(x, n, lo, hi):
    assert M.wilson_interval(x, n) == pytest.approx((lo, hi), abs=1e-4)


@pytest.mark.parametrize("x,n", [(0, 0), (3, 2), (-1, 5)])
def test_wilson_errors(x, n):
    with pytest.raises(ValueError):
        M.wilson_interval(x, n)


def test_bootstrap_mean_ci():
    assert M.bootstrap_mean_ci([0.3] * 7) == pytest.approx((0.3, 0.3))
    assert M.bootstrap_mean_ci([1.0]) == (1.0, 1.0)
    vals = [1, 0, 1, 1, 0, 0, 1, 0, 1, 1] * 5
    a = M.bootstrap_mean_ci(vals, seed=3)
    assert a == M.bootstrap_mean_ci(vals, seed=3)           # seeded
    assert a[0] < 0.6 < a[1] and 0.4 < a[0] and a[1] < 0.8
    with pytest.raises(ValueError):
        M.bootstrap_mean_ci([])


def test_format_ci():
    assert M.format_ci(0.616, (0.540, 0.688), 164) == "61.6 [54.0, 68.8] (n=164)"
    assert M.format_ci(61.63, (54.0, 68.84), 164, scale=1, digits=2) == \
        "61.63 [54.00, 68.84] (n=164)"


# ---------------------------------------------------------------- paired comparisons
@pytest.mark.parametrize("a,b,exp", [
    ([1, 1, 1, 0, 0], [0, 0, 0, 0, 1], (3, 1, 10 / 16)),    # P(X<=1)+P(X>=3), X~Bin(4,.5)
    ([1, 0, 1], [1, 0, 1], (0, 0, 1.0)),                    # no discordant pairs
    ([1] * 6, [0] * 6, (6, 0, 2 / 64)),
    ([0] * 6, [1] * 6, (0, 6, 2 / 64)),
])
def test_mcnemar_table(a, b, exp):
    r = M.mcnemar_exact(a, b)
    assert (r.b, r.c) == exp[:2]
    assert r.p == pytest.approx(exp[2])


def test_mcnemar_length_mismatch():
    with pytest.raises(ValueError):
        M.mcnemar_exact([1, 0], [1])


def test_paired_delta_binary():
    a = {"x": 1, "y": 0, "z": 1, "w": 0}
    b = {"w": 1, "z": 0, "y": 1, "x": 1}
    r = M.paired_delta(a, b, n_boot=500)
    assert r["delta"] == pytest.approx(0.25) and r["n"] == 4
    assert (r["a_only"], r["b_only"]) == (1, 2)
    assert r["mcnemar_p"] == pytest.approx(1.0) and r["binary"]
    lo, hi = r["ci"]
    assert lo <= 0.25 <= hi
    assert r == M.paired_delta(dict(reversed(a.items())), b, n_boot=500)  # order-independent


def test_paired_delta_rates_and_errors():
    r = M.paired_delta({"p": 0.2, "q": 0.5}, {"p": 0.4, "q": 0.5}, n_boot=200)
    assert r["delta"] == pytest.approx(0.1) and r["mcnemar_p"] is None and not r["binary"]
    with pytest.raises(ValueError, match="only in a"):
        M.paired_delta({"p": 1, "q": 0}, {"p": 1, "r": 0})
    with pytest.raises(ValueError):
        M.paired_delta({}, {})


def test_paired_bootstrap_ci_constant_shift():
    assert M.paired_bootstrap_ci([0.1, 0.2, 0.3], [0.3, 0.4, 0.5]) == pytest.approx((0.2, 0.2))


# ---------------------------------------------------------------- difficulty slices
@pytest.mark.parametrize("rate,thresholds,label", [
    (1.0, (0.3, 0.7), "easy"), (0.7, (0.3, 0.7), "easy"), (0.6999, (0.3, 0.7), "medium"),
    (0.3, (0.3, 0.7), "medium"), (0.2999, (0.3, 0.7), "hard"), (0.0, (0.3, 0.7), "hard"),
    (0.6, (0.5, 0.9), "medium"), (0.9, (0.5, 0.9), "easy"),
])
def test_difficulty_label(rate, thresholds, label):
    assert M.difficulty_label(rate, thresholds) == label


@pytest.mark.parametrize("rate,thresholds", [
    (0.5, (0.7, 0.3)), (1.5, (0.3, 0.7)), (0.5, (-0.1, 0.5)),
])
def test_difficulty_label_errors(rate, thresholds):
    with pytest.raises(ValueError):
        M.difficulty_label(rate, thresholds)


SLICE_OUT = {"e1": [T, T, T, T], "e2": [T, T, T, F], "m": [T, T, F, F],
             "h": [F, F, F, T], "h2": [F, F, F, F]}


def test_difficulty_slices_values():
    s = M.difficulty_slices(SLICE_OUT, [1, 2], n_boot=200)
    assert {k: v["n_tasks"] for k, v in s.items()} == {"easy": 2, "medium": 1, "hard": 2}
    assert s["easy"]["pass@1"]["mean"] == pytest.approx(0.875)
    assert s["easy"]["pass@2"]["mean"] == pytest.approx(1.0)      # e2: n-c=1 < 2
    assert s["medium"]["pass@2"]["mean"] == pytest.approx(5 / 6)
    assert s["hard"]["pass@1"]["mean"] == pytest.approx(0.125)
    assert s["hard"]["pass@2"]["mean"] == pytest.approx(0.25)     # h: 0.5, h2: 0
    assert sorted(s["hard"]["task_ids"]) == ["h", "h2"]


def test_difficulty_slices_external_rates_and_empty_slice():
    rates = {t: 0.0 for t in SLICE_OUT}
    s = M.difficulty_slices(SLICE_OUT, 1, rates=rates, n_boot=100)
    assert s["hard"]["n_tasks"] == 5 and s["easy"]["n_tasks"] == 0
    assert "pass@1" not in s["easy"]
    with pytest.raises(ValueError, match="same task ids"):
        M.difficulty_slices(SLICE_OUT, 1, rates={"e1": 1.0})
    with pytest.raises(ValueError, match="smallest"):
        M.difficulty_slices(SLICE_OUT, 5)


# ---------------------------------------------------------------- selectors
@pytest.mark.parametrize("scores,idx", [
    ([0.1, 0.5, 0.3], 1), ([0.5, 0.5], 0), ([None, -1.0], 1), ([math.nan, 2.0], 1),
    ([None, None], 0), ([3.0], 0), ([-math.inf, -math.inf], 0), ([1, 2, 2], 1),
    (np.array([0.2, 0.9, 0.9]), 1),
])
def test_select_max(scores, idx):
    assert M.select_max(scores) == idx


@pytest.mark.parametrize("keys,idx", [
    (["a", "b", "b"], 1), (["a", "b", "a", "b"], 0), ([None, None, "x"], 2), ([None], 0),
    (["x"], 0), ([1, 2, 3], 0), ([None, "b", "a", "a", "b"], 1), ([None, None], 0),
    ([("out", 1), ("out", 2), ("out", 2)], 1),
])
def test_select_majority(keys, idx):
    assert M.select_majority(keys) == idx


@pytest.mark.parametrize("matrix,idx", [
    ([[T, F, F], [T, T, F], [T, T, F], [F, F, F]], 1),   # group {1,2}: 2*2=4 beats 1*1
    ([[T, T], [T, F], [T, F]], 0),                       # tie 1*2 vs 2*1 -> earliest group
    ([[F, F], [F, F], [T, F]], 2),                       # zero-pass crowd scores 0
    ([[F, F], [F, F]], 0),                               # all fail
    ([[T, T], [T, T]], 0),                               # all pass
    ([[T]], 0),                                          # single sample
    ([[], []], 0),                                       # no generated tests
    ([[F, T], [T, F], [T, F], [F, T], [F, T]], 0),       # {0,3,4}: 3 beats {1,2}: 2
])
def test_select_codet(matrix, idx):
    assert M.select_codet(matrix) == idx


def test_select_errors():
    for f in (M.select_max, M.select_majority, M.select_codet, M.expected_random_pass,
              M.oracle_pass):
        with pytest.raises(ValueError):
            f([])
    with pytest.raises(ValueError):
        M.select_codet([[T, F], [T]])


@pytest.mark.parametrize("passed,rand,oracle", [
    ([T, F, F, F], 0.25, True), ([T, T], 1.0, True), ([F, F, F], 0.0, False), ([T], 1.0, True),
    ([F], 0.0, False),
])
def test_random_and_oracle(passed, rand, oracle):
    assert M.expected_random_pass(passed) == rand
    assert M.oracle_pass(passed) is oracle


# ---------------------------------------------------------------- diversity
def test_tokenize():
    assert M.tokenize("x=foo(1) # hi") == ["x", "=", "foo", "(", "1", ")", "#", "hi"]


@pytest.mark.parametrize("texts,n,exp", [
    (["a b c", "a b c"], 1, 0.5), (["a b c", "a b c"], 2, 0.5), (["a b", "c d"], 1, 1.0),
    (["a"], 2, None), ([], 1, None), (["a a a a"], 1, 0.25),
])
def test_distinct_n(texts, n, exp):
    assert M.distinct_n(texts, n) == exp


@pytest.mark.parametrize("texts,n,exp", [
    (["a b c", "a b c"], 2, 1.0), (["a b c", "d e f"], 1, 0.0),
    (["a b c d", "a b x y"], 2, 1 / 3), (["a b c"], 1, None), (["a", "b"], 2, None),
    (["a a", "a"], 1, 0.75),   # i=0: min(2,1)/2 = .5 ; i=1: 1/1 -> mean .75
])
def test_pairwise_overlap(texts, n, exp):
    got = M.pairwise_ngram_overlap(texts, n)
    assert got == (pytest.approx(exp) if exp is not None else None)


def test_length_stats_and_report():
    s = M.length_stats([1, 2, 3, 4, 100])
    assert (s["median"], s["mean"], s["min"], s["max"]) == (3.0, 22.0, 1.0, 100.0)
    assert s["p95"] == pytest.approx(4 + 0.8 * 96)   # linear interpolation at rank 3.8
    assert M.length_stats([])["median"] is None
    r = M.diversity_report(["def f(): return 1", "def f(): return 1", "x = 2"], ns=(1, 2))
    assert r["n_samples"] == 3 and r["duplicate_fraction"] == pytest.approx(1 / 3)
    assert r["chars"]["median"] == len("def f(): return 1")
    assert 0 < r["distinct_1"] < 1 and 0 < r["overlap_2"] < 1
