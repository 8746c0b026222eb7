"""Prompt strategies (common/strategies.py): rendering, post-processing, exemplars, and the
reflexion round with a scripted stand-in model (no real model; the sandbox is real)."""
import json

import pytest
from conftest import load_script
from fake_llm import FakeLLM

from common.prompts import get_protocol
from common.results import InputError
from common.sampling import SamplingParams
from common.strategies import (ALIASES, STRATEGIES, example_feedback, get_strategy,
                               load_exemplars, strategy_hooks)


@pytest.fixture(scope="module")
def he():
    from common.benchmarks import load_tasks
    return {t["task_id"]: t for t in load_tasks("humaneval")[0]}


QWEN = get_protocol("qwen-official")
RAW = get_protocol("raw")


@pytest.mark.parametrize("name,want", [*[(s, s) for s in STRATEGIES], *ALIASES.items()])
def test_names_and_aliases(name, want):
    assert get_strategy(name, QWEN).name == want


@pytest.mark.parametrize("name,protocol,needle", [
    ("nope", QWEN, "unknown prompt strategy"),
    ("scot", RAW, "needs a chat protocol"),
    ("cgo", RAW, "needs a chat protocol"),
    ("reflexion", RAW, "needs a chat protocol"),
])
def test_bad_strategy_is_an_input_error(name, protocol, needle):
    with pytest.raises(InputError, match=needle):
        get_strategy(name, protocol)


def test_names_stops_and_budgets():
    assert get_strategy("standard", QWEN).protocol_name == "qwen-official"
    scot = get_strategy("scot", QWEN)
    assert scot.protocol_name == "qwen-official+scot" and scot.stop == () and scot.max_new_tokens == 768
    fs = get_strategy("few-shot", QWEN)
    assert fs.stop == QWEN.stop and fs.max_new_tokens == QWEN.max_new_tokens
    assert get_strategy("few-shot", RAW).stop == RAW.stop


def test_scot_and_cgo_render_and_extract(he):
    task = he["HumanEval/2"]
    llm = FakeLLM()
    for name, needle in (("scot", "sequence:"), ("cgo", "objectives")):
        text = get_strategy(name, QWEN).render(task, llm)
        assert task["prompt"].rstrip() in text and needle in text
        assert text.startswith("<|system|>" + QWEN.system) and text.endswith("<|assistant|>")  # no pre-fill
    answer = ("Input: a float. Output: its decimal part.\n- sequence: take number % 1.0\n"
              "```python\ndef truncate_number(number: float) -> float:\n    return number % 1.0\n```\nDone.")
    completion, how = get_strategy("scot", QWEN).to_completion(task, answer)
    assert how == "fenced_entry" and "return number % 1.0" in completion
    assert "Input:" not in completion


def test_few_shot_chat_and_raw(he):
    task = he["HumanEval/2"]
    exs = load_exemplars()
    chat = get_strategy("few-shot", QWEN).render(task, FakeLLM())
    assert chat.count("<|user|>") == 4 and chat.count("<|assistant|>") == 4   # 3 shots + the task (+ open turn)
    assert chat.endswith("<|assistant|>" + QWEN.prefill)
    assert all(e["solution"].strip() in chat for e in exs)
    raw = get_strategy("few-shot", RAW).render(task, None)
    assert raw.endswith(task["prompt"]) and raw.index(exs[0]["prompt"].strip()) < raw.index(task["prompt"])
    # the completion is still scored as task prompt + completion
    assert get_strategy("few-shot", RAW).to_completion(task, "    return 1.0\n") == ("    return 1.0\n", "raw")


def test_exemplars_are_correct_and_disjoint_from_humaneval(he):
    exs = load_exemplars()
    assert len(exs) == 3
    entry_points = {t["entry_point"] for t in he.values()}
    for e in exs:
        assert e["entry_point"] not in entry_points
        assert not any(e["prompt"].strip()[:60] in t["prompt"] for t in he.values())
        ns = {}
        exec(e["prompt"] + e["solution"], ns)  # our own code, not model output
        exec(e["test"], ns)


def test_bad_exemplars_file(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text(json.dumps({"id": "a", "prompt": "def f():\n"}) + "\n")
    with pytest.raises(InputError, match="missing field"):
        load_exemplars(p)
    with pytest.raises(InputError, match="no such file"):
        load_exemplars(tmp_path / "none.jsonl")


def _job(run_dir, params=None, llm=None):
    """An evaluation job around a stand-in model (for the strategy hooks)."""
    from common.cli import RunOptions
    from common.evaluation import EvalJob, EvalModel, Invocation
    return EvalJob(run_dir, [], {}, QWEN, params, EvalModel({}, lambda: llm), Invocation("t"),
                   RunOptions(workers=1, progress=False))


def test_strategy_hooks_shape():
    std = strategy_hooks(get_strategy("standard", QWEN), _job(".")).present()
    assert std == {"protocol_name": "qwen-official"}
    sc = strategy_hooks(get_strategy("scot", QWEN), _job(".")).present()
    assert set(sc) == {"protocol_name", "render", "to_completion"}
    rf = strategy_hooks(get_strategy("reflexion", QWEN), _job(".")).present()
    assert set(rf) == {"protocol_name", "post_generate"}


def test_example_feedback_lines():
    from common.selection import Example
    exs = [Example("(1,)", 2, "eq", "doctest", ""), Example("([1], 2)", True, "truthy", "inline", ""),
           Example("(3,)", 9, "eq", "doctest", "")]
    assert example_feedback("f", exs, "passed", ["2", "[0]", "9"]) == []
    lines = example_feedback("f", exs, "passed", ["3", "!raise IndexError", "9"])
    assert lines == ["f(1) returned 3, expected 2", "f([1], 2) raised IndexError, expected a true value"]
    assert example_feedback("f", exs, "failed", None, 'File "x"\nSyntaxError: bad')[0].endswith("SyntaxError: bad")


WRONG_0 = "def has_close_elements(numbers, threshold):\n    return False\n"
RIGHT_0 = ("def has_close_elements(numbers, threshold):\n    s = sorted(numbers)\n"
           "    return any(b - a < threshold for a, b in zip(s, s[1:]))\n")


def test_reflexion_round_and_resume(he, tmp_path):
    tasks = {t: he[t] for t in ("HumanEval/0", "HumanEval/38")}
    rows = [{"task_id": "HumanEval/0", "sample_index": 0, "completion": "\n" + WRONG_0, "raw": WRONG_0 + "```",
             "mean_logprob": -0.1},
            {"task_id": "HumanEval/0", "sample_index": 1, "completion": "\n" + RIGHT_0, "raw": RIGHT_0,
             "mean_logprob": -0.2},
            {"task_id": "HumanEval/38", "sample_index": 0, "completion": "    return s\n", "raw": "", "mean_logprob": -1}]
    seen = {}

    def respond(prompt, params, si):
        seen["prompt"] = prompt
        return "The loop compared nothing.\n```python\n" + RIGHT_0 + "```"

    strat = get_strategy("reflexion", QWEN)
    params = SamplingParams(n=1, temperature=0.0, max_new_tokens=64, stop=QWEN.stop, logprobs=True)
    llm = FakeLLM(respond)
    hook = strat.post_generate(_job(tmp_path, params, llm))
    out = hook([dict(r) for r in rows], tasks)
    assert [r["reflexion"] for r in out] == ["regenerated", "kept_passed", "no_examples"]
    assert out[0]["completion"].strip() == RIGHT_0.strip() and out[0]["first_completion"] == rows[0]["completion"]
    assert out[0]["feedback"][0].startswith("has_close_elements([1.0, 2.8, 3.0, 4.0, 5.0, 2.0], 0.3) returned False")
    assert out[1]["completion"] == rows[1]["completion"]
    # the second round saw the first answer and the failures, and no longer stops at the fence
    assert "return False" in seen["prompt"] and "Reflect" in seen["prompt"]
    assert llm.calls[0][2].stop == () and llm.calls[0][2].n == 1
    assert hook.summary()["counts"] == {"regenerated": 1, "kept_passed": 1, "no_examples": 1}
    # resume: nothing is run or generated again, the same rows come back
    again = strat.post_generate(_job(tmp_path, params, FakeLLM(None)))([dict(r) for r in rows], tasks)
    assert again == out


def test_compare_strategies_against_standard():
    ps = load_script("experiments/prompt_strategies.py")

    def res(mean, max_new):
        return {"metrics": {"pass_at_k": {"pass@1": {"mean": mean}}, "mean_new_tokens": 10.0},
                "protocol": {"name": "qwen-official"}, "sampling": {"max_new_tokens": max_new}}
    out = ps.compare({"standard": (res(0.5, 512), {"a": 1.0, "b": 0.0}),
                      "scot": (res(1.0, 768), {"a": 1.0, "b": 1.0})})
    assert "vs_standard" not in out["standard"] and out["scot"]["vs_standard"]["delta"] == 0.5
    assert (out["scot"]["vs_standard"]["a_only"], out["scot"]["vs_standard"]["b_only"]) == (0, 1)
    assert out["standard"]["sampling"]["max_new_tokens"] == 512 and out["scot"]["sampling"]["max_new_tokens"] == 768
