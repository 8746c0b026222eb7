"""SSD report (issue 17; seed 003 Deliverables A–E and the cost ledger) generated from the result
files: the precondition verdict, the pipeline spec, the verifier arm's spec with its acceptance
rate, the round-2 gate with its threshold and decision per arm, the promotion plan with the
held-out results, and the cost ledger in CPU-hours with accuracy per CPU-hour and the Pareto
comparison against the declared comparator (the repair-pair recipe's adapter).

Not a PAPER.md claim: seed 003's deliverables for the embedded 0.5B model.

Refuses to show any arm's pass@1 delta without that arm's battery result beside it.

Full command:
    python experiments/ssd_report.py --inputs data/ssd_inputs_qwen05b.json \\
        --precondition results/ssd_precondition_qwen05b --ssd-run results/ssd_qwen05b \\
        --eval results/ssd_eval_qwen05b --battery results/ssd_battery_qwen05b --run-name ssd_report_qwen05b
Quick command: the same with the quick runs' directories (seconds; no model is loaded).

Writes results/<run>/report.md and results/<run>/report.json (every number it shows, the round-2
gate decisions, the ledger rows, the input files with their sha256). Any section whose result
file is not given says so instead of guessing.

Deviations from seed 003: no dollar cost (a CPU machine we do not rent) and no shadow canary (no
traffic); CPU-hours are wall hours × cores of the machine that ran them; the Pareto comparison is
on HumanEval only under the evaluation's protocol, because the comparator adapter was trained on
repair pairs mined on the 42 other held-out problems.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--inputs", required=True, help="declared inputs (data/ssd_inputs_qwen05b.json): the comparator")
    p.add_argument("--precondition", default=None, help="evals/ssd_precondition.py run directory")
    p.add_argument("--ssd-run", default=None, help="recipe/ssd.py run directory (round 1)")
    p.add_argument("--eval", default=None, help="evals/ssd_eval.py run directory")
    p.add_argument("--battery", default=None, help="evals/ssd_battery.py run directory")
    p.add_argument("--round2", default=None, help="recipe/ssd.py round-2 run directory, if any")
    p.add_argument("--thresholds", default=None, help="thresholds file (default data/ssd_thresholds.json)")
    p.add_argument("--run-name", default="ssd_report", help="results/<run-name>/ (default ssd_report)")
    p.add_argument("--out-dir", default=None, help="results root (default ./results or $SELFIMPROVE_RESULTS)")
    from common.cli import accept_seed_spellings
    accept_seed_spellings(p)
    return p


def main(argv=None) -> int:
    from common.cli import run_main
    return run_main(_main, argv)


def _read(d: str | None, what: str) -> dict | None:
    from common.ssd import load_json_file
    return load_json_file(Path(d) / "result.json", what) if d else None


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    from common.evaluation import Invocation
    from common.results import file_sha256, results_root, write_json_atomic
    from common.ssd import load_json_file, load_thresholds, round2_gate
    from common.ssd_report import check_battery_beside
    inputs = load_json_file(args.inputs, "inputs file")
    th = load_thresholds(args.thresholds)
    pre, ssd = _read(args.precondition, "precondition result"), _read(args.ssd_run, "SSD run result")
    ev, bat = _read(args.eval, "SSD evaluation result"), _read(args.battery, "battery result")
    r2 = _read(args.round2, "round-2 result")
    check_battery_beside(ev, bat)
    gates = {arm: round2_gate(arm, ev, bat, th["round2_gate"]) for arm in (ev or {}).get("arms", {})} if bat else {}
    ledger, ledger_rows, comp = ledger_stage(inputs, pre, ssd, ev, bat)
    declared = predeclared(th, ssd)
    md = render(inputs, th, {"pre": pre, "ssd": ssd, "ev": ev, "bat": bat, "r2": r2}, gates,
                ledger + "\n\n" + declared["text"])
    out = Path(args.out_dir or results_root()) / args.run_name
    provenance = Invocation(__file__, argv, vars(args)).provenance()  # before report.md changes the tree
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text(md + "\n")
    files = {k: v for k, v in (("precondition", args.precondition), ("ssd_run", args.ssd_run), ("eval", args.eval),
                               ("battery", args.battery), ("round2", args.round2)) if v}
    write_json_atomic(out / "report.json", {
        **provenance,
        "inputs": {"path": args.inputs, "sha256": file_sha256(args.inputs)},
        "thresholds": {"path": th["_path"], "sha256": th["_sha256"]}, "result_dirs": files,
        "verdict": pre["verdict"] if pre else None, "round2_gates": gates, "thresholds_predeclared": declared,
        "arms": {a: {k: e[k] for k in ("t_eval", "greedy", "sampled", "by_slice")} for a, e in (ev or {}).get("arms", {}).items()},
        "battery": (bat or {}).get("arms"), "ledger": ledger_rows, "comparator": comp})
    print(md)
    print(f"\nreport: {out / 'report.md'}")
    return 0


def render(inputs: dict, th: dict, res: dict, gates: dict, ledger: str) -> str:
    """The report's markdown; ``res``: the loaded results (pre, ssd, ev, bat, r2; None when absent)."""
    pre, ssd, ev, bat, r2 = (res[k] for k in ("pre", "ssd", "ev", "bat", "r2"))
    from common.ssd_report import deliverable_a, deliverable_b, deliverable_c, deliverable_d, deliverable_e
    model = inputs.get("model", {})
    parts = [f"# Simple self-distillation on {model.get('name', '?')}: seed 003 deliverables", "",
             "Generated by experiments/ssd_report.py from the result files named in report.json; every pass@1 "
             "delta below sits beside its anti-collapse battery.", ""]
    parts.append(deliverable_a(pre) if pre else "## A. Precondition verdict\n\nNot measured yet (evals/ssd_precondition.py).")
    parts += ["", deliverable_b(ssd, th) if ssd else "## B. Pipeline spec\n\nNo SSD run yet (recipe/ssd.py).", ""]
    parts += [deliverable_c(ssd) if ssd else "## C. Verifier-aware arm\n\nNo SSD run yet.", ""]
    parts += [deliverable_d(gates, th), ""]
    if r2:
        parts += [f"Round 2 ran (gate passed for arm {r2['config'].get('sampler_adapter')}); evaluate it on a fresh "
                  "held-out slice before any claim.", ""]
    base_sha = ((ssd or {}).get("config", {}).get("model") or {}).get("file_sha256")
    parts += [deliverable_e(ev, bat, inputs, base_sha), "", ledger]
    return "\n".join(parts)


def predeclared(th: dict, ssd: dict | None) -> dict:
    """Issue 17 acceptance 2, checked: the SSD run trained under the thresholds file as it is now
    (same sha256), and the commit that added the file is an ancestor of (or is) the commit the SSD
    run was trained at, with no uncommitted change to tracked files then."""
    import subprocess
    from common.results import REPO_ROOT, repo_relative
    if not ssd:
        return {"ok": None, "text": "Thresholds pre-declaration: no SSD run to check."}

    def git(*a):
        return subprocess.run(["git", *a], cwd=REPO_ROOT, capture_output=True, text=True, timeout=30)
    rel = repo_relative(th["_path"])
    added = git("log", "--diff-filter=A", "--format=%H", "--", rel).stdout.split()
    run_commit, dirty = (ssd.get("git") or {}).get("commit"), (ssd.get("git") or {}).get("dirty")
    same = (ssd.get("thresholds") or {}).get("sha256") == th["_sha256"]
    before = bool(added and run_commit and git("merge-base", "--is-ancestor", added[-1], run_commit).returncode == 0)
    ok = same and before and not dirty
    text = (f"Thresholds pre-declaration (issue 17 acceptance 2): {'PASS' if ok else 'NOT SHOWN'} — file sha256 "
            f"{'unchanged since training' if same else 'differs from (or was not recorded by) the SSD run'}; added in "
            f"commit {added[-1][:12] if added else '(not committed)'}, SSD run trained at "
            f"{(run_commit or '?')[:12]}{' with uncommitted changes' if dirty else ''}.")
    return {"ok": ok, "same_sha256": same, "added_in": added[-1] if added else None, "ssd_run_commit": run_commit,
            "ssd_run_dirty": dirty, "text": text}


def run_seconds(res: dict) -> tuple[float, bool]:
    """Wall seconds of one evaluation run (generation over every invocation + scoring) and
    whether they are partly estimated: tasks generated by an invocation whose time was not
    recorded (``tasks_generated_untimed``) are costed at the timed tasks' rate (nothing when none
    was timed)."""
    t = res.get("timings") or {}
    gen = float(t.get("generation_s_all_invocations", t.get("generation_s", 0)) or 0)
    n, untimed = int((res.get("metrics") or {}).get("n_tasks") or 0), int(t.get("tasks_generated_untimed") or 0)
    estimated = untimed > 0
    if 0 < untimed < n:
        gen *= n / (n - untimed)
    return gen + float(t.get("scoring_s", 0) or 0), estimated


def dirs_seconds(dirs) -> tuple[float, bool]:
    """Summed :func:`run_seconds` of finished evaluation run directories; estimated if any is."""
    from common.ssd import load_json_file
    timed = [run_seconds(load_json_file(Path(d) / "result.json", "evaluation result")) for d in dirs]
    return sum(s for s, _ in timed), any(e for _, e in timed)


ESTIMATED = "untimed tasks of resumed runs costed at their run's timed rate"


def humaneval_gain(base_dir: str, other_dir: str) -> dict:
    """Paired HumanEval greedy comparison of two finished evaluation runs (common.compare)."""
    from common.compare import compare, task_outcomes
    return compare(task_outcomes(base_dir), task_outcomes(other_dir), "base", "other")


def ledger_stage(inputs, pre, ssd, ev, bat) -> tuple[str, list[dict], dict | None]:
    """The cost ledger's rows from the recorded timings, gains on HumanEval greedy (paired)."""
    from common.ssd_report import cost_ledger, delta_text
    rows = []
    if pre:
        secs, est = dirs_seconds(r["run_dir"] for r in pre["heldout"]["runs"].values())
        rows.append({"name": f"precondition sampling{f' ({ESTIMATED})' if est else ''}", "seconds": secs})
    if ssd:
        st = ssd["stages"]
        shared = sum(stage_seconds(st.get(k, {})) for k in ("pool/generate", "pool/verify", "sample"))
        gen = st.get("pool/generate", {})
        est = stage_seconds(gen) != gen.get("seconds", 0)
        for arm, a in ssd["arms"].items():
            secs = shared + st.get(f"filter/{arm}", {}).get("seconds", 0) + \
                   float(((a.get("training") or {}).get("timings") or {}).get("total_s", 0) or 0)
            row = {"name": f"SSD {arm} arm (pool + sampling + filter + training"
                           f"{'; pool generation estimated at its last invocation rate' if est else ''})", "seconds": secs}
            he = {m: (ev or {}).get("models", {}).get(m, {}).get("greedy", {}).get("runs", {}).get("humaneval")
                  for m in ("base", arm)}
            if all(he.values()):
                g = humaneval_gain(he["base"]["run_dir"], he[arm]["run_dir"])
                row.update(gain_pp=100 * g["delta"], gain_text=delta_text(g))
            elif ev:
                row["gain_text"] = "— (the evaluation has no HumanEval run)"
            rows.append(row)
    if ev:
        secs, est = dirs_seconds(d for m in ev["models"].values() for d in model_run_dirs(m))
        note = f"; {ESTIMATED}" if est else ""
        rows.append({"name": f"held-out evaluation (T_eval grid, greedy, sampled; all models{note})", "seconds": secs})
    if bat:
        t = bat.get("timings", {})
        rows.append({"name": "anti-collapse battery (probe generation, every invocation)"
                     if "generation_s_all_invocations" in t else "anti-collapse battery (its last invocation only)",
                     "seconds": t.get("generation_s_all_invocations", t.get("total_s_this_invocation", 0))})
    comp = comparator_row(inputs, (ev or {}).get("protocol", "he-chat"))
    cpus = int(((ssd or pre or {}).get("machine") or {}).get("cpus") or 2)
    return cost_ledger(rows, comp, cpus), rows, comp


def stage_seconds(stage: dict) -> float:
    """A stage's seconds. A resumed pool/generate stage timed only the invocation that finished
    it: scaled to all its calls at that invocation's per-call rate (an estimate)."""
    c = stage.get("counts") or {}
    done, this = c.get("generated"), c.get("generated_this_invocation")
    secs = float(stage.get("seconds", 0) or 0)
    return secs * done / this if done and this and this < done else secs


def model_run_dirs(m: dict) -> list[str]:
    """One model's evaluation run directories in an ssd_eval result: tuning grid, greedy, sampled."""
    return [r["run"] for r in m["tuning"]["grid"]] + [r["run_dir"] for mode in ("greedy", "sampled")
                                                      for r in m[mode]["runs"].values()]


def comparator_row(inputs: dict, protocol: str) -> dict | None:
    """The declared comparator's cost (mining stages + training) and HumanEval greedy gain."""
    from common.ssd import load_json_file
    from common.ssd_report import delta_text
    c = inputs.get("comparator")
    if not isinstance(c, dict) or not c.get("adapter"):
        return None
    secs = 0.0
    if c.get("mining_run"):
        mining = load_json_file(Path(c["mining_run"]) / "result.json", "comparator mining result")
        secs += sum(v.get("seconds", 0) for v in mining.get("stages", {}).values())
    train = load_json_file(Path(c["adapter"]) / "result.json", "comparator training result")
    secs += float(train.get("timings", {}).get("total_s", 0) or 0)
    row = {"name": c.get("name", c["adapter"]), "seconds": secs}
    e, b = (c.get("eval_runs") or {}).get(protocol), (c.get("base_runs") or {}).get(protocol)
    if e and b:
        g = humaneval_gain(b, e)
        row.update(gain_pp=100 * g["delta"], gain_text=delta_text(g))
    return row


if __name__ == "__main__":
    raise SystemExit(main())
