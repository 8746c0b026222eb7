"""Issue 17 end to end on the real SmolLM2-135M, tiny settings, in one temporary results root:
the precondition verdict (1 problem per held-out set, 16 samples), recipe/ssd.py with both arms
(a 4-problem pool file plus 1 generated call, 2 samples per prompt, 1 training step per arm;
the pool's seeded split keeps add_two, which SmolLM2 solves, among the training prompts, so the
verifier arm has a sample to train on),
the rerun that resumes, the round-2 refusals, the held-out evaluation with T_eval tuning, the
battery on a 2-probe set, and the report. The arms stay apart in every result file."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MODEL = ["--model", "smollm2-135m-instruct"]
POOL = [
    ("add_three", "a, b, c", "Return the sum of a, b and c.", "    total = a + b\n    return total + c",
     ["assert add_three(1, 2, 3) == 6", "assert add_three(0, 0, 0) == 0"]),
    ("double_all", "xs", "Return a list with every element of xs doubled.", "    out = [2 * x for x in xs]\n    return out",
     ["assert double_all([1, 2]) == [2, 4]", "assert double_all([]) == []"]),
    ("count_vowels", "s", "Count the vowels a, e, i, o, u in the lower-case string s.",
     "    n = sum(1 for ch in s if ch in 'aeiou')\n    return n",
     ["assert count_vowels('hello') == 2", "assert count_vowels('xyz') == 0"]),
    ("add_two", "a, b", "Return the sum of a and b.", "    return a + b",
     ["assert add_two(1, 2) == 3", "assert add_two(-1, 1) == 0"]),
]


def _run(script, *args, root, quiet=True):
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    return subprocess.run([sys.executable, script, *args, "--out-dir", str(root)] + (["--quiet"] if quiet else []),
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=900)


def _pool_file(root: Path) -> Path:
    path = root / "pool.jsonl"
    rows = []
    for name, args, doc, body, tests in POOL:
        sig = f'def {name}({args}):\n    """{doc}"""'
        rows.append({"id": f"tp-{name}", "entry_point": name, "signature": sig, "docstring": doc,
                     "reference": sig + "\n" + body, "tests": tests})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _small_battery_files(root: Path) -> tuple[Path, Path]:
    th = json.loads((REPO / "data" / "ssd_thresholds.json").read_text())
    th["battery"]["probe_sampling"].update(n=2, max_new_tokens=16)
    probes = [json.loads(l) for l in (REPO / "data" / "ssd_probes.jsonl").read_text().splitlines()]
    small = [next(p for p in probes if p["kind"] == "code"), next(p for p in probes if p["kind"] == "safety")]
    (root / "th.json").write_text(json.dumps(th))
    (root / "probes.jsonl").write_text("".join(json.dumps(p) + "\n" for p in small))
    return root / "th.json", root / "probes.jsonl"


SSD_ARGS = ["--pool-size", "1", "--pool-max-new-tokens", "32", "--n-per-prompt", "2", "--max-new-tokens", "48",
            "--max-steps", "1", "--grad-accum", "1", "--warmup-ratio", "0", "--val-fraction", "0.25",
            "--workers", "1", "--run-name", "ssd"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ssd")
    out = {"root": root}
    out["pre"] = _run("evals/ssd_precondition.py", "--inputs", "data/ssd_inputs_qwen05b.json", *MODEL,
                      "--model-info", '{"name": "smollm2-135m-instruct"}', "--limit", "1", "--max-new-tokens", "24",
                      "--acknowledge-small-heldout", "--workers", "1", "--run-name", "pre", root=root)
    ssd_args = [*MODEL, "--pool-file", str(_pool_file(root)), *SSD_ARGS]
    out["ssd"] = _run("recipe/ssd.py", *ssd_args, root=root)
    out["ssd_again"] = _run("recipe/ssd.py", *ssd_args, root=root)
    out["eval"] = _run("evals/ssd_eval.py", "--ssd-run", str(root / "ssd"), "--slices-from", str(root / "pre"),
                       *MODEL, "--heldout", "problems",
                       "--limit", "1", "--val-limit", "1", "--t-grid", "1.0", "--val-samples", "2", "--n-samples", "2",
                       "--max-new-tokens", "24", "--workers", "1", "--run-name", "eval", root=root)
    th, probes = _small_battery_files(root)
    out["battery"] = _run("evals/ssd_battery.py", "--ssd-run", str(root / "ssd"), "--eval-result",
                          str(root / "eval" / "result.json"), "--thresholds", str(th), "--probes", str(probes),
                          *MODEL, "--run-name", "battery", root=root)
    return out


def _ok(p):
    assert p.returncode == 0, p.stderr[-4000:]


@pytest.mark.model
def test_precondition_verdict(runs):
    _ok(runs["pre"])
    res = json.loads((runs["root"] / "pre" / "result.json").read_text())
    assert res["verdict"]["verdict"] in ("GO-SSD", "GO-VERIFIER-AWARE-SSD", "GO-OTHER")
    assert res["heldout"]["n"] == 2 and res["heldout"]["acknowledged_small"] is True
    assert "fewer than the 200" in res["heldout"]["small_heldout_note"]
    assert set(res["heldout"]["runs"]) == {"humaneval", "problems"}
    assert set(res["numbers"]["pass_at_k"]) == {"pass@1", "pass@4", "pass@8", "pass@16"}
    assert res["justification"].startswith("SSD bets")
    assert "## A. Precondition verdict" in (runs["root"] / "pre" / "verdict.md").read_text()


@pytest.mark.model
def test_both_arms_trained_and_kept_apart(runs):
    from common.models import check_adapter_dir
    _ok(runs["ssd"])
    run = runs["root"] / "ssd"
    res = json.loads((run / "result.json").read_text())
    assert set(res["arms"]) == {"minimal", "verifier"}
    assert res["pool"]["decontamination"]["n_checked"] >= 4 and res["pool"]["heldout_n"] == 206
    assert res["stages"]["pool/generate"]["counts"] == {"generated": 1, "generated_this_invocation": 1}
    samples = [json.loads(l) for l in (run / "samples" / "samples.jsonl").read_text().splitlines()]
    passed = {(r["task_id"], r["sample_index"]) for r in samples if r["passed"]}
    assert res["sampling"]["temperature"] == 1.5 and res["sampling"]["top_k"] == 20 and res["sampling"]["top_p"] == 0.8
    for arm in ("minimal", "verifier"):
        a = res["arms"][arm]
        recs = [json.loads(l) for l in (run / "arms" / arm / "train.jsonl").read_text().splitlines()]
        assert {r["arm"] for r in recs} <= {arm} and len(recs) == a["records"]
        if arm == "verifier":
            assert {(r["task_id"], r["sample_index"]) for r in recs} <= passed
            assert a["filter"]["acceptance_rate"] == pytest.approx(len(passed) / len(samples))
        else:
            assert a["filter"]["sampled"] == len(samples) and a["records"] == a["filter"]["kept"]
        if recs:
            assert a["adapter"] == str(run / "arms" / arm / "adapter")
            check_adapter_dir(a["adapter"])
            assert a["training"]["pairs"]["arm"] == arm
    assert res["arms"]["minimal"]["adapter"] != res["arms"]["verifier"]["adapter"]
    assert not {"records", "adapter", "filter", "training"} & set(res)        # no number outside its arm
    assert res["arms"]["verifier"]["adapter"], "the seeded verifier arm keeps at least one passing sample"


@pytest.mark.model
def test_rerun_resumes(runs):
    _ok(runs["ssd_again"])
    redone = [l for l in runs["ssd_again"].stderr.splitlines() if " INFO stage " in l
              or ("training:" in l and "already holds this run; skipped" not in l)]
    assert redone == [], redone
    assert "arm minimal:" in runs["ssd_again"].stdout


@pytest.mark.model
def test_round2_is_refused_without_a_passed_gate(runs):
    root = runs["root"]
    p = _run("recipe/ssd.py", *MODEL, "--round", "2", "--run-name", "r2", root=root)
    assert p.returncode == 2 and "--round1-run, --arm, --gate-eval, --gate-battery" in p.stderr
    _ok(runs["eval"])
    _ok(runs["battery"])
    p = _run("recipe/ssd.py", *MODEL, "--round", "2", "--round1-run", str(root / "ssd"), "--arm", "minimal",
             "--gate-eval", str(root / "eval" / "result.json"), "--gate-battery", str(root / "battery" / "result.json"),
             "--run-name", "r2", root=root)
    assert p.returncode == 2 and "round-2 gate did not pass for arm minimal" in p.stderr
    assert not (root / "r2").exists()


@pytest.mark.model
def test_eval_battery_and_report(runs):
    root = runs["root"]
    _ok(runs["eval"])
    ev = json.loads((root / "eval" / "result.json").read_text())
    assert set(ev["models"]) == {"base", "minimal", "verifier"} and set(ev["arms"]) == {"minimal", "verifier"}
    assert not {"greedy", "sampled", "comparison"} & set(ev)
    assert "drawn independently" in ev["slice_source"] and sum(ev["slice_counts"].values()) == 1
    for m in ev["models"].values():
        assert m["t_eval"] == 1.0 and m["tuning"]["val_n"] == 1
    for a in ev["arms"].values():
        assert a["greedy"]["comparison"]["n"] == 1 and set(a["by_slice"]) == {"hard", "medium", "easy"}
    _ok(runs["battery"])
    bat = json.loads((root / "battery" / "result.json").read_text())
    assert set(bat["arms"]) == {"minimal", "verifier"}
    for a in bat["arms"].values():
        assert set(a["probes"]) == {"self_bleu", "ngram_repetition", "length", "diversity_at_k", "style", "refusal"}
        assert a["probes"]["diversity_at_k"]["measured"]
    assert bat["timings"]["invocations"] == 1 and bat["timings"]["tasks_generated_untimed"] == 0
    assert bat["timings"]["generation_s_all_invocations"] > 0
    p = _run("experiments/ssd_report.py", "--inputs", "data/ssd_inputs_qwen05b.json", "--precondition", str(root / "pre"),
             "--ssd-run", str(root / "ssd"), "--eval", str(root / "eval"), "--battery", str(root / "battery"),
             "--run-name", "report", root=root, quiet=False)
    _ok(p)
    md = (root / "report" / "report.md").read_text()
    for head in ("## A.", "## B.", "## C.", "## D.", "## E.", "## Cost ledger", "Thresholds pre-declaration"):
        assert head in md
    assert "| minimal |" in md and "| verifier |" in md and "Acceptance rate" in md
    assert "T_eval tuning: validation pass@1" in md and "| base | " in md
    rep = json.loads((root / "report" / "report.json").read_text())
    assert set(rep["round2_gates"]) == {"minimal", "verifier"} and set(rep["arms"]) == {"minimal", "verifier"}


@pytest.mark.model
def test_reproduce_ssd_table_reads_the_results_and_hides_deltas_without_a_battery(runs):
    from conftest import load_script
    tables = load_script("figures/tables.py")
    res = tables._load(runs["root"])
    md = tables.ssd_table(res)
    assert "verdict **" in md and "`results/ssd/`" in md
    for arm in ("minimal", "verifier"):
        assert f"| {arm} | self_bleu |" in md and f"| {arm} | refusal |" in md
    assert "Δ greedy pass@1" in md and "no battery result reads" not in md
    assert "hard / medium / easy Δ sampled pass@1" in md and "Round-2 gate" in md and "STOP: no round 2" in md
    without = tables.ssd_table({k: v for k, v in res.items() if k != "battery"})
    assert "`results/eval/`: no battery result reads this evaluation" in without and "Δ greedy pass@1" not in without


@pytest.mark.model
def test_battery_overwrite_samples_the_probes_again(runs):
    """Runs last: --overwrite regenerates the probe samples (a kept file would generate nothing and
    leave the invocation log empty) and the same seeds give the same samples."""
    root = runs["root"]
    before = {m: (root / "battery" / f"{m}.jsonl").read_text() for m in ("base", "minimal", "verifier")}
    th, probes = root / "th.json", root / "probes.jsonl"
    _ok(_run("evals/ssd_battery.py", "--ssd-run", str(root / "ssd"), "--thresholds", str(th), "--probes", str(probes),
             *MODEL, "--run-name", "battery", "--overwrite", root=root))
    t = json.loads((root / "battery" / "result.json").read_text())["timings"]
    assert t["invocations"] == 1 and t["tasks_generated_untimed"] == 0
    assert before == {m: (root / "battery" / f"{m}.jsonl").read_text() for m in before}
