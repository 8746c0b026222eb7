"""End to end on the real embedded model: eval_raw.py on two HumanEval tasks, then resume."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _run(args, cwd=REPO):
    return subprocess.run([sys.executable, "evals/eval_raw.py", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=1200)


@pytest.mark.model
def test_eval_raw_two_tasks_then_resume(tmp_path):
    args = ["--bench", "humaneval", "--limit", "2", "--out-dir", str(tmp_path), "--run-name", "e2e",
            "--max-new-tokens", "160", "--quiet"]
    p = _run(args)
    assert p.returncode == 0, p.stderr[-3000:]
    run = tmp_path / "e2e"
    res = json.loads((run / "result.json").read_text())
    for key in ("script", "argv", "git", "versions", "machine", "model", "protocol", "sampling", "dataset",
                "sandbox_limits", "timings", "metrics"):
        assert key in res, key
    assert res["model"]["file_sha256"] == "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
    assert res["protocol"]["name"] == "qwen-official"
    assert res["sampling"]["temperature"] == 0 and res["sampling"]["max_new_tokens"] == 160
    assert res["dataset"]["name"] == "humaneval" and len(res["dataset"]["sha256"]) == 64
    assert res["sandbox_limits"]["limits"]["timeout_s"] > 0
    m = res["metrics"]
    assert m["n_tasks"] == 2 and m["n_samples"] == 2
    lo, hi = m["pass_at_k"]["pass@1"]["ci"]
    assert lo <= m["pass_at_k"]["pass@1"]["mean"] <= hi
    rows = [json.loads(l) for l in (run / "samples.jsonl").read_text().splitlines()]
    assert [r["task_id"] for r in rows] == ["HumanEval/0", "HumanEval/1"]
    for r in rows:
        assert isinstance(r["completion"], str) and isinstance(r["passed"], bool)
        assert r["result"] == "passed" or r["result"].startswith(("failed", "timed out"))
        assert r["status"] in ("passed", "failed", "timeout", "memory", "crashed", "harness_error")
        assert r["n_tokens"] > 0 and r["sum_logprob"] <= 0
    assert all(r["finish_reason"] in ("stop", "eos", "length") for r in rows)
    eng = res["engine_this_invocation"]  # the CPU engine says how it ran and where its time went
    assert eng["max_batch"] == 128 and eng["packed_steps"] is True
    b = eng["breakdown"]
    assert b["prompts"] == 2 and b["generated_tokens"] == sum(r["n_tokens"] for r in rows)
    assert 0 < b["prefill_s"] + b["step_s"] <= b["wall_s"] + 1e-6
    assert b["kv_columns"] > 0 and eng["machine_gemm_gflops_after"] > 0
    # resume: same command, nothing generated again, same verdicts
    p2 = _run(args)
    assert p2.returncode == 0, p2.stderr[-3000:]
    res2 = json.loads((run / "result.json").read_text())
    assert res2["timings"]["generation_s"] == 0 and "engine_this_invocation" not in res2
    rows2 = [json.loads(l) for l in (run / "samples.jsonl").read_text().splitlines()]
    assert [r["passed"] for r in rows2] == [r["passed"] for r in rows]


@pytest.mark.parametrize("args,needle", [
    (["--model", "no-such-model"], "not an embedded alias"),
    (["--bench", "nope"], "unknown benchmark"),
    (["--adapter", "/nonexistent/adapter"], "not a readable peft adapter"),
    (["--n-samples", "2", "--temperature", "0.8", "--k", "5"], "larger than --n-samples"),
    (["--n-samples", "3"], "greedy decoding"),
])
def test_eval_raw_bad_input_is_one_clear_line(tmp_path, args, needle):
    p = _run(["--limit", "1", "--out-dir", str(tmp_path), *args])
    assert p.returncode == 2
    assert needle in p.stderr
    assert "Traceback" not in p.stderr


def test_eval_raw_help_lists_every_flag():
    p = _run(["--help"])
    assert p.returncode == 0
    for flag in ("--bench", "--protocol", "--model", "--adapter", "--n-samples", "--temperature", "--top-p",
                 "--seed", "--limit", "--k", "--workers", "--timeout", "--overwrite"):
        assert flag in p.stdout
