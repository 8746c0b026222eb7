"""Test-time sampling (TTS): summaries, the code and math pipelines, and their figures.

Three layers, so each piece can be tested and reused on its own:

1. Pure summaries — :func:`tts_summary` (pass@k with the unbiased estimator, greedy, random
   (expected), every deployable selector as pass@1 of the selected sample with paired intervals,
   and ``oracle_pass@n``), :func:`ssd_precondition` (seed 003's 5 pp rule with difficulty
   slices), :func:`selection_curve` (selectors and oracle as a function of n, by subsampling
   one draw of N), :func:`ks_for`, :func:`proportion`, :func:`gap_recovered`.
2. Pipelines — :func:`run_code_tts` (sample with evaluate_code → greedy beside it →
   model-written tests → one sandbox run per candidate on the prompt's example inputs and the
   tests' inputs → selection) and :func:`run_math_tts` (sample → extract answers → majority
   vote / log-probability / oracle), both resumable, both writing ``result.json``.
3. Figures — :func:`plot_pass_at_k`, :func:`plot_selectors`, :func:`plot_heatmap`,
   :func:`plot_bars` (matplotlib, Agg backend), used by figures/plot.py and the sweep script.

Naming (PAPER.md §4 defect 5): ``oracle_pass@n`` is "any of the n samples passes the benchmark
tests" (coverage); it is never called best-of-N pass@1. Deployable selectors never read the
benchmark tests; they are reported as the pass@1 of the sample they chose.
"""
from __future__ import annotations

import collections
import dataclasses
import json
import logging
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from common.results import InputError

log = logging.getLogger(__name__)

KS_LADDER = (1, 2, 4, 5, 8, 10, 16, 20, 32, 50, 64, 100, 128, 256)
SSD_THRESHOLD_PP = 5.0
SSD_KS = (4, 8, 16)
CODE_SELECTORS = ("mean_logprob", "sum_logprob", "behaviour_majority", "visible_filter", "codet")
MATH_SELECTORS = ("majority_vote", "mean_logprob", "sum_logprob")
RERANK_CHOICES = {"logprob": "mean_logprob", "mean_logprob": "mean_logprob", "sum_logprob": "sum_logprob",
                  "majority": "behaviour_majority", "behaviour": "behaviour_majority",
                  "behaviour_majority": "behaviour_majority", "visible": "visible_filter",
                  "visible_filter": "visible_filter", "codet": "codet"}
BEHAVIOUR_INPUTS = ("prompt", "model", "both")

# --------------------------------------------------------------------------------------------
# 1. Pure summaries
# --------------------------------------------------------------------------------------------


def ks_for(n: int) -> list[int]:
    """k values reported for n samples: 1, 2, 4, 5, 8, 10, 16, 20, 32, ... up to n, and n."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return sorted({k for k in KS_LADDER if k <= n} | {n})


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


def _counts(outcomes: Mapping[str, Sequence[bool]]) -> dict[str, tuple[int, int]]:
    if not outcomes:
        raise ValueError("no tasks")
    out = {}
    for t, xs in outcomes.items():
        if not len(xs):
            raise ValueError(f"task {t!r} has no samples")
        out[t] = (len(xs), sum(bool(x) for x in xs))
    return out


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
    from common.metrics import bootstrap_mean_ci, difficulty_label, pass_at_k
    counts = _counts(outcomes)
    n_min = min(n for n, _ in counts.values())
    if n_min < 2:
        raise ValueError("the SSD precondition needs at least 2 samples per task (pass@k for k >= 2)")
    if k is None:
        k = max([x for x in SSD_KS if x <= n_min] or [n_min])
    if not (2 <= k <= n_min):
        raise ValueError(f"k={k} must be in 2..{n_min} (the smallest number of samples per task)")
    if rates is None:
        rates = {t: c / n for t, (n, c) in counts.items()}
    per_task = {t: {"pass@1": pass_at_k(n, c, 1), f"pass@{k}": pass_at_k(n, c, k),
                    "slice": difficulty_label(float(rates[t]), thresholds)}
                for t, (n, c) in counts.items()}

    def block(ids: list[str]) -> dict:
        if not ids:
            return {"n_tasks": 0, "pass@1": None, f"pass@{k}": None, "gap_pp": None, "verdict": None}
        p1 = sum(per_task[t]["pass@1"] for t in ids) / len(ids)
        pk = sum(per_task[t][f"pass@{k}"] for t in ids) / len(ids)
        gap = 100.0 * (pk - p1)
        return {"n_tasks": len(ids), "pass@1": p1, f"pass@{k}": pk, "gap_pp": gap,
                "verdict": "GO" if gap >= threshold_pp - 1e-9 else "NO-GO"}  # inclusive, float-safe

    ids = list(counts)
    overall = block(ids)
    gaps = [per_task[t][f"pass@{k}"] - per_task[t]["pass@1"] for t in ids]
    lo, hi = bootstrap_mean_ci(gaps, n_boot=n_boot, confidence=confidence, seed=seed)
    overall["gap_ci_pp"] = (100.0 * lo, 100.0 * hi)
    slices = {s: block([t for t in ids if per_task[t]["slice"] == s]) for s in ("hard", "medium", "easy")}
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
    for sl in ("hard", "medium", "easy"):
        ids = [t for t in per_task if slice_of[t] == sl]
        if not ids:
            out[sl] = {"n_tasks": 0, "greedy": None, "random_expected": None, "selectors": {}, "oracle_pass@n": None}
            continue
        mean = lambda xs: sum(xs) / len(ids)
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


def _cluster_ids(signatures: Sequence) -> list[int | None]:
    ids: dict = {}
    return [None if s is None else ids.setdefault(s, len(ids)) for s in signatures]


def tts_summary(cands: Sequence, *, greedy: Mapping[str, bool] | None = None,
                selectors: Sequence[str] = CODE_SELECTORS, primary: str | None = None,
                ks: Sequence[int] | None = None, confidence: float = 0.95, n_boot: int = 2000,
                seed: int = 0) -> tuple[dict, dict]:
    """Summarise N candidates per task: (metrics, per_task).

    ``cands``: :class:`common.selection.Candidates`, one per task, all with the same n.
    ``greedy``: task_id -> greedy verdict (optional). metrics holds ``pass_at_k`` (unbiased,
    every k of :func:`ks_for` unless given), ``greedy``, ``random_expected`` (the mean fraction
    of passing samples = expected pass@1 of a uniform pick), ``oracle_pass@n``, ``selectors``
    (pass@1 of the chosen sample, how often each rule/fallback fired, paired deltas against
    random and greedy, share of the oracle gap recovered), ``primary`` and a ``table`` in that
    order. A selector whose inputs were not computed for every task is left out (named in
    ``selectors_missing``).
    """
    from common.metrics import format_ci, oracle_pass, paired_delta, pass_at_k_summary
    from common.selection import select_all
    if not cands:
        raise ValueError("no tasks")
    ns = {len(c.passed) for c in cands}
    if len(ns) != 1:
        raise ValueError(f"every task needs the same number of samples, got {sorted(ns)}")
    n = ns.pop()
    ids = [c.task_id for c in cands]
    if len(set(ids)) != len(ids):
        raise ValueError("duplicate task ids")
    outcomes = {c.task_id: list(c.passed) for c in cands}
    ks = list(ks) if ks else ks_for(n)
    stats = dict(confidence=confidence, n_boot=n_boot, seed=seed)
    pk = pass_at_k_summary(outcomes, ks, **stats)
    p1 = {t: sum(map(bool, xs)) / n for t, xs in outcomes.items()}
    oracle = {t: float(oracle_pass(xs)) for t, xs in outcomes.items()}
    random_e = proportion(p1, **stats)
    orc = proportion(oracle, **stats)
    orc.update(n=n, label=f"oracle_pass@{n}",
               note="ORACLE: benchmark tests pick the winner (coverage), not a deployable score")
    choices = {c.task_id: select_all(c, selectors) for c in cands}
    present = [s for s in selectors if all(s in choices[t] for t in ids)]
    g = None
    if greedy is not None:
        missing = [t for t in ids if t not in greedy]
        if missing:
            raise ValueError(f"greedy verdicts missing for {len(missing)} tasks, e.g. {missing[:3]}")
        g = {t: float(bool(greedy[t])) for t in ids}
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
    table = []
    if greedy_out:
        table.append({"method": "greedy", **_row(greedy_out)})
    table.append({"method": "random (expected)", **_row(random_e)})
    for s, e in sel_out.items():
        table.append({"method": s + (" (primary)" if s == primary else ""), **_row(e),
                      "vs_greedy_pp": None if g is None else 100 * e["vs_greedy"]["delta"],
                      "oracle_gap_recovered": e["oracle_gap_recovered"]})
    table.append({"method": f"oracle_pass@{n}", **_row(orc)})
    metrics = {
        "n_tasks": len(ids), "n_samples_per_task": n,
        "pass_at_k": pk,
        "headline": {k: format_ci(v["mean"], v["ci"], v["n_tasks"]) for k, v in pk.items()},
        "greedy": greedy_out, "random_expected": random_e, "oracle_pass@n": orc,
        "selectors": sel_out, "selectors_missing": [s for s in selectors if s not in present],
        "primary_selector": primary, "primary": sel_out.get(primary) if primary else None,
        "table": table,
    }
    per_task = {}
    for c in cands:
        t = c.task_id
        per_task[t] = {"passed": [bool(x) for x in c.passed], "mean_logprob": list(c.mean_logprob),
                       "greedy": None if greedy is None else bool(greedy[t]),
                       "selected": {s: choices[t][s][0] for s in present},
                       "how": {s: choices[t][s][1] for s in present}}
        if c.signatures:
            per_task[t]["cluster"] = _cluster_ids(c.signatures)
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


def _row(e: dict) -> dict:
    return {"pass@1": e["mean"], "ci": e["ci"], "passed_tasks": e.get("passed_tasks")}


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
    from common.selection import select_all
    N = min(len(c.passed) for c in cands)
    rng = np.random.default_rng(seed)
    out = {}
    for m in sorted(set(int(x) for x in ns)):
        if not (1 <= m <= N):
            raise ValueError(f"n={m} is not in 1..{N} (samples drawn per task)")
        per_sel: dict[str, dict[str, float]] = collections.defaultdict(dict)
        for c in cands:
            reps = 1 if m == N else repeats
            acc: dict[str, float] = collections.defaultdict(float)
            for _ in range(reps):
                idx = list(range(N)) if m == N else sorted(rng.choice(N, m, replace=False).tolist())
                for s, (i, _how) in select_all(c.subset(idx), selectors).items():
                    acc[s] += float(bool(c.passed[idx[i]]))
            for s, v in acc.items():
                per_sel[s][c.task_id] = v / reps
        counts = {c.task_id: (N, sum(map(bool, c.passed[:N]))) for c in cands}
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


# --------------------------------------------------------------------------------------------
# Shared flags
# --------------------------------------------------------------------------------------------


def add_tts_args(p, code: bool = True) -> None:
    """Flags shared by the TTS scripts (selection, greedy reference, model tests, SSD rule)."""
    g = p.add_argument_group("test-time selection")
    if code:
        g.add_argument("--rerank", default="behaviour_majority", choices=sorted(RERANK_CHOICES),
                       help="primary deployable selector (all are computed and shown): mean_logprob/"
                            "logprob, sum_logprob, behaviour_majority/behaviour/majority (largest cluster "
                            "of identical outputs), visible_filter/visible (pass the prompt's own examples, "
                            "then highest mean log-prob), codet (model-written tests, dual agreement) "
                            "(default behaviour_majority)")
    g.add_argument("--greedy-run", default=None,
                   help="reuse this scored greedy run directory (samples.jsonl with verdicts, same model, "
                        "protocol and tasks) instead of running greedy decoding here")
    g.add_argument("--no-greedy", action="store_true",
                   help="skip the greedy reference (the table then has no greedy row)")
    if code:
        g.add_argument("--test-samples", type=int, default=2,
                       help="model-written test generations per task for CodeT and behaviour inputs; "
                            "0 = none (codet is then not computed) (default 2)")
        g.add_argument("--test-temperature", type=float, default=0.8,
                       help="temperature of the test generations (default 0.8)")
        g.add_argument("--test-max-new-tokens", type=int, default=256,
                       help="token budget of one test generation (default 256)")
        g.add_argument("--max-tests", type=int, default=20,
                       help="at most this many distinct model tests per task, in generation order (default 20)")
        g.add_argument("--behaviour-inputs", default="both", choices=BEHAVIOUR_INPUTS,
                       help="inputs whose outputs define behaviour clusters: prompt (the docstring's "
                            "examples), model (the model tests' inputs) or both (default both)")
    g.add_argument("--ssd-k", type=int, default=None,
                   help="k of the SSD precondition gap pass@k − pass@1 (default: largest of 4, 8, 16 <= n)")
    g.add_argument("--ssd-threshold-pp", type=float, default=SSD_THRESHOLD_PP,
                   help=f"GO/NO-GO threshold of that gap in percentage points (default {SSD_THRESHOLD_PP:g})")


def code_settings(args):
    """(strategy, sampling params, test-generation config or None, primary selector) from the
    shared flags, with every inconsistency refused as an InputError."""
    from common.prompts import get_protocol
    from common.strategies import get_strategy
    strategy = get_strategy(args.prompt_strategy, get_protocol(args.protocol), args.exemplars)
    params = strategy.sampling(args)
    if params.n < 2:
        raise InputError(f"--n-samples must be at least 2 for test-time selection (got {params.n})")
    if params.temperature == 0:
        raise InputError("test-time sampling needs --temperature > 0")
    primary = resolve_rerank(args.rerank)
    if args.test_samples < 0 or args.max_tests < 1 or args.test_max_new_tokens < 1:
        raise InputError("--test-samples must be >= 0, --max-tests and --test-max-new-tokens >= 1")
    testgen = None
    if args.test_samples > 0:
        testgen = TestGenConfig(n=args.test_samples, temperature=args.test_temperature,
                                max_new_tokens=args.test_max_new_tokens, max_tests=args.max_tests, seed=args.seed)
        testgen.params(True)  # validates (e.g. several greedy test generations)
    if primary == "codet" and testgen is None:
        raise InputError("--rerank codet needs model-written tests: --test-samples > 0")
    if args.greedy_run and args.no_greedy:
        raise InputError("--greedy-run and --no-greedy contradict each other")
    if args.ssd_k is not None and not (2 <= args.ssd_k <= params.n):
        raise InputError(f"--ssd-k must be in 2..--n-samples ({params.n}), got {args.ssd_k}")
    return strategy, params, testgen, primary


def resolve_rerank(name: str) -> str:
    if name not in RERANK_CHOICES:
        raise InputError(f"unknown --rerank {name!r}; choose from {', '.join(sorted(RERANK_CHOICES))}")
    return RERANK_CHOICES[name]


def slug(text: str) -> str:
    import re
    return re.sub(r"[^A-Za-z0-9.+]+", "-", str(text).rstrip("/").split("/")[-1]).strip("-").lower()


# --------------------------------------------------------------------------------------------
# 2a. Code pipeline
# --------------------------------------------------------------------------------------------

TESTGEN_USER = (
    "Write {m} assert statements that test the function `{entry}` below with concrete inputs and "
    "their expected results. Use only literal values, one assert per line. Output one ```python "
    "block containing only the assert lines.\n\n```python\n{prompt}\n```")
TESTGEN_RAW_STOPS = ("\n\n\n", "\ndef ", "\nclass ", "\nif __name__", "\nprint(")


@dataclass(frozen=True)
class TestGenConfig:
    """Model-written tests for CodeT (Chen et al. 2022): prompt the model for assert lines.
    Chat protocols: the request in ``TESTGEN_USER`` with the answer pre-filled as
    ``assert <entry>(``; ``raw``: the HumanEval prompt, ``pass``, a comment and ``assert <entry>(``
    (CodeT's own format)."""
    __test__ = False
    n: int = 2
    temperature: float = 0.8
    top_p: float = 0.95
    max_new_tokens: int = 256
    n_asserts: int = 5
    max_tests: int = 20
    seed: int = 0

    def params(self, chat: bool):
        from common.sampling import SamplingParams
        return SamplingParams(n=self.n, temperature=self.temperature, top_p=self.top_p,
                              max_new_tokens=self.max_new_tokens, seed=self.seed,
                              stop=("\n```",) if chat else TESTGEN_RAW_STOPS)

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "user_template": TESTGEN_USER}


def render_test_prompt(task: dict, protocol, llm, cfg: TestGenConfig) -> tuple[str, str]:
    """(model input, text the answer continues) for a test-generation request."""
    entry = task["entry_point"]
    lead = f"assert {entry}("
    if protocol.chat:
        msgs = ([{"role": "system", "content": protocol.system}] if protocol.system else []) + [
            {"role": "user", "content": TESTGEN_USER.format(m=cfg.n_asserts, entry=entry,
                                                            prompt=task["prompt"].rstrip())}]
        return llm.chat_prompt(msgs, "```python\n" + lead), lead
    return task["prompt"] + "    pass\n\n\n# check the correctness of " + entry + "\n" + lead, lead


def generate_model_tests(get_llm, tasks: list[dict], protocol, cfg: TestGenConfig, path: Path,
                         progress: bool = True) -> tuple[dict, dict]:
    """Model-written tests per task, resumable through ``path`` (JSONL of raw generations).
    Returns (task_id -> list of :class:`common.selection.Example`, stats)."""
    from common.results import JsonlLog
    from common.selection import parse_test_asserts
    with JsonlLog(path) as lg:
        have = collections.Counter(r["task_id"] for r in lg.rows)
        todo = [t for t in tasks if have[t["task_id"]] < cfg.n]
        if todo:
            llm = get_llm()
            rendered = [render_test_prompt(t, protocol, llm, cfg) for t in todo]

            def on_done(i, comps):
                t = todo[i]
                for si, c in enumerate(comps):
                    lg.append({"task_id": t["task_id"], "sample_index": si, "raw": c.text,
                               "text": rendered[i][1] + c.text, "finish_reason": c.finish_reason})

            t0 = time.time()
            position = {t["task_id"]: i for i, t in enumerate(tasks)}
            llm.generate([r[0] for r in rendered], cfg.params(protocol.chat), on_done=on_done,
                         progress=progress, desc="model tests", seed_keys=[position[t["task_id"]] for t in todo])
            log.info("model tests: %d tasks x %d generations in %.0fs", len(todo), cfg.n, time.time() - t0)
        rows = list(lg.rows)
    by_task = collections.defaultdict(list)
    for r in sorted(rows, key=lambda r: (r["task_id"], r["sample_index"])):
        by_task[r["task_id"]].append(r["text"])
    tests, n_raw = {}, 0
    for t in tasks:
        seen, out = set(), []
        for text in by_task.get(t["task_id"], []):
            for ex in parse_test_asserts(text, t["entry_point"]):
                n_raw += 1
                key = (ex.args, repr(ex.expected), ex.check)
                if key not in seen and len(out) < cfg.max_tests:
                    seen.add(key)
                    out.append(ex)
        tests[t["task_id"]] = out
    counts = [len(v) for v in tests.values()]
    stats = {"tasks_with_tests": sum(1 for c in counts if c), "mean_tests_per_task": sum(counts) / max(1, len(counts)),
             "parsed_asserts": n_raw, "generations": len(rows)}
    return tests, stats


def task_inputs(examples: Sequence, tests: Sequence, behaviour_inputs: str = "both"):
    """Shared input list of one task: (inputs, example offsets, test offsets, behaviour offsets).
    Equal argument sources are run once."""
    if behaviour_inputs not in BEHAVIOUR_INPUTS:
        raise ValueError(f"behaviour_inputs must be one of {BEHAVIOUR_INPUTS}")
    index: dict[str, int] = {}
    ex_off = [index.setdefault(e.args, len(index)) for e in examples]
    t_off = [index.setdefault(e.args, len(index)) for e in tests]
    beh = {"prompt": ex_off, "model": t_off, "both": ex_off + t_off}[behaviour_inputs]
    beh = list(dict.fromkeys(beh))
    return list(index), ex_off, t_off, beh


def execute_candidates(tasks: list[dict], rows_by_task: Mapping[str, list[dict]],
                       inputs_by_task: Mapping[str, list[str]],
                       *, workers=None, timeout=None, progress=True, path: Path | None = None) -> dict:
    """Run every candidate once on its task's inputs (sandbox ``outputs`` mode).
    Returns task_id -> list of (status, outputs) per sample; a task with no inputs gets
    ("no_inputs", []) without running anything. Written to ``path`` (JSONL) when given."""
    from common.sandbox import DEFAULT_TIMEOUT, Job, SandboxPool
    jobs, where = [], []
    out: dict[str, list] = {}
    for t in tasks:
        tid = t["task_id"]
        rows = rows_by_task[tid]
        out[tid] = [("no_inputs", [])] * len(rows)
        if not inputs_by_task.get(tid):
            continue
        for si, r in enumerate(rows):
            jobs.append(Job.outputs(t["prompt"] + (r.get("completion") or ""), t["entry_point"], inputs_by_task[tid]))
            where.append((tid, si))
    errors: dict = {}
    if jobs:
        t0 = time.time()
        with SandboxPool(workers=workers, timeout=timeout or DEFAULT_TIMEOUT) as pool:
            results = pool.run_many(jobs, progress=progress, desc="behaviour")
        for (tid, si), res in zip(where, results):
            out[tid][si] = (res.status, list(res.outputs or []))
            errors[(tid, si)] = res.error.strip().splitlines()[-1] if res.error.strip() else ""
        log.info("behaviour: ran %d programs in %.0fs", len(jobs), time.time() - t0)
    if path is not None:
        from common.results import write_jsonl_atomic
        write_jsonl_atomic(Path(path), [{"task_id": tid, "sample_index": si, "status": st, "outputs": outs,
                                     "error": errors.get((tid, si), "")}
                                    for tid, lst in out.items() for si, (st, outs) in enumerate(lst)])
    return out


def build_candidates(task: dict, rows: list[dict], examples, tests, execution, ex_off, t_off, beh_off,
                     with_codet: bool):
    """The :class:`common.selection.Candidates` of one task from its scored rows, parsed
    examples/tests and execution results."""
    from common.selection import Candidates, behaviour_signature, codet_matrix, example_holds
    n_in = len(set(ex_off) | set(t_off))
    sigs, vis, outs_ok = [], [], []
    for st, outs in execution:
        # a program that stopped part-way (timeout) still has outputs for the inputs before it
        ok = n_in > 0 and len(outs) == n_in
        sigs.append(behaviour_signature(st, [outs[i] for i in beh_off]) if ok and beh_off else None)
        vis.append([example_holds(outs[i], e) for e, i in zip(examples, ex_off)] if ok else [False] * len(examples))
        outs_ok.append(outs if ok else None)
    cand = Candidates(task["task_id"], [bool(r["passed"]) for r in rows],
                      [r.get("mean_logprob") for r in rows], [r.get("sum_logprob") for r in rows],
                      signatures=sigs, visible=vis)
    if with_codet:
        cand.codet = codet_matrix(outs_ok, tests, t_off)
    return cand


def load_greedy_run(path: str | Path, task_ids: Sequence[str], *, field: str = "passed",
                    model_info: dict | None = None, dataset: dict | None = None) -> tuple[dict, dict]:
    """Verdicts of an existing greedy run directory (``samples.jsonl`` scored, plus its
    ``config.json``). Refused (InputError) when samples are missing or unscored, the run is not
    greedy, or it was made with another model (weights hash) than ``model_info`` or on another
    dataset (name and file hash) than ``dataset``."""
    from common.results import read_jsonl
    p = Path(path)
    rows = read_jsonl(p / "samples.jsonl", "greedy run samples")
    cfg = json.loads((p / "config.json").read_text()) if (p / "config.json").is_file() else {}
    samp = cfg.get("sampling") or {}
    if samp and (samp.get("n") != 1 or samp.get("temperature") != 0):
        raise InputError(f"--greedy-run {p}: not a greedy run (n={samp.get('n')}, T={samp.get('temperature')})")
    if model_info and cfg.get("model"):
        a, b = cfg["model"].get("file_sha256"), model_info.get("file_sha256")
        if a and b and a != b or cfg["model"].get("adapter_sha256") != model_info.get("adapter_sha256"):
            raise InputError(f"--greedy-run {p} was made with another model or adapter than this run")
    if dataset and cfg.get("dataset"):
        theirs, ours = cfg["dataset"], {k: dataset.get(k) for k in ("name", "sha256")}
        if theirs.get("name") != ours["name"] or (theirs.get("sha256") and ours["sha256"]
                                                   and theirs["sha256"] != ours["sha256"]):
            raise InputError(f"--greedy-run {p} was scored on {theirs.get('name')} ({str(theirs.get('sha256'))[:12]}), "
                             f"this run is {ours['name']} ({str(ours['sha256'])[:12]})")
    got = {}
    for r in rows:
        if r.get("sample_index", 0) == 0:
            if field not in r:
                raise InputError(f"--greedy-run {p}: samples are not scored yet (no {field!r} field)")
            got[r["task_id"]] = bool(r[field])
    missing = [t for t in task_ids if t not in got]
    if missing:
        raise InputError(f"--greedy-run {p} lacks {len(missing)} of the tasks, e.g. {missing[:3]}")
    return {t: got[t] for t in task_ids}, {"path": str(p), "protocol": cfg.get("protocol"),
                                           "model": (cfg.get("model") or {}).get("ref"), "sampling": samp}


def _seed_run_dir(src: Path, dst: Path, task_ids: set, fields=None) -> bool:
    """Copy the generated samples of another run (same prompts) into an empty run directory, so
    evaluate_code only re-scores them (e.g. HumanEval samples scored on HumanEval+)."""
    from common.evaluation import SAMPLE_FIELDS
    from common.results import write_jsonl_atomic
    from common.results import read_jsonl
    if (dst / "samples.jsonl").exists() or not (src / "samples.jsonl").is_file():
        return False
    keep = fields or SAMPLE_FIELDS
    rows = [{k: r.get(k) for k in keep} for r in read_jsonl(src / "samples.jsonl") if r["task_id"] in task_ids]
    dst.mkdir(parents=True, exist_ok=True)
    write_jsonl_atomic(dst / "samples.jsonl", rows)
    return True


def run_code_tts(*, script: str, argv, args: dict, run_dir: Path, tasks: list[dict], dataset: dict,
                 strategy, params, model_info: dict, get_llm, greedy_run: str | None = None,
                 run_greedy: bool = True, testgen: TestGenConfig | None = None,
                 behaviour_inputs: str = "both", primary: str = "behaviour_majority",
                 ssd_k: int | None = None, ssd_threshold_pp: float = SSD_THRESHOLD_PP,
                 workers=None, timeout=None, overwrite=False, progress=True,
                 seed_from: Mapping[str, Path | None] | None = None,
                 extra: dict | None = None) -> tuple[dict, list]:
    """The code TTS run: returns (result, candidates) and writes ``run_dir/result.json``.

    Layout of ``run_dir``: ``sampled/`` and ``greedy/`` (evaluate_code runs), ``model_tests.jsonl``,
    ``execution.jsonl`` (outputs of every candidate), ``config.json``, ``result.json``.
    ``seed_from``: generations of another run with the same prompts to reuse instead of
    generating again, ``{"sampled": dir, "greedy": dir, "model_tests": file}`` (copied into an
    empty run, then scored here: HumanEval+ re-scores HumanEval's samples)."""
    from common.evaluation import evaluate_code
    from common.rundir import open_run_dir
    from common.results import provenance, read_jsonl, write_json_atomic
    from common.selection import parse_prompt_examples
    from common.strategies import strategy_hooks
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if overwrite:
        for name in ("model_tests.jsonl", "execution.jsonl"):
            (run_dir / name).unlink(missing_ok=True)
    config = {"kind": "tts_code", "model": model_info, "protocol": strategy.protocol_name,
              "sampling": params.to_dict(), "greedy_run": greedy_run, "run_greedy": run_greedy,
              "testgen": testgen.to_dict() if testgen else None, "behaviour_inputs": behaviour_inputs,
              "dataset": {k: dataset.get(k) for k in ("name", "sha256")},
              "task_ids": [t["task_id"] for t in tasks]}
    open_run_dir(run_dir, config, overwrite)
    t_start = time.time()
    ids = {t["task_id"] for t in tasks}
    for sub, src in (seed_from or {}).items():
        if src is None:
            continue
        if sub in ("sampled", "greedy"):
            _seed_run_dir(Path(src), run_dir / sub, ids)
        elif sub == "model_tests":
            if Path(src).is_file() and not (run_dir / "model_tests.jsonl").exists():
                from common.results import write_jsonl_atomic
                write_jsonl_atomic(run_dir / "model_tests.jsonl",
                               [r for r in read_jsonl(src) if r["task_id"] in ids])
        else:
            raise ValueError(f"seed_from: unknown part {sub!r}")
    common_kw = dict(argv=argv, args=args, tasks=tasks, dataset=dataset, protocol=strategy.protocol,
                     model_info=model_info, get_llm=get_llm, workers=workers, timeout=timeout,
                     overwrite=overwrite, progress=progress, extra={"prompt_strategy": strategy.to_dict()})

    def run_eval(sub: str, p):
        hooks = strategy_hooks(strategy, get_llm=get_llm, params=p, run_dir=run_dir / sub,
                               workers=workers, timeout=timeout, progress=progress)
        return evaluate_code(script=script, run_dir=run_dir / sub, params=p, **common_kw, **hooks)

    sampled = run_eval("sampled", params)
    rows = read_jsonl(run_dir / "sampled" / "samples.jsonl")
    rows_by_task = collections.defaultdict(list)
    for r in sorted(rows, key=lambda r: r["sample_index"]):
        rows_by_task[r["task_id"]].append(r)

    greedy, greedy_info = None, None
    if greedy_run:
        greedy, greedy_info = load_greedy_run(greedy_run, [t["task_id"] for t in tasks], model_info=model_info,
                                              dataset=dataset)
        gp = (greedy_info.get("protocol") or strategy.protocol_name)
        if gp != strategy.protocol_name:
            raise InputError(f"--greedy-run {greedy_run} used protocol {gp!r}, this run {strategy.protocol_name!r}")
    elif run_greedy:
        gparams = dataclasses.replace(params, n=1, temperature=0.0, top_p=1.0, top_k=0)
        gres = run_eval("greedy", gparams)
        grows = read_jsonl(run_dir / "greedy" / "samples.jsonl")
        greedy = {r["task_id"]: bool(r["passed"]) for r in grows}
        greedy_info = {"path": str(run_dir / "greedy"), "protocol": strategy.protocol_name,
                       "sampling": gparams.to_dict(), "pass@1": gres["metrics"]["pass_at_k"]["pass@1"]["mean"]}

    examples = {t["task_id"]: parse_prompt_examples(t["prompt"], t["entry_point"]) for t in tasks}
    tests, test_stats = ({t["task_id"]: [] for t in tasks}, None)
    if testgen is not None and testgen.n > 0:
        tests, test_stats = generate_model_tests(get_llm, tasks, strategy.protocol, testgen,
                                                 run_dir / "model_tests.jsonl", progress)
    layout = {t["task_id"]: task_inputs(examples[t["task_id"]], tests[t["task_id"]], behaviour_inputs) for t in tasks}
    t0 = time.time()
    execution = execute_candidates(tasks, rows_by_task, {t: v[0] for t, v in layout.items()}, workers=workers,
                                   timeout=timeout, progress=progress, path=run_dir / "execution.jsonl")
    exec_s = time.time() - t0
    cands = []
    for t in tasks:
        tid = t["task_id"]
        _, ex_off, t_off, beh = layout[tid]
        cands.append(build_candidates(t, rows_by_task[tid], examples[tid], tests[tid], execution[tid],
                                      ex_off, t_off, beh, with_codet=testgen is not None and testgen.n > 0))
    selectors = [s for s in CODE_SELECTORS if s != "codet" or (testgen is not None and testgen.n > 0)]
    metrics, per_task = tts_summary(cands, greedy=greedy, selectors=selectors, primary=primary)
    outcomes = {c.task_id: c.passed for c in cands}
    if params.n >= 2:
        ssd = ssd_precondition(outcomes, k=ssd_k, threshold_pp=ssd_threshold_pp)
        for t, v in ssd.pop("per_task").items():
            per_task[t]["ssd"] = v
        metrics["ssd_precondition"] = ssd
        metrics["by_slice"] = by_slice(per_task, {t: v["ssd"]["slice"] for t, v in per_task.items()})
    n_ex = [len(v) for v in examples.values()]
    metrics["prompt_examples"] = {"tasks_with_examples": sum(1 for x in n_ex if x), "n_examples": sum(n_ex)}
    metrics["model_tests"] = test_stats
    metrics["execution_status_counts"] = dict(collections.Counter(st for lst in execution.values() for st, _ in lst))
    for t in tasks:
        per_task[t["task_id"]]["n_prompt_examples"] = len(examples[t["task_id"]])
        per_task[t["task_id"]]["n_model_tests"] = len(tests[t["task_id"]])
    result = {**provenance(script, argv, args), "kind": "tts_code", "model": model_info,
              "protocol": strategy.protocol_name, "prompt_strategy": strategy.to_dict(),
              "sampling": params.to_dict(), "dataset": dataset, "greedy_source": greedy_info,
              "testgen": testgen.to_dict() if testgen else None, "behaviour_inputs": behaviour_inputs,
              "sampled_run": str(run_dir / "sampled"), "sandbox_limits": sampled.get("sandbox_limits"),
              "timings": {"sampled": sampled["timings"], "execution_s": round(exec_s, 1),
                          "total_s_this_invocation": round(time.time() - t_start, 1)},
              "metrics": metrics, "per_task": per_task, **(extra or {})}
    write_json_atomic(run_dir / "result.json", result)
    return result, cands


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


# --------------------------------------------------------------------------------------------
# 2b. Math pipeline
# --------------------------------------------------------------------------------------------

GSM8K_TEMPLATE = ("Solve this math problem step by step. End with the answer on a new line as: "
                  "#### <number>\n\nProblem: {problem}")
MATH_TEMPLATE = ("Solve this math problem step by step. Put the final answer in \\boxed{{}}.\n\n"
                 "Problem: {problem}")
AIME_TEMPLATE = ("Solve this math problem step by step. The answer is an integer from 0 to 999. Put the "
                 "final answer in \\boxed{{}}.\n\nProblem: {problem}")
MATH_FORMATS = ("chat", "raw")
RAW_MATH_STOPS = ("\n\nProblem:", "\nProblem:")


@dataclass(frozen=True)
class MathBench:
    name: str
    template: str
    max_new_tokens: int

    def extract(self, text: str):
        from common import answers
        return {"gsm8k": answers.extract_gsm8k_answer, "math500": answers.extract_math_answer,
                "aime": answers.extract_aime_answer}[self.name](text)

    def equal(self, pred, gold) -> bool:
        from common import answers
        if pred is None:
            return False
        if self.name == "gsm8k":
            return answers.gsm8k_equal(pred, gold)
        if self.name == "math500":
            return answers.math_equiv(pred, gold)
        return answers.aime_equal(pred, gold)


MATH_BENCHES = {"gsm8k": MathBench("gsm8k", GSM8K_TEMPLATE, 512),
                "math500": MathBench("math500", MATH_TEMPLATE, 1024),
                "aime": MathBench("aime", AIME_TEMPLATE, 1024)}


def math_bench(name: str) -> MathBench:
    if name not in MATH_BENCHES:
        raise InputError(f"unknown math benchmark {name!r}; choose from {', '.join(MATH_BENCHES)}")
    return MATH_BENCHES[name]


def render_math(task: dict, bench: MathBench, fmt: str, llm) -> str:
    user = bench.template.format(problem=task["problem"])
    if fmt == "chat":
        return llm.chat_prompt([{"role": "user", "content": user}])
    if fmt == "raw":
        return user + "\n\nSolution:"
    raise InputError(f"unknown math prompt format {fmt!r}; choose from {', '.join(MATH_FORMATS)}")


def math_sampling(args, bench: MathBench, fmt: str, *, n=None, temperature=None):
    from common.sampling import SamplingParams
    return SamplingParams(n=args.n_samples if n is None else n,
                          temperature=args.temperature if temperature is None else temperature,
                          top_p=args.top_p, top_k=args.top_k,
                          max_new_tokens=args.max_new_tokens or bench.max_new_tokens,
                          stop=RAW_MATH_STOPS if fmt == "raw" else (), seed=args.seed, logprobs=True)


def evaluate_math(*, script: str, argv, args: dict, run_dir: Path, tasks: list[dict], dataset: dict,
                  bench: MathBench, fmt: str, params, model_info: dict, get_llm, overwrite=False,
                  progress=True) -> dict:
    """Generate → extract the final answer → check against the gold answer; resumable
    ``samples.jsonl`` (one line per sample, with ``answer``, ``extraction``, ``correct``) and
    ``result.json`` with pass@k (correct = passed)."""
    from common.rundir import open_run_dir
    from common.metrics import format_ci, pass_at_k_summary
    from common.results import JsonlLog, provenance, write_json_atomic
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    config = {"kind": "math_samples", "model": model_info, "bench": bench.name, "format": fmt,
              "template": bench.template, "sampling": params.to_dict(),
              "dataset": {k: dataset.get(k) for k in ("name", "sha256")}, "task_ids": [t["task_id"] for t in tasks]}
    open_run_dir(run_dir, config, overwrite)
    t0 = time.time()
    with JsonlLog(run_dir / "samples.jsonl") as lg:
        have = collections.Counter(r["task_id"] for r in lg.rows)
        todo = [t for t in tasks if have[t["task_id"]] < params.n]
        if any(have[t["task_id"]] for t in todo):
            raise InputError(f"{run_dir}/samples.jsonl has an incomplete set of samples; use --overwrite")
        if todo:
            llm = get_llm()
            prompts = [render_math(t, bench, fmt, llm) for t in todo]

            def on_done(i, comps):
                t = todo[i]
                for si, c in enumerate(comps):
                    ex = bench.extract(c.text)
                    lg.append({"task_id": t["task_id"], "sample_index": si, "raw": c.text,
                               "answer": ex.answer, "extraction": ex.method, "gold": t["answer"],
                               "correct": bench.equal(ex.answer, t["answer"]), "finish_reason": c.finish_reason,
                               "n_tokens": c.n_tokens, "sum_logprob": c.sum_logprob,
                               "mean_logprob": c.mean_logprob})

            position = {t["task_id"]: i for i, t in enumerate(tasks)}
            llm.generate(prompts, params, on_done=on_done, progress=progress, desc=f"{bench.name}",
                         seed_keys=[position[t["task_id"]] for t in todo])
        rows = list(lg.rows)
    gen_s = time.time() - t0
    order = {t["task_id"]: i for i, t in enumerate(tasks)}
    rows = sorted((r for r in rows if r["task_id"] in order), key=lambda r: (order[r["task_id"]], r["sample_index"]))
    outcomes = collections.defaultdict(list)
    for r in rows:
        outcomes[r["task_id"]].append(bool(r["correct"]))
    summ = pass_at_k_summary({t["task_id"]: outcomes[t["task_id"]] for t in tasks}, ks_for(params.n))
    result = {**provenance(script, argv, args), "kind": "math_samples", "model": model_info, "bench": bench.name,
              "format": fmt, "template": bench.template, "sampling": params.to_dict(), "dataset": dataset,
              "timings": {"generation_s": round(gen_s, 1)},
              "metrics": {"pass_at_k": summ,
                          "headline": {k: format_ci(v["mean"], v["ci"], v["n_tasks"]) for k, v in summ.items()},
                          "n_tasks": len(tasks), "n_samples": len(rows),
                          "extraction_counts": dict(collections.Counter(r["extraction"] for r in rows)),
                          "finish_reason_counts": dict(collections.Counter(r["finish_reason"] for r in rows))}}
    write_json_atomic(run_dir / "result.json", result)
    return result


def math_candidates(task_id: str, rows: list[dict]):
    """Candidates of one math task: answers' vote keys (common.answers.answer_key) as
    signatures, so majority vote = self-consistency."""
    from common.answers import answer_key
    from common.selection import Candidates
    return Candidates(task_id, [bool(r["correct"]) for r in rows], [r.get("mean_logprob") for r in rows],
                      [r.get("sum_logprob") for r in rows], signatures=[answer_key(r.get("answer")) for r in rows])


def run_math_tts(*, script: str, argv, args: dict, run_dir: Path, tasks: list[dict], dataset: dict,
                 bench: MathBench, fmt: str, params, model_info: dict, get_llm, greedy_run=None,
                 run_greedy=True, ssd_k=None, ssd_threshold_pp=SSD_THRESHOLD_PP, overwrite=False,
                 progress=True, kind: str = "tts_math", extra: dict | None = None) -> tuple[dict, list]:
    """Math TTS: ``sampled/`` and ``greedy/`` runs of :func:`evaluate_math`, then majority vote,
    log-probability selection, oracle and pass@k; writes ``run_dir/result.json``."""
    from common.results import provenance, read_jsonl, write_json_atomic
    run_dir = Path(run_dir)
    t_start = time.time()
    kw = dict(script=script, argv=argv, args=args, tasks=tasks, dataset=dataset, bench=bench, fmt=fmt,
              model_info=model_info, get_llm=get_llm, overwrite=overwrite, progress=progress)
    sampled = evaluate_math(run_dir=run_dir / "sampled", params=params, **kw)
    rows = read_jsonl(run_dir / "sampled" / "samples.jsonl")
    by_task = collections.defaultdict(list)
    for r in sorted(rows, key=lambda r: r["sample_index"]):
        by_task[r["task_id"]].append(r)
    greedy, greedy_info = None, None
    if greedy_run:
        greedy, greedy_info = load_greedy_run(greedy_run, [t["task_id"] for t in tasks], field="correct",
                                              model_info=model_info, dataset=dataset)
    elif run_greedy:
        gparams = dataclasses.replace(params, n=1, temperature=0.0, top_p=1.0, top_k=0)
        gres = evaluate_math(run_dir=run_dir / "greedy", params=gparams, **kw)
        greedy = {r["task_id"]: bool(r["correct"]) for r in read_jsonl(run_dir / "greedy" / "samples.jsonl")}
        greedy_info = {"path": str(run_dir / "greedy"), "sampling": gparams.to_dict(),
                       "pass@1": gres["metrics"]["pass_at_k"]["pass@1"]["mean"]}
    cands = [math_candidates(t["task_id"], by_task[t["task_id"]]) for t in tasks]
    metrics, per_task = tts_summary(cands, greedy=greedy, selectors=MATH_SELECTORS, primary="majority_vote")
    if params.n >= 2:
        ssd = ssd_precondition({c.task_id: c.passed for c in cands}, k=ssd_k, threshold_pp=ssd_threshold_pp)
        metrics["by_slice"] = by_slice(per_task, {t: v["slice"] for t, v in ssd.pop("per_task").items()})
        metrics["ssd_precondition"] = ssd
    metrics["extraction_counts"] = sampled["metrics"]["extraction_counts"]
    for t in tasks:
        per_task[t["task_id"]]["answers"] = [r.get("answer") for r in by_task[t["task_id"]]]
        per_task[t["task_id"]]["gold"] = t["answer"]
    result = {**provenance(script, argv, args), "kind": kind, "model": model_info, "bench": bench.name,
              "format": fmt, "template": bench.template, "sampling": params.to_dict(), "dataset": dataset,
              "greedy_source": greedy_info, "sampled_run": str(run_dir / "sampled"),
              "timings": {"sampled": sampled["timings"], "total_s_this_invocation": round(time.time() - t_start, 1)},
              "metrics": metrics, "per_task": per_task, **(extra or {})}
    write_json_atomic(run_dir / "result.json", result)
    return result, cands


def add_math_args(p, bench: str) -> None:
    """Benchmark flags of the math TTS scripts."""
    p.add_argument("--data-path", default=None,
                   help=f"local {bench} data file (JSONL/JSON/parquet in the Hugging Face schema; default: "
                        f"the SELFIMPROVE_DATA_{bench.upper()} variable)")
    p.add_argument("--format", default="chat", choices=MATH_FORMATS,
                   help="chat: the instruction as a user turn in the model's chat template; raw: plain text "
                        "ending in 'Solution:' with a stop at the next 'Problem:' (default chat)")


def math_run_name(prefix: str, bench: str, args) -> str:
    parts = [prefix, bench, slug(args.model)]
    if getattr(args, "adapter", None):
        parts.append("adapter-" + slug(args.adapter))
    parts += [args.format, f"n{args.n_samples}-t{args.temperature}-p{args.top_p}-s{args.seed}"]
    if args.limit:
        parts.append(f"limit{args.limit}")
    return "_".join(parts)


def math_script_main(bench_name: str, script: str, args, argv, *, prefix: str = "tts",
                     kind: str = "tts_math") -> tuple[dict, Path]:
    """The body of tts_math500.py / tts_aime.py / self_consistency.py (math): load, sample,
    select, write; returns (result, run_dir)."""
    from common.benchmarks import load_tasks
    from common.models import check_adapter_dir, resolve_model
    from common.results import results_root
    from common.runtime import lazy_llm, model_info
    bench = math_bench(bench_name)
    params = math_sampling(args, bench, args.format)
    if params.n < 2 or params.temperature == 0:
        raise InputError("test-time sampling needs --n-samples >= 2 and --temperature > 0")
    if args.greedy_run and args.no_greedy:
        raise InputError("--greedy-run and --no-greedy contradict each other")
    if args.ssd_k is not None and not (2 <= args.ssd_k <= params.n):
        raise InputError(f"--ssd-k must be in 2..--n-samples ({params.n}), got {args.ssd_k}")
    if getattr(args, "adapter", None):
        check_adapter_dir(args.adapter)
    tasks, dataset = load_tasks(bench_name, limit=args.limit, path=args.data_path)
    resolved = resolve_model(args.model)
    info = model_info(resolved, args)
    run_dir = Path(args.out_dir or results_root()) / (args.run_name or math_run_name(prefix, bench_name, args))
    res, _ = run_math_tts(script=script, argv=argv if argv is not None else sys.argv[1:],
                          args=vars(args), run_dir=run_dir, tasks=tasks, dataset=dataset, bench=bench,
                          fmt=args.format, params=params, model_info=info, get_llm=lazy_llm(resolved, args),
                          greedy_run=args.greedy_run, run_greedy=not args.no_greedy, ssd_k=args.ssd_k,
                          ssd_threshold_pp=args.ssd_threshold_pp, overwrite=args.overwrite,
                          progress=not args.quiet, kind=kind)
    return res, run_dir


def print_math_summary(res: dict, run_dir: Path) -> None:
    m = res["metrics"]
    s = res["sampling"]
    print(f"\n{res['bench']} · {res['model']['ref']} · {res['format']} · n={s['n']} T={s['temperature']} "
          f"top_p={s['top_p']} · {m['n_tasks']} tasks")
    for k, line in m["headline"].items():
        print(f"  {k}: {line}")
    print(format_table(m))
    if m.get("ssd_precondition"):
        print("  " + m["ssd_precondition"]["line"])
    print(f"  answer extraction: {m['extraction_counts']}\n  results: {run_dir}")


# --------------------------------------------------------------------------------------------
# 3. Figures (matplotlib, Agg)
# --------------------------------------------------------------------------------------------


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

