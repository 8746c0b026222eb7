"""evals/bench_generation.full_run_timing: which runs count as the full greedy HumanEval figure."""
import json
from pathlib import Path

import pytest
from conftest import load_script

from common.results import InputError

REPO = Path(__file__).resolve().parents[1]
bench = load_script("evals/bench_generation.py")

GREEDY = {"n": 1, "temperature": 0.0, "top_p": 1.0, "max_new_tokens": 512}


def _run(tmp_path, *, sampling=GREEDY, proto="qwen-official", n_tasks=164, timings=None):
    d = tmp_path / "run"
    d.mkdir()
    res = {"sampling": sampling, "protocol": {"name": proto}, "dataset": {"n_tasks": n_tasks},
           "args": {"max_batch": 64},
           "timings": {"generation_s": 500.0, "scoring_s": 2.0} if timings is None else timings}
    (d / "result.json").write_text(json.dumps(res))
    return d


@pytest.mark.parametrize("kw, total, under", [
    ({}, 502.0, True),
    ({"timings": {"generation_s": 700.0, "scoring_s": 1.0}}, 701.0, False),
    # a resumed run: the sum over all invocations wins over the last invocation's time
    ({"timings": {"generation_s": 100.0, "generation_s_all_invocations": 650.0, "scoring_s": 0.0}}, 650.0, False),
    ({"timings": {"generation_s": 599.0}}, 599.0, True),
])
def test_full_run_timing_reads_the_measured_time(tmp_path, kw, total, under):
    out = bench.full_run_timing(_run(tmp_path, **kw))
    assert out["total_s"] == total and out["under_target"] is under and out["target_s"] == 600.0


@pytest.mark.parametrize("kw", [
    {"sampling": {**GREEDY, "temperature": 0.8}},
    {"sampling": {**GREEDY, "n": 10}},
    {"proto": "he-chat"},
    {"n_tasks": 40},
    {"timings": {}},
])
def test_full_run_timing_refuses_runs_that_are_not_the_full_greedy_run(tmp_path, kw):
    with pytest.raises(InputError):
        bench.full_run_timing(_run(tmp_path, **kw))


def test_full_run_timing_missing_result(tmp_path):
    with pytest.raises(InputError, match="no result.json"):
        bench.full_run_timing(tmp_path)


def test_full_run_timing_carries_the_runs_pass_at_1_and_commit(tmp_path):
    d = _run(tmp_path)
    res = json.loads((d / "result.json").read_text())
    res["metrics"] = {"pass_at_k": {"pass@1": {"mean": 0.585}}, "mean_new_tokens": 250.3}
    res["git"] = {"commit": "abc123"}
    (d / "result.json").write_text(json.dumps(res))
    out = bench.full_run_timing(d)
    assert out["pass_at_1"] == 0.585 and out["mean_new_tokens"] == 250.3 and out["git_commit"] == "abc123"
