"""--base-runs: a finished greedy base evaluation stands in for the base side only when it is the
same protocol, model file, token budget, greedy, adapter-free and complete (common.compare)."""
import argparse
import json

import pytest

from common.compare import EvalSpec, add_eval_args, check_base_run
from common.results import InputError

TASKS = [{"task_id": "HumanEval/0"}, {"task_id": "HumanEval/1"}]
SHA = "ab" * 32


BASE = {"proto": "he-chat", "n": 1, "temperature": 0.0, "max_new": 400, "sha": SHA, "adapter": None,
        "backend": "auto"}


def make_run(path, tasks=("HumanEval/0", "HumanEval/1"), scored=True, **changes):
    """A finished base run: ``BASE`` with ``changes`` (proto, n, temperature, max_new, sha, adapter,
    backend: the ``--backend`` of a record from before the resolved backend was recorded)."""
    assert set(changes) <= set(BASE), set(changes) - set(BASE)
    c = {**BASE, **changes}
    path.mkdir(parents=True)
    res = {"protocol": {"name": c["proto"]},
           "sampling": {"n": c["n"], "temperature": c["temperature"], "max_new_tokens": c["max_new"]},
           "model": {"file_sha256": c["sha"], "adapter": c["adapter"], "backend_requested": c["backend"]},
           "metrics": {"pass_at_k": {"pass@1": {"mean": 0.5, "ci": [0.1, 0.9]}}}}
    (path / "result.json").write_text(json.dumps(res))
    rows = [{"task_id": t, "completion": "", **({"passed": i == 0} if scored else {})} for i, t in enumerate(tasks)]
    (path / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_matching_run_is_accepted(tmp_path):
    run = make_run(tmp_path / "ok")
    assert check_base_run(run, protocol_name="he-chat", model_sha256=SHA, tasks=TASKS,
                          max_new_tokens=None)["mean"] == 0.5
    assert check_base_run(run, protocol_name="he-chat", model_sha256=SHA, tasks=TASKS[:1],
                          max_new_tokens=400, backend="hf")["mean"] == 0.5   # a legacy "auto" record: hf


@pytest.mark.parametrize("kw, needle", [
    ({"proto": "qwen-official"}, "protocol"),
    ({"n": 10, "temperature": 0.8}, "not greedy"),
    ({"max_new": 512}, "max_new_tokens"),
    ({"sha": "cd" * 32}, "sha256"),
    ({"adapter": "/tmp/adapter"}, "adapter"),
    ({"tasks": ("HumanEval/0",)}, "missing"),
    ({"backend": "int8"}, "generated on the int8 backend, the adapters on hf"),
])
def test_mismatched_run_is_refused(tmp_path, kw, needle):
    run = make_run(tmp_path / "bad", **kw)
    with pytest.raises(InputError, match=needle):
        check_base_run(run, protocol_name="he-chat", model_sha256=SHA, tasks=TASKS, max_new_tokens=400, backend="hf")


def test_unscored_run_is_refused(tmp_path):
    run = make_run(tmp_path / "unscored", scored=False)
    with pytest.raises(InputError, match="not scored"):
        check_base_run(run, protocol_name="he-chat", model_sha256=SHA, tasks=TASKS, max_new_tokens=None)


def _spec(argv):
    p = argparse.ArgumentParser()
    add_eval_args(p)
    return EvalSpec.from_args(p.parse_args(argv))


def test_flag_parsing(tmp_path):
    run = make_run(tmp_path / "ok")
    assert _spec(["--base-runs", f"he-chat={run}"]).base_runs == (("he-chat", str(run)),)
    assert _spec([]).base_runs == ()
    for bad, needle in ((f"he-chat:{run}", "PROTOCOL=RUN_DIR"), (f"raw={run}", "not in --eval-protocols"),
                        (f"he-chat={tmp_path / 'nope'}", "not a finished")):
        with pytest.raises(InputError, match=needle):
            _spec(["--base-runs", bad])
