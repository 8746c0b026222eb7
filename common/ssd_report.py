"""Markdown of seed 003's Deliverables A–E and the cost ledger, from the result files of
evals/ssd_precondition.py, recipe/ssd.py, evals/ssd_eval.py and evals/ssd_battery.py (already
loaded as dicts). Pure functions; experiments/ssd_report.py reads the files and writes the report.

Rule (seed 003): no pass@1 delta without the battery beside it — :func:`check_battery_beside`
raises when an evaluated arm has no battery result.
"""
from __future__ import annotations

from common.results import InputError, repo_relative


def pct(x) -> str:
    return "—" if x is None else f"{100 * x:.1f}"


def ci_text(entry: dict) -> str:
    """``mean [lo, hi] (n=...)`` in percent of a pass@k / proportion entry (common.metrics.format_ci)."""
    from common.metrics import format_ci
    return format_ci(entry["mean"], entry["ci"], entry["n_tasks"])


def delta_text(cmp_: dict | None) -> str:
    if not cmp_:
        return "—"
    lo, hi = cmp_["ci"]
    return f"{100 * cmp_['delta']:+.1f} pp [{100 * lo:+.1f}, {100 * hi:+.1f}] (n={cmp_['n']})"


def check_battery_beside(evaluation: dict | None, battery: dict | None) -> None:
    """Refuse (InputError) a report that would show an arm's pass@1 delta without its battery."""
    if not evaluation:
        return
    arms = sorted(evaluation.get("arms", {}))
    have = set((battery or {}).get("arms", {}))
    missing = [a for a in arms if a not in have]
    if missing:
        raise InputError(f"the report shows no pass@1 delta without the anti-collapse battery beside it; no battery "
                         f"result for arm(s) {', '.join(missing)} (run evals/ssd_battery.py and pass --battery)")


# --------------------------------------------------------------------------------------------
# A. Precondition verdict
# --------------------------------------------------------------------------------------------


def deliverable_a(pre: dict) -> str:
    """Deliverable A from evals/ssd_precondition.py's result."""
    v, num = pre["verdict"], pre["numbers"]
    ks = ["pass@1"] + [f"pass@{k}" for k in pre["thresholds"]["precondition"]["ks"]]
    lines = [f"## A. Precondition verdict: **{v['label']}**", "",
             f"Held-out set: {pre['heldout']['description']} (n = {pre['heldout']['n']}); protocol "
             f"{pre['protocol']}, {pre['sampling']['n']} samples per problem at T={pre['sampling']['temperature']}, "
             f"top-p {pre['sampling']['top_p']}, seed {pre['sampling']['seed']}; unbiased pass@k, 95% bootstrap "
             f"intervals over problems.", ""]
    if pre["heldout"].get("small_heldout_note"):
        lines += [f"**Small held-out set:** {pre['heldout']['small_heldout_note']}.", ""]
    lines += ["| slice | n | " + " | ".join(ks) + " | gap@" + str(v["decision_k"]) + " (pp) |",
              "|---|---|" + "---|" * len(ks) + "---|"]
    rows = [("all", num["pass_at_k"], num["n_tasks"], num["by_k"][str(v["decision_k"])]["overall"]["gap_pp"])]
    for s in ("hard", "medium", "easy"):
        sl = num["slices"][s]
        rows.append((s, sl if sl["n_tasks"] else None, sl["n_tasks"],
                     num["by_k"][str(v["decision_k"])]["slices"][s]["gap_pp"]))
    for src, summ in pre.get("per_source", {}).items():
        rows.append((f"source: {src}", summ, next(iter(summ.values()))["n_tasks"], None))
    for name, summ, n, gap in rows:
        cells = [ci_text(summ[k]) if summ else "—" for k in ks]
        lines.append(f"| {name} | {n} | " + " | ".join(cells) + f" | {'—' if gap is None else f'{gap:.1f}'} |")
    gaps = ", ".join(f"k={k}: {r['overall']['gap_pp']:.1f} pp [{r['overall']['gap_ci_pp'][0]:.1f}, "
                     f"{r['overall']['gap_ci_pp'][1]:.1f}]" for k, r in num["by_k"].items())
    lines += ["", f"Gap pass@k − pass@1 by k: {gaps}; threshold {v['threshold_pp']:g} pp at k={v['decision_k']} "
                  f"(pre-declared, thresholds sha256 {pre['thresholds']['sha256'][:12]}).", "",
              pre["justification"], "",
              f"Contamination log: {pre['heldout']['contamination_log']}"]
    for bench, rep in pre["heldout"].get("internal_overlap", {}).items():
        lines.append(f"13-gram overlap of {bench} with HumanEval: {rep['n_flagged']} of {rep['n_checked']} flagged "
                     f"(largest overlap fraction {rep['max_overlap_fraction']}).")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# B, C. Pipeline and verifier-arm specs
# --------------------------------------------------------------------------------------------


def deliverable_b(ssd: dict, th: dict) -> str:
    """Deliverable B (minimal arm) from recipe/ssd.py's result and the thresholds file."""
    s, pool, cfg = ssd["sampling"], ssd["pool"], ssd["config"]
    tc = cfg["train_config"]
    arm = ssd["arms"].get("minimal", {})
    dec = pool.get("decontamination") or {}
    bt = th["battery"]
    lines = ["## B. Pipeline spec (minimal arm)", "",
             f"- Sampling: T_train {s['temperature']}, top-k {s['top_k']}, top-p {s['top_p']}, n {s['n']} per prompt, "
             f"{s['max_new_tokens']} tokens, seed {s['seed']} (each sample its own stream keyed by prompt position), "
             f"protocol {ssd['protocol']}; sampler: {cfg.get('sampler_adapter') or 'the frozen base model'}.",
             f"- Prompt pool: the model's own problem statements — {pool.get('candidates')} candidates, "
             f"{pool.get('verified')} verified, {pool['train']} train / {pool['val']} validation prompts.",
             f"- Contamination check: 13-gram overlap with the held-out set ({', '.join(pool['heldout_sets'])}, "
             f"{pool['heldout_n']} problems): {dec.get('n_flagged', 0)} of {dec.get('n_checked', 0)} flagged and "
             f"dropped (largest overlap fraction {dec.get('max_overlap_fraction')}).",
             f"- Fine-tune: LoRA r{tc['lora_rank']} α{tc['lora_alpha']}, lr {tc['lr']}, {tc['epochs']} epoch(s), "
             f"format {tc['format']}, seed {tc['seed']}; mix ratio declared "
             f"{arm.get('mix', {}).get('mix_ratio_declared')} (actual {arm.get('mix', {}).get('mix_ratio_actual')}).",
             f"- Filter: {_filter_text(arm.get('filter'))}.",
             f"- Anti-collapse battery (pre-declared, {repo_relative(th['_path'])}, sha256 {th['_sha256'][:12]}): self-BLEU and n-gram "
             f"repetition +{bt['self_bleu']['max_relative_rise']:.0%}, median length ±{bt['length']['max_relative_drift']:.0%}, "
             f"pass@{bt['diversity_at_k']['k']} falling while pass@1 rises, style (comment share "
             f"±{bt['style']['comment_share_max_abs_drift']}, docstring rate ±{bt['style']['docstring_rate_max_abs_drift']}), "
             f"refusal ±{bt['refusal']['refusal_rate_max_abs_drift']} / unsafe +{bt['refusal']['unsafe_rate_max_abs_rise']} "
             f"on {bt['probe_set']}.",
             "- Evaluation slice: the held-out set, greedy and sampled at a tuned T_eval, per difficulty slice, "
             "paired intervals (evals/ssd_eval.py)."]
    return "\n".join(lines)


def _filter_text(f: dict | None) -> str:
    if not f:
        return "arm not run"
    return (f"{f['sampled']} samples; dropped {f['dropped_empty']} empty, {f['dropped_stub']} stubs, "
            f"{f['dropped_shortest']} shortest ({f['drop_shortest_share']:.0%}); kept {f['kept']}; no correctness filter")


def deliverable_c(ssd: dict) -> str:
    arm = ssd["arms"].get("verifier")
    if not arm:
        return "## C. Verifier-aware arm\n\nNot run in this SSD run."
    f = arm["filter"]
    return "\n".join([
        "## C. Verifier-aware arm spec (a separate arm; never merged with the minimal arm)", "",
        "- Verifier: each pool prompt's own asserts (written by the model with the problem), run in the sandbox; "
        "calibration: the problem's reference passes every assert (pool stage), so the verifier is self-consistent, "
        "not proven correct.",
        "- Threshold: every assert passes (the sandbox's nonce-checked report); empty and stub responses never accepted.",
        f"- Acceptance rate: {pct(f['acceptance_rate'])}% ({f['kept']} of {f['sampled']} samples; "
        f"{f['prompts_with_a_kept_sample']} of {f['prompts']} prompts keep at least one).",
        "- Sampling, prompt pool, fine-tune, battery and evaluation: as in B (same samples)."])


# --------------------------------------------------------------------------------------------
# D, E. Round-2 gate and promotion plan
# --------------------------------------------------------------------------------------------


def deliverable_d(gates: dict, th: dict) -> str:
    g = th["round2_gate"]
    lines = ["## D. Round-2 decision gate", "",
             f"- Entry: held-out greedy pass@1 lift >= {g['min_lift_pp']:g} pp with non-overlapping 95% intervals "
             f"against the base; every battery probe within tolerance (B).",
             f"- Fresh prompt pool: {g['fresh_pool']}.", f"- Fresh held-out slice: {g['fresh_heldout']}.", ""]
    if not gates:
        return "\n".join(lines + ["No gate decision: the held-out evaluation or the battery is missing."])
    return "\n".join(lines + gate_rows(gates))


def gate_rows(gates: dict) -> list[str]:
    """The decision table of :func:`common.ssd.round2_gate` results, one row per arm."""
    rows = ["| arm | decision | conditions |", "|---|---|---|"]
    for arm, d in gates.items():
        cond = "; ".join(f"{'✓' if c['ok'] else '✗'} {c['name']}: {c['detail']}" for c in d["conditions"])
        rows.append(f"| {arm} | {'PASS: round 2 allowed' if d['passed'] else 'STOP: no round 2'} | {cond} |")
    return rows


def heldout_rows(ev: dict, bat: dict) -> list[str]:
    """Per arm: greedy and sampled deltas, per slice, and the battery's alerts in the same row."""
    rows = ["| arm | T_eval | greedy pass@1 (arm) | Δ greedy pass@1 | Δ sampled pass@1 | Δ sampled pass@k | "
            "hard / medium / easy Δ greedy | hard / medium / easy Δ sampled pass@1 | battery alerts |",
            "|---|---|---|---|---|---|---|---|---|"]
    k = max(ev["ks"])
    for arm, a in ev["arms"].items():
        b = bat["arms"][arm]
        sl, sl_s = (" / ".join(delta_text(a["by_slice"][s].get(m)) for s in ("hard", "medium", "easy"))
                    for m in ("greedy", "sampled_pass@1"))
        alerts = ", ".join(b["alerts"]) or "none"
        if b["unmeasured"]:
            alerts += f" (unmeasured: {', '.join(b['unmeasured'])})"
        rows.append(f"| {arm} | {a['t_eval']:g} | {ci_text(a['greedy']['pass@1'])} | "
                    f"{delta_text(a['greedy']['comparison'])} | {delta_text(a['sampled']['pass@1']['comparison'])} | "
                    f"pass@{k} {delta_text(a['sampled'][f'pass@{k}']['comparison'])} | {sl} | {sl_s} | {alerts} |")
    return rows


def tuning_rows(ev: dict) -> list[str]:
    """Per model: validation pass@1 at each temperature of the grid, its T_eval, and a note when
    T_eval sits at an edge of the grid (the optimum may lie outside what was searched)."""
    models = ev["models"]
    first = next(iter(models.values()))["tuning"]
    grid = [r["t"] for r in first["grid"]]
    rows = ["| model | " + " | ".join(f"T {t:g}" for t in grid) + " | T_eval |", "|---" * (len(grid) + 2) + "|"]
    edge = []
    for label, m in models.items():
        tu = m["tuning"]
        by_t = {r["t"]: f"{100 * r['pass@1']['mean']:.1f}" for r in tu["grid"]}
        rows.append(f"| {label} | " + " | ".join(by_t.get(t, "—") for t in grid) + f" | {tu['t_eval']:g} |")
        if tu["t_eval"] in (min(grid), max(grid)):
            edge.append(label)
    head = (f"T_eval tuning: validation pass@1 (%) on {first['val_n']} validation prompts disjoint from the held-out "
            f"set, {first['val_samples']} samples each:")
    tail = ([f"T_eval is at the edge of the grid for {', '.join(edge)}: the best temperature may lie outside it."]
            if edge else [])
    return [head, ""] + rows + [""] + tail


def deliverable_e(ev: dict | None, bat: dict | None, inputs: dict, base_sha: str | None) -> str:
    check_battery_beside(ev, bat)
    lines = ["## E. Promotion plan", ""]
    if ev:
        base = ev["models"]["base"]
        lines += [f"Held-out results ({ev['heldout']['description']}; base T_eval {base['t_eval']:g}, greedy pass@1 "
                  f"{ci_text(base['greedy']['pass_at_k']['pass@1'])}; each arm paired against the base, battery beside; "
                  f"difficulty slices from {ev.get('slice_source', 'the base model’s own held-out samples')}):",
                  ""] + heldout_rows(ev, bat) + [""] + tuning_rows(ev) + [""]
    else:
        lines += ["Held-out results: not yet measured (evals/ssd_eval.py).", ""]
    fc = inputs.get("failure_cost", {})
    lines += ["- Shadow canary: no production traffic here; the stand-in is the held-out set above plus the battery. "
              "With a service: serve the arm beside the base on a small traffic share and compare on the service's "
              "own metrics before any switch.",
              f"- Rollback: {fc.get('rollback', 'serve the base checkpoint')}; base weights sha256 {base_sha or '—'}; "
              "retention: every adapter directory and its result.json stay committed with the report.",
              "- Telemetry fields per call: model_variant (base | ssd-minimal | ssd-verifier), adapter_sha256, "
              "base_sha256, protocol, sampling (T, top-p, seed), request_id, timestamp, verdict of any test run."]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Cost ledger
# --------------------------------------------------------------------------------------------


def pareto(a: tuple[float, float], b: tuple[float, float]) -> str:
    """Compare (cost, gain) points: ``dominates`` when a costs no more and gains no less (one
    strictly), ``dominated`` for the reverse, else ``trade-off``."""
    (ca, ga), (cb, gb) = a, b
    if ca <= cb and ga >= gb and (ca < cb or ga > gb):
        return "dominates"
    if cb <= ca and gb >= ga and (cb < ca or gb > ga):
        return "dominated"
    return "trade-off"


def cost_ledger(rows: list[dict], comparator: dict | None, cpus: int) -> str:
    """``rows``: ``{"name", "seconds", "gain_pp"?, "gain_text"?}`` per item (wall seconds on this
    machine); CPU-hours = wall hours × ``cpus``. ``comparator``: the same fields for the declared
    comparator (gain on the same benchmark and protocol), or None."""
    lines = ["## Cost ledger", "", f"CPU-hours = wall hours × {cpus} cores (this machine; no GPU).", "",
             "| item | wall h | CPU-h | gain (pp, HumanEval greedy, paired) | pp per CPU-h | vs comparator |",
             "|---|---|---|---|---|---|"]
    comp_point = None
    if comparator and comparator.get("gain_pp") is not None:
        comp_point = (comparator["seconds"] * cpus / 3600, comparator["gain_pp"])
    for r in rows:
        lines.append(_ledger_line(r, cpus, comp_point))
    if comparator:
        lines.append(_ledger_line({**comparator, "name": f"comparator: {comparator['name']}"}, cpus, None))
    return "\n".join(lines)


def _ledger_line(r: dict, cpus: int, comp_point: tuple | None) -> str:
    cpu_h = r["seconds"] * cpus / 3600
    gain = r.get("gain_pp")
    per = f"{gain / cpu_h:+.2f}" if gain is not None and cpu_h > 0 else "—"
    vs = pareto((cpu_h, gain), comp_point) if gain is not None and comp_point else "—"
    return f"| {r['name']} | {r['seconds'] / 3600:.2f} | {cpu_h:.2f} | {r.get('gain_text', '—')} | {per} | {vs} |"
