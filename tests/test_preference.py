"""Preference pairs and preference training: chosen/rejected construction (ties, all-pass and
all-fail tasks, duplicates, the per-task cap), the record schema, the builder script end to end
and on a malformed samples file, the training text, one real DPO and one real ORPO step on
SmolLM2-135M, and a malformed preference file refused line by line with nothing trained."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from common.preference import load_preferences, make_preference, validate_preference
from common.results import InputError
from conftest import load_script

REPO = Path(__file__).resolve().parent.parent
FIX = Path(__file__).parent / "fixtures"
SMALL = "smollm2-135m-instruct"
TASK = {"prompt": "def f(x):\n    \"\"\"Return x plus one.\"\"\"\n", "entry_point": "f"}
GOOD_A, GOOD_B = "    return x + 1\n", "    y = x\n    return y + 1\n"
BAD_A, BAD_B, BAD_C = "    return x\n", "    return x - 1\n", "    return 2 * x\n"


def _env():
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env


def _run(script, args):
    return subprocess.run([sys.executable, script, *args], cwd=REPO, capture_output=True, text=True, env=_env(),
                          timeout=600)


def _rows(*samples):
    return [{"task_id": "t", "sample_index": i, "completion": c, "passed": ok} for i, (c, ok) in enumerate(samples)]


def _pairs(rows, k=4):
    builder = load_script("recipe/preference_pairs.py")
    return builder.task_pairs("t", TASK, rows, k, {"source": "s", "model": None})


# --------------------------------------------------------------------------------------------
# construction
# --------------------------------------------------------------------------------------------


def test_pairs_take_every_distinct_program_once_before_repeating():
    pairs, c = _pairs(_rows((GOOD_A, True), (BAD_A, False), (BAD_B, False), (BAD_C, False), (GOOD_B, True)))
    assert [(p["chosen"], p["rejected"]) for p in pairs] == [(GOOD_A, BAD_A), (GOOD_B, BAD_B), (GOOD_A, BAD_C)]
    assert [(p["chosen_index"], p["rejected_index"]) for p in pairs] == [(0, 1), (4, 2), (0, 3)]
    assert c["tasks_with_pairs"] == 1 and c["pairs"] == 3 and c["capped"] == 0
    assert all(validate_preference(p) == [] and p["task_id"] == "t" and p["prompt"] == TASK["prompt"] for p in pairs)


def test_at_most_k_pairs_per_task():
    pairs, c = _pairs(_rows((GOOD_A, True), (BAD_A, False), (BAD_B, False), (BAD_C, False)), k=2)
    assert [p["rejected"] for p in pairs] == [BAD_A, BAD_B] and c["capped"] == 1


@pytest.mark.parametrize("samples,kind", [
    (((GOOD_A, True), (GOOD_B, True)), "tasks_all_pass"),
    (((BAD_A, False), (BAD_B, False)), "tasks_all_fail"),
    (((GOOD_A, True), (GOOD_A.replace("+ 1", "+ 1  # same"), False)), "tasks_ties_only"),
    ((("", True), ("  \n", False)), "tasks_no_usable"),
])
def test_all_pass_all_fail_and_tie_tasks_give_no_pairs(samples, kind):
    pairs, c = _pairs(_rows(*samples))
    assert pairs == [] and c[kind] == 1 and c["pairs"] == 0


def test_duplicates_ties_junk_and_harness_errors_are_dropped_and_counted():
    rows = _rows((GOOD_A, True), ("    # again\n    return x + 1\n", True), (BAD_A, False), ("    return (x)\n", False),
                 ("    return x+1\n", False), ("", False), (BAD_B, False))
    rows[-1]["status"] = "harness_error"
    pairs, c = _pairs(rows)
    assert [(p["chosen"], p["rejected"]) for p in pairs] == [(GOOD_A, BAD_A)]
    assert (c["duplicate_passing"], c["duplicate_failing"], c["ties"], c["empty"], c["harness_errors"]) == (1, 1, 1, 1, 1)


def test_samples_are_taken_in_sample_index_order():
    rows = list(reversed(_rows((GOOD_A, True), (GOOD_B, True), (BAD_A, False))))
    pairs, _ = _pairs(rows, k=1)
    assert pairs[0]["chosen"] == GOOD_A and pairs[0]["chosen_index"] == 0


# --------------------------------------------------------------------------------------------
# the record schema
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("change,needle", [
    ({"chosen": None}, "'chosen' must be a string"), ({"rejected": " "}, "'rejected' is empty"),
    ({"rejected": "    return x + 1\n"}, "are the same text"), ({"chosen_index": True}, "'chosen_index' must be int"),
    ({"task_id": 7}, "'task_id' must be a string"),
])
def test_a_bad_record_is_named(change, needle):
    rec = make_preference(task_id="t", prompt="def f(x):", chosen="    return x + 1\n", rejected="    return x\n")
    assert validate_preference(rec) == []
    assert any(needle in p for p in validate_preference({**rec, **change}))
    assert validate_preference({k: v for k, v in rec.items() if k != "prompt"}) == ["missing field 'prompt'"]


def test_malformed_preference_file_names_every_bad_line():
    with pytest.raises(InputError) as e:
        load_preferences(FIX / "preference_malformed.jsonl")
    msg = str(e.value)
    for n in (2, 3, 4, 5, 6, 8, 9):
        assert f"line {n}:" in msg
    assert "line 1:" not in msg and "line 7:" not in msg and "line 10:" not in msg


# --------------------------------------------------------------------------------------------
# recipe/preference_pairs.py
# --------------------------------------------------------------------------------------------


def test_builder_on_the_fixture_writes_pairs_and_their_provenance(tmp_path):
    out = tmp_path / "pref.jsonl"
    p = _run("recipe/preference_pairs.py", ["--samples", str(FIX / "preference_samples.jsonl"),
                                            "--problems", str(FIX / "preference_problems.jsonl"), "--out", str(out)])
    assert p.returncode == 0, p.stderr[-2000:]
    pairs = load_preferences(out)
    assert out.read_text() == (FIX / "preference_pairs.jsonl").read_text()
    assert [(r["chosen_index"], r["rejected_index"]) for r in pairs] == [(0, 1), (4, 5)]
    side = json.loads((tmp_path / "pref.result.json").read_text())
    c = side["counts"]
    assert (c["tasks"], c["tasks_with_pairs"], c["tasks_all_pass"], c["tasks_all_fail"], c["tasks_ties_only"]) == \
        (4, 1, 1, 1, 1)
    assert (c["ties"], c["duplicate_passing"], c["duplicate_failing"], c["empty"], c["harness_errors"]) == (2, 1, 1, 1, 1)
    assert side["decontamination"]["n_checked"] == 2 and side["decontamination"]["ngram"] == 13
    assert side["out"]["count"] == 2 and len(side["samples"]["sha256"]) == 64 and side["tasks"]["kind"] == "problems"
    again = _run("recipe/preference_pairs.py", ["--samples", str(FIX / "preference_samples.jsonl"), "--problems",
                                                str(FIX / "preference_problems.jsonl"), "--out", str(out)])
    assert again.returncode == 2 and "--overwrite" in again.stderr


def test_builder_drops_pairs_that_share_13_grams_with_humaneval(tmp_path):
    """Samples on HumanEval's own tasks: every pair is flagged, so nothing is written."""
    samples = tmp_path / "he.jsonl"
    samples.write_text(json.dumps({"task_id": "HumanEval/0", "completion": "    return False\n", "passed": False}) + "\n"
                       + json.dumps({"task_id": "HumanEval/0", "completion": "    return any(abs(a - b) < threshold "
                                     "for i, a in enumerate(numbers) for b in numbers[i + 1:])\n", "passed": True}) + "\n")
    out = tmp_path / "pref.jsonl"
    p = _run("recipe/preference_pairs.py", ["--samples", str(samples), "--bench", "humaneval", "--out", str(out)])
    assert p.returncode == 2 and "1 pairs contaminated" in p.stderr and not out.exists()


def test_builder_names_every_malformed_samples_line_and_writes_nothing(tmp_path):
    samples = tmp_path / "bad.jsonl"
    rows = ['{"task_id": "ext-001", "completion": "    return 1\\n", "passed": true}', "{oops",
            '{"task_id": "ext-001", "completion": "    return 1\\n"}', '{"task_id": "nope", "completion": "", "passed": false}',
            '{"task_id": "ext-001", "completion": 5, "passed": "yes"}']
    samples.write_text("\n".join(rows) + "\n")
    out = tmp_path / "pref.jsonl"
    p = _run("recipe/preference_pairs.py", ["--samples", str(samples), "--problems",
                                            str(FIX / "preference_problems.jsonl"), "--out", str(out)])
    assert p.returncode == 2 and "Traceback" not in p.stderr
    err = p.stderr.strip().splitlines()
    assert len(err) == 1 and "line 1:" not in err[0]
    for n, needle in ((2, "not valid JSON"), (3, "not scored"), (4, "not in the tasks source"), (5, "'passed' must be")):
        assert f"line {n}: " in err[0] and needle in err[0]
    assert list(tmp_path.iterdir()) == [samples]


# --------------------------------------------------------------------------------------------
# recipe/train_preference.py
# --------------------------------------------------------------------------------------------


def test_chat_text_is_the_he_chat_turn_answered_by_the_whole_program():
    trainer = load_script("recipe/train_preference.py")
    row = {"prompt": TASK["prompt"], "entry_point": "f", "chosen": GOOD_A,
           "rejected": "def f(x):\n    return x\n"}
    ex = trainer.render(row, "chat", "You are a Python coder.")
    assert ex["prompt"] == [{"role": "system", "content": "You are a Python coder."},
                            {"role": "user", "content": TASK["prompt"] + "\n# Complete the function above."}]
    assert ex["chosen"] == [{"role": "assistant", "content": "```python\n" + (TASK["prompt"] + GOOD_A).strip("\n")
                             + "\n```"}]
    assert ex["rejected"][0]["content"] == "```python\ndef f(x):\n    return x\n```"   # defines f: taken as is
    assert trainer.render(row, "raw", "") == {"prompt": TASK["prompt"], "chosen": GOOD_A, "rejected": row["rejected"]}


def test_malformed_preference_file_is_refused_and_nothing_is_trained(tmp_path):
    out = tmp_path / "adapter"
    p = _run("recipe/train_preference.py", ["--model", SMALL, "--pairs", str(FIX / "preference_malformed.jsonl"),
                                            "--out", str(out), "--max-steps", "1"])
    assert p.returncode == 2 and "Traceback" not in p.stderr
    err = p.stderr.strip().splitlines()
    assert len(err) == 1 and "nothing used" in err[0]
    for n in (2, 3, 4, 5, 6, 8, 9):
        assert f"line {n}:" in err[0]
    assert "line 1:" not in err[0] and "line 10:" not in err[0]
    assert list(tmp_path.iterdir()) == [] and "loaded" not in p.stderr.lower()


@pytest.mark.model
@pytest.mark.parametrize("method,metric", [("dpo", "rewards/margins"), ("orpo", "log_odds_ratio")])
def test_one_real_preference_step(tmp_path, method, metric):
    out = tmp_path / method
    p = _run("recipe/train_preference.py", ["--model", SMALL, "--pairs", str(FIX / "preference_pairs.jsonl"),
                                            "--out", str(out), "--method", method, "--max-steps", "1",
                                            "--grad-accum", "2", "--warmup-ratio", "0", "--lr", "1e-3", "--quiet"])
    assert p.returncode == 0, p.stderr[-3000:]
    res = json.loads((out / "result.json").read_text())
    assert res["preference"]["method"] == method and res["stats"]["optimizer_steps"] == 1
    assert res["stats"]["micro_batches"] == 2 and res["pairs"]["count"] == 2 and len(res["pairs"]["sha256"]) == 64
    assert "format" not in res["train_config"] and res["identity"]["preference"]["method"] == method
    rows = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and metric in rows[0] and rows[0]["lr"] == pytest.approx(1e-3)
    from safetensors.torch import load_file
    weights = load_file(str(out / "adapter_model.safetensors"))
    assert any(float(w.abs().sum()) > 0 for k, w in weights.items() if "lora_B" in k)   # B starts at zero
    again = _run("recipe/train_preference.py", ["--model", SMALL, "--pairs", str(FIX / "preference_pairs.jsonl"),
                                                "--out", str(out), "--method", method, "--max-steps", "1",
                                                "--grad-accum", "2", "--warmup-ratio", "0", "--lr", "1e-3", "--quiet"])
    assert again.returncode == 0 and "already trained" in again.stdout


@pytest.mark.model
def test_dpo_uses_the_base_model_under_the_adapter_as_its_reference(tmp_path):
    """No second model: TRL's DPOTrainer with a peft adapter and no ref_model keeps ref_model None."""
    import torch
    trainer_script = load_script("recipe/train_preference.py")
    from common.lora import TrainConfig
    from common.models import load_model, resolve_model
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model, tok = load_model(resolve_model(SMALL))
        ds = trainer_script.preference_dataset(load_preferences(FIX / "preference_pairs.jsonl"), "chat", "")
        cfg, pcfg = TrainConfig(max_steps=1), trainer_script.PreferenceConfig(method="dpo", beta=0.2)
        trainer = trainer_script.make_trainer(model, tok, ds, cfg, pcfg, tmp_path, False)
        assert trainer.ref_model is None and trainer.args.beta == 0.2
        assert sum(1 for n, _ in trainer.model.named_parameters() if "lora_" in n) > 0
    finally:
        torch.set_num_threads(threads)
