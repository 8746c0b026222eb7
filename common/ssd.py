"""Simple self-distillation (SSD, seed 003): the declared inputs, the held-out set, the
precondition numbers, the verdict's decision table and its justification, the round-2 gate, and
reuse of finished evaluation runs. Pure functions except :func:`heldout_set` and
:func:`evaluate_or_reuse` (which read benchmark files and run evaluations).

Decision table (:func:`decide`; constants in ``data/ssd_thresholds.json`` → ``precondition``):

=====================================================  =====================================
gap = pass@k − pass@1 at ``decision_k`` (pp)            verdict
=====================================================  =====================================
gap < threshold and pass@max_k < floor                   GO-OTHER (SFT-external)
gap < threshold and pass@1 >= ceiling                    GO-OTHER (do-nothing)
gap < threshold, a verifier exists                       GO-OTHER (GRPO)
gap < threshold, no verifier                             GO-OTHER (SFT-external)
gap >= threshold, verifier exists, pass@1 < pref. bound  GO-VERIFIER-AWARE-SSD
gap >= threshold otherwise                               GO-SSD
=====================================================  =====================================

Slices whose own gap is on the other side of the threshold are named (``slice_disagreement``)
and the verdict's ``scope`` lists the slices where the gap clears it.
"""
from __future__ import annotations

import json
from pathlib import Path

from common.results import REPO_ROOT, InputError

THRESHOLDS_DEFAULT = REPO_ROOT / "data" / "ssd_thresholds.json"
REQUIRED_INPUTS = ("model", "task_family", "heldout", "budget", "comparator", "failure_cost")
HELDOUT_REQUIRED = ("sets", "n", "contamination_log")
VERDICTS = ("GO-SSD", "GO-VERIFIER-AWARE-SSD", "GO-OTHER")
OTHERS = ("SFT-external", "DPO", "GRPO", "do-nothing")
ARMS = ("minimal", "verifier")


# --------------------------------------------------------------------------------------------
# Declared files
# --------------------------------------------------------------------------------------------


def load_json_file(path: str | Path, what: str) -> dict:
    p = Path(path)
    try:
        return json.loads(p.read_text())
    except OSError:
        raise InputError(f"{what} {p} not found") from None
    except ValueError as e:
        raise InputError(f"{what} {p} is not valid JSON: {e}") from None


def load_thresholds(path: str | Path | None = None) -> dict:
    """The pre-declared thresholds (``data/ssd_thresholds.json``), with their sha256 as ``_sha256``."""
    from common.results import file_sha256
    path = Path(path or THRESHOLDS_DEFAULT)
    th = load_json_file(path, "thresholds file")
    missing = [k for k in ("precondition", "battery", "round2_gate") if k not in th]
    if missing:
        raise InputError(f"thresholds file {path} lacks {', '.join(missing)}")
    return {**th, "_path": str(path), "_sha256": file_sha256(path)}


def missing_inputs(inputs: dict) -> list[str]:
    """Seed 003's required inputs absent (or empty) in ``inputs``, each by name; the held-out
    set also needs its sets (each with ``bench``) and its contamination log."""
    def empty(v):
        return v is None or (isinstance(v, (str, list, dict)) and not v)
    out = [k for k in REQUIRED_INPUTS if empty(inputs.get(k))]
    held = inputs.get("heldout")
    if isinstance(held, dict):
        out += [f"heldout.{k}" for k in HELDOUT_REQUIRED if empty(held.get(k))]
        for i, s in enumerate(held.get("sets") or []):
            if not isinstance(s, dict) or empty(s.get("bench")):
                out.append(f"heldout.sets[{i}].bench")
    elif held is not None and "heldout" not in out:
        out.append("heldout (must be an object with sets and contamination_log)")
    return out


def check_inputs(inputs: dict) -> None:
    """Refuse (InputError naming every missing field) unless all of seed 003's inputs are given."""
    miss = missing_inputs(inputs)
    if miss:
        raise InputError("seed 003 refuses a recipe without its inputs; missing: " + ", ".join(miss) +
                         " (declare them in --inputs FILE, e.g. data/ssd_inputs_qwen05b.json, or by flags)")


def merge_inputs(inputs: dict, overrides: dict) -> dict:
    """Flag values (not None) replace the file's fields; ``heldout.*`` keys set sub-fields."""
    out = json.loads(json.dumps(inputs))
    for key, value in overrides.items():
        if value is None:
            continue
        if key.startswith("heldout."):
            out.setdefault("heldout", {})[key.split(".", 1)[1]] = value
        else:
            out[key] = value
    return out


def check_declared_n(declared, loaded: int, limited: bool) -> None:
    """The declared held-out n must be the number of problems loaded (unless ``--limit`` cut them)."""
    if not limited and int(declared) != loaded:
        raise InputError(f"the inputs declare a held-out n of {declared} but its sets hold {loaded} problems; "
                         f"declare the n you measure")


def check_heldout_size(n: int, min_n: int, acknowledged: bool) -> str | None:
    """The seed's n >= ``min_n`` rule: refused below it unless acknowledged; returns the note the
    verdict carries (None when n is large enough)."""
    if n >= min_n:
        return None
    note = f"the held-out set has {n} problems, fewer than the {min_n} seed 003 asks for"
    if not acknowledged:
        raise InputError(note + "; enlarge it or pass --acknowledge-small-heldout (recorded in the verdict)")
    return note + "; acknowledged by --acknowledge-small-heldout"


# --------------------------------------------------------------------------------------------
# Held-out set
# --------------------------------------------------------------------------------------------


def heldout_set(sets: list[dict], limit: int | None = None) -> dict:
    """Load every declared held-out set (``{"bench", "path"?}``) with common.benchmarks.load_tasks;
    task ids must be distinct across sets. Returns ``{"parts": [(bench, tasks, info)], "n",
    "internal_overlap"}``: the 13-gram report of each later set against HumanEval when both are in."""
    from common.benchmarks import load_tasks
    from common.decontam import benchmark_index, decontamination_report
    parts, seen = [], set()
    for s in sets:
        tasks, info = load_tasks(s["bench"], limit=limit, path=s.get("path"))
        dup = [t["task_id"] for t in tasks if t["task_id"] in seen]
        if dup:
            raise InputError(f"held-out sets share task ids, e.g. {dup[:3]}")
        seen.update(t["task_id"] for t in tasks)
        parts.append((s["bench"], tasks, info))
    overlap = {}
    he = [p for p in parts if p[0] == "humaneval"]
    if he:
        index = benchmark_index(he[0][1])
        for bench, tasks, _ in parts:
            if bench != "humaneval":
                overlap[bench] = decontamination_report(
                    {t["task_id"]: t["prompt"] + t.get("canonical_solution", "") for t in tasks}, index)
    return {"parts": parts, "n": sum(len(p[1]) for p in parts), "internal_overlap": overlap}


def heldout_index(parts) -> dict:
    """The 13-gram index over every held-out task (prompt + canonical solution): what an SSD
    prompt pool is decontaminated against."""
    from common.decontam import benchmark_index
    return benchmark_index([t for _, tasks, _ in parts for t in tasks])


def describe_heldout(held: dict) -> str:
    """One sentence: how the held-out set was built."""
    names = " + ".join(f"{b} ({len(t)})" for b, t, _ in held["parts"])
    return f"{held['n']} problems: {names}"


# --------------------------------------------------------------------------------------------
# Finished evaluations: read instead of redoing
# --------------------------------------------------------------------------------------------


def finished_run(run_dir: Path, config: dict) -> bool:
    """True when ``run_dir`` holds a finished evaluation (config.json equal to ``config``, a
    result.json, every sample scored)."""
    run_dir = Path(run_dir)
    try:
        old = json.loads((run_dir / "config.json").read_text())
    except (OSError, ValueError):
        return False
    if old != json.loads(json.dumps(config)) or not (run_dir / "result.json").is_file():
        return False
    from common.results import read_jsonl
    rows = read_jsonl(run_dir / "samples.jsonl", "samples file")
    n = config["sampling"]["n"] * len(config["task_ids"])
    return len(rows) == n and all("passed" in r for r in rows)


def evaluate_or_reuse(job, candidates=()) -> tuple[Path, bool]:
    """Run ``job`` (a common.evaluation.EvalJob) unless a finished run with its exact
    configuration exists among ``candidates`` or at ``job.run_dir``; a candidate with the same
    configuration but unfinished is resumed in place. Returns (run directory used, reused)."""
    import dataclasses
    from common.evaluation import evaluate_code
    cfg = job.config()
    for d in [Path(c) for c in candidates] + [Path(job.run_dir)]:
        if finished_run(d, cfg):
            return d, True
    for d in (Path(c) for c in candidates):
        if (d / "config.json").is_file() and json.loads((d / "config.json").read_text()) == json.loads(json.dumps(cfg)):
            job = dataclasses.replace(job, run_dir=d)
            break
    evaluate_code(job)
    return Path(job.run_dir), False


def outcomes_of(run_dir: Path) -> dict[str, list[bool]]:
    """task_id -> per-sample verdicts (sample order) of a scored samples.jsonl."""
    from collections import defaultdict

    from common.evaluation import load_scored_samples
    out = defaultdict(list)
    for r in sorted(load_scored_samples(Path(run_dir) / "samples.jsonl"),
                    key=lambda r: (r["task_id"], r.get("sample_index", 0))):
        out[r["task_id"]].append(bool(r["passed"]))
    return dict(out)


# --------------------------------------------------------------------------------------------
# Precondition numbers, verdict, justification
# --------------------------------------------------------------------------------------------


def precondition_numbers(outcomes: dict, pre: dict, seed: int = 0) -> dict:
    """pass@1 and pass@k (k in ``pre["ks"]``) with intervals, overall and per difficulty slice,
    and the gap per k (common.tts_summary.ssd_precondition). ``outcomes``: base verdicts per task."""
    from common.metrics import difficulty_slices, pass_at_k_summary
    from common.tts_summary import ssd_precondition
    ks = [int(k) for k in pre["ks"]]
    n_min = min(len(v) for v in outcomes.values())
    if n_min < max(ks):
        raise InputError(f"pass@{max(ks)} needs >= {max(ks)} samples per problem; the smallest task has {n_min}")
    th = tuple(pre["difficulty_thresholds"])
    by_k = {}
    for k in ks:
        r = ssd_precondition(outcomes, k=k, threshold_pp=pre["gap_threshold_pp"], thresholds=th, seed=seed)
        r.pop("per_task")
        by_k[str(k)] = r
    return {"n_tasks": len(outcomes), "n_samples_min": n_min,
            "pass_at_k": pass_at_k_summary(outcomes, [1] + ks, seed=seed),
            "slices": difficulty_slices(outcomes, [1] + ks, th, seed=seed), "by_k": by_k}


def decide(numbers: dict, pre: dict, verifier_available: bool) -> dict:
    """The verdict from the precondition numbers (module docstring's table)."""
    k = int(pre["decision_k"])
    thr = float(pre["gap_threshold_pp"])
    row = numbers["by_k"][str(k)]
    gap, p1 = row["overall"]["gap_pp"], row["overall"]["pass@1"]
    p_max = numbers["pass_at_k"][f"pass@{max(int(x) for x in pre['ks'])}"]["mean"]
    go = gap >= thr - 1e-9
    slices = {s: b for s, b in row["slices"].items() if b["n_tasks"]}
    scope = [s for s, b in slices.items() if b["gap_pp"] >= thr - 1e-9]
    disagree = [s for s, b in slices.items() if (b["gap_pp"] >= thr - 1e-9) != go]
    other, reason = None, ""
    if not go:
        verdict = "GO-OTHER"
        if p_max < pre["floor_pass_at_max_k"]:
            other, reason = "SFT-external", "the model rarely samples a correct answer at all (pass@max_k below the floor)"
        elif p1 >= pre["ceiling_pass_at_1"]:
            other, reason = "do-nothing", "pass@1 is already at the ceiling"
        elif verifier_available:
            other, reason = "GRPO", "the gap is small and tests exist: RL with the verifier can look for a new policy"
        else:
            other, reason = "SFT-external", "the gap is small and no verifier exists: the model needs new knowledge"
    elif verifier_available and p1 < pre["verifier_preferred_below_pass_at_1"]:
        verdict = "GO-VERIFIER-AWARE-SSD"
        reason = "the gap clears the threshold but most raw samples are wrong (pass@1 below the bound), and tests exist"
    else:
        verdict = "GO-SSD"
        reason = "the gap clears the threshold" + ("" if not verifier_available else
                                                   "; the verifier-aware arm runs beside it as a separate arm")
    return {"verdict": verdict, "other": other, "label": f"{verdict} ({other})" if other else verdict,
            "reason": reason, "decision_k": k, "gap_pp": gap, "gap_ci_pp": list(row["overall"]["gap_ci_pp"]),
            "robust": bool(go and row["overall"]["gap_ci_pp"][0] >= thr - 1e-9), "threshold_pp": thr,
            "pass@1": p1, f"pass@{k}": row["overall"][f"pass@{k}"], "scope": scope, "slice_disagreement": disagree,
            "verifier_available": verifier_available}


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def justification(v: dict, numbers: dict, heldout_text: str, small_note: str | None) -> str:
    """The one-paragraph justification of a verdict, anchored on the SSD hypothesis and built
    from the numbers only."""
    k = v["decision_k"]
    pk = numbers["pass_at_k"]
    ci = lambda key: f"[{_pct(pk[key]['ci'][0])}, {_pct(pk[key]['ci'][1])}]"
    s = [f"SSD bets that the base model already samples correct completions it does not concentrate on. "
         f"On the held-out set ({heldout_text}), pass@1 is {_pct(pk['pass@1']['mean'])} {ci('pass@1')} and "
         f"pass@{k} is {_pct(pk[f'pass@{k}']['mean'])} {ci(f'pass@{k}')} (unbiased estimator, "
         f"{numbers['n_samples_min']}+ samples per problem), a gap of {v['gap_pp']:.1f} pp "
         f"[{v['gap_ci_pp'][0]:.1f}, {v['gap_ci_pp'][1]:.1f}] against the declared {v['threshold_pp']:g} pp."]
    s.append(f"Verdict {v['label']}: {v['reason']}.")
    if v["verdict"] != "GO-OTHER" and not v["robust"]:
        s.append("The gap's interval reaches below the threshold, so the hypothesis holds on the point estimate only.")
    if v["slice_disagreement"]:
        row = numbers["by_k"][str(k)]["slices"]
        s.append("Slices disagree with the overall call: " + "; ".join(
            f"{sl} {row[sl]['gap_pp']:.1f} pp (n={row[sl]['n_tasks']})" for sl in v["slice_disagreement"]) +
            (f"; SSD is expected to help on {', '.join(v['scope'])} only." if v["scope"] else "."))
    if small_note:
        s.append(f"Caveat: {small_note}.")
    return " ".join(s)


# --------------------------------------------------------------------------------------------
# Round-2 gate
# --------------------------------------------------------------------------------------------


def round2_gate(arm: str, evaluation: dict | None, battery: dict | None, gate: dict) -> dict:
    """Seed 003's gate before a second round for ``arm``: held-out greedy pass@1 lift >=
    ``min_lift_pp`` with non-overlapping intervals against the base, and every battery probe within
    its tolerance. ``evaluation``: evals/ssd_eval.py's result; ``battery``: evals/ssd_battery.py's.
    Returns ``{"passed", "conditions": [{"name", "ok", "detail"}]}``; a missing input fails its condition."""
    conds = []
    ent = ((evaluation or {}).get("arms") or {}).get(arm, {}).get("greedy")
    if ent is None:
        conds.append({"name": "lift", "ok": False, "detail": f"no held-out evaluation of arm {arm!r}"})
        conds.append({"name": "non_overlapping_ci", "ok": False, "detail": "no evaluation"})
    else:
        d = 100 * ent["comparison"]["delta"]
        conds.append({"name": "lift", "ok": d >= gate["min_lift_pp"] - 1e-9,
                      "detail": f"greedy pass@1 delta {d:+.1f} pp vs threshold {gate['min_lift_pp']:g} pp"})
        base_hi, arm_lo = ent["base_pass@1"]["ci"][1], ent["pass@1"]["ci"][0]
        ok = (arm_lo > base_hi) if gate.get("require_non_overlapping_ci", True) else True
        conds.append({"name": "non_overlapping_ci", "ok": ok,
                      "detail": f"arm CI low {_pct(arm_lo)} vs base CI high {_pct(base_hi)}"})
    arm_b = ((battery or {}).get("arms") or {}).get(arm)
    if gate.get("require_battery_within", True):
        if arm_b is None:
            conds.append({"name": "battery", "ok": False, "detail": f"no battery result for arm {arm!r}"})
        else:
            conds.append({"name": "battery", "ok": bool(arm_b["all_within"]),
                          "detail": "alerts: " + (", ".join(arm_b["alerts"]) or "none")})
    return {"arm": arm, "passed": all(c["ok"] for c in conds), "conditions": conds, "thresholds": gate}


# --------------------------------------------------------------------------------------------
# Arms to evaluate
# --------------------------------------------------------------------------------------------


def add_arm_args(g) -> None:
    """--ssd-run, --arms and --thresholds, as the scripts that judge SSD arms spell them."""
    g.add_argument("--ssd-run", default=None, help="recipe/ssd.py run directory (its trained arms)")
    g.add_argument("--arms", default=None, help="ARM=ADAPTER_DIR,... (ARM: minimal, verifier) instead of or "
                                                "besides --ssd-run's arms")
    g.add_argument("--thresholds", default=None, help="thresholds file (default data/ssd_thresholds.json)")


def arm_adapters(ssd_run: str | None, arms_text: str | None) -> dict:
    """``{"base": None, arm: adapter dir, ...}``: the trained arms of a recipe/ssd.py run and/or
    ``--arms minimal=DIR,verifier=DIR`` (ARM in :data:`ARMS`); none at all is an InputError."""
    arms = {}
    if ssd_run:
        res = load_json_file(Path(ssd_run) / "result.json", "SSD run result")
        arms.update({a: e["adapter"] for a, e in res.get("arms", {}).items() if e.get("adapter")})
    for item in (arms_text or "").split(","):
        if item.strip():
            name, _, path = item.partition("=")
            if name.strip() not in ARMS or not path.strip():
                raise InputError(f"--arms takes ARM=ADAPTER_DIR with ARM in {', '.join(ARMS)}, got {item!r}")
            arms[name.strip()] = path.strip()
    if not arms:
        raise InputError("no SSD arm to evaluate: give --ssd-run with trained arms or --arms")
    return {"base": None, **arms}
