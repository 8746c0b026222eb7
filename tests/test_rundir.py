"""The one-of-each helpers: run names, atomic writers, hashes, the k ladder, workers default,
the run-directory lock, the stage block, resumable generation, and the offline hub-id error."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass

import pytest

from common.results import (InputError, JsonlLog, dir_sha256, file_sha256, slug, write_json_atomic,
                            write_jsonl_atomic)


@pytest.mark.parametrize("ref,want", [
    ("qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-0.5b-instruct"),
    ("Qwen/Qwen2.5-Coder-7B-Instruct", "qwen2.5-coder-7b-instruct"),   # last component, lower-cased
    ("results/boot/iter1/adapter/", "adapter"),                         # trailing slash
    ("humaneval+", "humaneval+"),                                       # '+' is kept (bench names)
    ("My Adapter (v2)", "my-adapter-v2"),                               # runs of others -> '-', stripped
    ("a__b--c", "a-b-c"),
])
def test_slug(ref, want):
    assert slug(ref) == want


def test_atomic_writers_replace_whole_files_and_leave_no_temporaries(tmp_path):
    p = tmp_path / "d" / "x.jsonl"
    write_jsonl_atomic(p, [{"a": 1}, {"b": [1, 2]}])
    write_jsonl_atomic(p, [{"c": 3}])
    assert [json.loads(line) for line in p.read_text().splitlines()] == [{"c": 3}]
    write_json_atomic(tmp_path / "r.json", {"k": (1, 2)})
    assert json.loads((tmp_path / "r.json").read_text()) == {"k": [1, 2]}
    assert not list(tmp_path.rglob("*.tmp*"))


def test_hashes(tmp_path):
    f = tmp_path / "f.bin"
    f.write_bytes(b"abc")
    assert file_sha256(f) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert file_sha256(f, chunk=1) == file_sha256(f)
    d = tmp_path / "adapter"
    (d / "sub").mkdir(parents=True)
    (d / "a").write_text("1")
    (d / "sub" / "b").write_text("2")
    h = dir_sha256(d)
    (d / "sub" / "b").write_text("3")
    assert dir_sha256(d) != h
    (d / "sub" / "b").write_text("2")
    assert dir_sha256(d) == h


@pytest.mark.parametrize("n,want", [
    (1, [1]), (2, [1, 2]), (3, [1, 2, 3]), (10, [1, 2, 4, 5, 8, 10]),
    (16, [1, 2, 4, 5, 8, 10, 16]), (17, [1, 2, 4, 5, 8, 10, 16, 17]),
])
def test_k_ladder(n, want):
    from common.metrics import ks_for
    assert ks_for(n) == want


def test_k_ladder_rejects_no_samples():
    from common.metrics import ks_for
    with pytest.raises(ValueError):
        ks_for(0)


def test_workers_default_is_one_per_cpu():
    from common.sandbox import default_workers
    assert default_workers() == (os.cpu_count() or 1)


# -- run-directory lock ------------------------------------------------------------------------

HOLD = textwrap.dedent("""
    import sys, time
    from common.rundir import lock_run_dir
    lock_run_dir(sys.argv[1])
    print("locked", flush=True)
    time.sleep(60)
""")


def test_second_process_on_a_run_dir_stops_naming_the_holder(tmp_path):
    from common.rundir import lock_run_dir
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(InputError, match=rf"pid {holder.pid}\b"):
            lock_run_dir(run)
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone: its lock is stale and is taken over
    lock_run_dir(run)
    assert (run / ".lock").read_text() == str(os.getpid())
    from common.rundir import release_run_dir
    release_run_dir(run)


def test_a_script_refuses_a_locked_run_dir_before_generating(tmp_path):
    """End to end through a real script's entry point: exit status 2 and the holder's pid."""
    run = tmp_path / "results" / "locked_run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        p = subprocess.run([sys.executable, "evals/eval_raw.py", "--limit", "1", "--out-dir", str(tmp_path / "results"),
                            "--run-name", "locked_run", "--model", "smollm2-135m-instruct"],
                           capture_output=True, text=True, timeout=300,
                           cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    finally:
        holder.kill()
        holder.wait()
    assert p.returncode == 2, p.stderr
    assert f"pid {holder.pid}" in p.stderr and "Traceback" not in p.stderr
    assert not (run / "samples.jsonl").exists()


def test_stale_lock_file_from_a_dead_pid_is_taken_over(tmp_path):
    from common.rundir import lock_run_dir, release_run_dir
    run = tmp_path / "run"
    run.mkdir()
    (run / ".lock").write_text("999999999")
    lock_run_dir(run)
    assert (run / ".lock").read_text() == str(os.getpid())
    lock_run_dir(run)  # idempotent within the holder
    release_run_dir(run)


def test_run_config_is_checked_on_resume(tmp_path):
    from common.rundir import open_run_dir, release_run_dir
    run = tmp_path / "run"
    open_run_dir(run, {"a": 1})
    open_run_dir(run, {"a": 1})
    with pytest.raises(InputError, match=r"different settings \(a\)"):
        open_run_dir(run, {"a": 2})
    open_run_dir(run, {"a": 2}, overwrite=True)
    assert json.loads((run / "config.json").read_text()) == {"a": 2}
    release_run_dir(run)


def _model(**kw):
    return {"model": {"file_sha256": "abc", "dtype": "float32", **kw}, "sampling": {"n": 1}}


@pytest.mark.parametrize("old,new,same", [
    (_model(backend_requested="auto"), _model(backend_requested="hf", backend="hf"), True),      # legacy auto was hf
    (_model(backend_requested="auto"), _model(backend_requested="auto", backend="int8"), False),  # new auto is int8
    (_model(backend_requested="int8"), _model(backend_requested="auto", backend="int8"), True),   # legacy int8 run
    (_model(backend_requested="int8", backend="int8"), _model(backend_requested="auto", backend="int8"), True),
    (_model(backend_requested="hf", backend="hf"), _model(backend_requested="int8", backend="int8"), False),
    (_model(backend_requested="llamacpp"), _model(backend_requested="llamacpp", backend="llamacpp"), True),
    ({"kind": "x", "runs": [_model(backend_requested="auto")]},
     {"kind": "x", "runs": [_model(backend_requested="hf", backend="hf")]}, True),               # nested
])
def test_run_identity_compares_the_backend_that_generates(old, new, same):
    from common.rundir import run_identity
    assert (run_identity(old) == run_identity(new)) is same


def test_resuming_on_another_backend_names_the_field(tmp_path):
    from common.rundir import open_run_dir, release_run_dir
    run = tmp_path / "run"
    open_run_dir(run, _model(backend_requested="auto"))          # a run written before `backend` was recorded
    open_run_dir(run, _model(backend_requested="hf", backend="hf"))
    with pytest.raises(InputError, match=r"different settings \(model\.backend\); pass --backend hf to resume"):
        open_run_dir(run, _model(backend_requested="auto", backend="int8"))
    release_run_dir(run)


# -- the stage block ---------------------------------------------------------------------------

def test_stage_block_runs_once_and_records_counts(tmp_path):
    from common.rundir import StageBook
    calls = []

    def stage():
        calls.append(1)
        return [{"x": 1}, {"x": 2}], {"rows": 2}

    book = StageBook(tmp_path)
    assert book.run("it1/solve", tmp_path / "it1" / "s.jsonl", stage) == [{"x": 1}, {"x": 2}]
    again = StageBook(tmp_path)   # a rerun reads stages.json and skips the stage
    assert again.run("it1/solve", tmp_path / "it1" / "s.jsonl", stage) == [{"x": 1}, {"x": 2}]
    assert calls == [1]
    assert again.done("it1/solve")["counts"] == {"rows": 2}
    assert again.run("it1/none", None, lambda: ([], {"n": 0})) == [] and again.done("it1/none")


# -- resumable generation ----------------------------------------------------------------------

@dataclass
class _Comp:
    text: str
    finish_reason: str = "stop"
    n_tokens: int = 1


class _FakeLLM:
    def __init__(self):
        self.calls = []

    def generate(self, prompts, params, on_done, progress, desc, seed_keys):
        self.calls.append((list(prompts), list(seed_keys)))
        for i, (p, s) in enumerate(zip(prompts, seed_keys)):
            on_done(i, [_Comp(f"{p}|seed{s}|{j}") for j in range(params.n)])


@dataclass
class _Params:
    n: int


def _plan():
    from common.generate import GenerationPlan, completion_fields
    return GenerationPlan(field="task_id", prompt=lambda it, llm: it["task_id"].upper(),
                          rows=lambda it, comps: [{"task_id": it["task_id"], "sample_index": j, "text": c.text,
                                                   **completion_fields(c)} for j, c in enumerate(comps)],
                          rows_per_item=2)


def test_generation_resumes_with_the_seeds_of_an_uninterrupted_run(tmp_path):
    from common.generate import generate_missing
    items = [{"task_id": t} for t in "abc"]
    full = _FakeLLM()
    with JsonlLog(tmp_path / "full.jsonl") as lg:
        assert generate_missing(lg, items, lambda: full, _Params(2), _plan(), progress=False).items == 3
        want = list(lg.rows)
    # an interrupted run wrote item "a" only; the rerun generates b and c with seeds 1 and 2
    with JsonlLog(tmp_path / "part.jsonl") as lg:
        for r in want[:2]:
            lg.append(r)
    again = _FakeLLM()
    with JsonlLog(tmp_path / "part.jsonl") as lg:
        g = generate_missing(lg, items, lambda: again, _Params(2), _plan(), progress=False)
        assert g.items == 2 and again.calls == [(["B", "C"], [1, 2])]
        assert lg.rows == want
    loaded = []
    with JsonlLog(tmp_path / "part.jsonl") as lg:   # nothing missing: the model is never loaded
        assert generate_missing(lg, items, lambda: loaded.append(1), _Params(2), _plan(), progress=False).items == 0
    assert not loaded


def test_generation_refuses_a_partly_written_item(tmp_path):
    from common.generate import generate_missing
    with JsonlLog(tmp_path / "s.jsonl") as lg:
        lg.append({"task_id": "a", "sample_index": 0, "text": "x"})
        with pytest.raises(InputError, match="incomplete set of samples"):
            generate_missing(lg, [{"task_id": "a"}], _FakeLLM, _Params(2), _plan(), progress=False)


# -- errors ------------------------------------------------------------------------------------

def test_uncached_hub_id_offline_is_one_line_before_any_run_dir(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    out = tmp_path / "results"
    p = subprocess.run([sys.executable, "evals/eval_raw.py", "--model", "nobody-here/no-such-model", "--limit", "1",
                        "--out-dir", str(out)], capture_output=True, text=True, env=env, timeout=300,
                       cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert p.returncode == 2
    assert "Traceback" not in p.stderr
    assert "huggingface-cli download nobody-here/no-such-model" in p.stderr
    assert str(tmp_path / "hf") in p.stderr          # where to put it
    assert not out.exists()                          # nothing was created


def test_a_bug_keeps_its_traceback():
    from common.cli import run_main

    def buggy(argv):
        raise ValueError("internal fault")
    with pytest.raises(ValueError, match="internal fault"):
        run_main(buggy, [])


def test_project_errors_are_one_line(capsys):
    from common.cli import run_main

    def bad(argv):
        raise InputError("--limit must be >= 1")
    assert run_main(bad, []) == 2
    assert capsys.readouterr().err.strip() == "error: --limit must be >= 1"
