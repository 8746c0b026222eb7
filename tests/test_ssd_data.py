"""SSD training data (common/ssd_data.py): the empty/stub and shortest-10% filter, the verifier
arm, records kept per arm, the declared mix, the pool split and round 2's fresh pool."""
import pytest

from common.prompts import get_protocol
from common.results import InputError
from common.ssd_data import (anchor_records, fresh_only, minimal_filter, mix, records, response_flaw, split_pool,
                             verifier_filter)

TASK = {"task_id": "p1", "prompt": 'def f(x):\n    """Double x."""\n', "entry_point": "f",
        "canonical_solution": "    return 2 * x\n"}
TASKS = {"p1": TASK}


@pytest.mark.parametrize("raw,completion,flaw", [
    ("", "", "empty"),
    ("   \n\t", "", "empty"),
    ("```python\ndef f(x):\n    pass\n```", "\ndef f(x):\n    pass\n", "stub"),
    ("```python\ndef f(x):\n    ...\n```", "\ndef f(x):\n    ...\n", "stub"),
    ("```python\ndef f(x):\n    raise NotImplementedError\n```", "\ndef f(x):\n    raise NotImplementedError\n", "stub"),
    ("```python\ndef f(x):\n    return 0\n```", "\ndef f(x):\n    return 0\n", "stub"),
    ("```python\ndef f(x):\n    '''doc'''\n    return x\n```", "\ndef f(x):\n    '''doc'''\n    return x\n", "stub"),
    ("    pass", "    pass\n", "stub"),                           # a body alone under the prompt's def
    ("```python\ndef f(x):\n    return 2 * x\n```", "\ndef f(x):\n    return 2 * x\n", None),
    ("    return x + x", "    return x + x\n", None),
    ("I think you should double it.", "", None),                # no code: kept, counted by extraction
    ("```python\ndef f(x) return\n```", "\ndef f(x) return\n", None),   # unparsable: not a stub
    ("```python\ndef g(y):\n    return y\n```", "\ndef g(y):\n    return y\n", "stub"),  # f itself never written
])
def test_response_flaw(raw, completion, flaw):
    assert response_flaw(raw, completion, TASK) == flaw


def _row(i, n_tokens, raw="```python\ndef f(x):\n    return 2 * x\n```", passed=False):
    return {"task_id": "p1", "sample_index": i, "raw": raw, "completion": "\ndef f(x):\n    return 2 * x\n",
            "n_tokens": n_tokens, "passed": passed, "extraction": "fenced_entry"}


def test_minimal_filter_drops_empty_stubs_then_the_shortest_tenth():
    rows = [_row(i, 10 + i) for i in range(20)]
    rows += [{**_row(20, 1), "raw": "", "completion": ""},
             {**_row(21, 2), "raw": "```python\ndef f(x):\n    pass\n```", "completion": "\ndef f(x):\n    pass\n"}]
    kept, c = minimal_filter(rows, TASKS, 0.10)
    assert c["dropped_empty"] == 1 and c["dropped_stub"] == 1
    assert c["dropped_shortest"] == 2                       # floor(0.1 * 20)
    assert [r["sample_index"] for r in kept] == list(range(2, 20))  # the two shortest (10, 11 tokens) gone
    assert c["kept"] == 18 and c["min_kept_length"] == 12


def test_minimal_filter_ties_go_by_order_and_no_correctness_filter():
    rows = [_row(i, 5, passed=(i % 2 == 0)) for i in range(10)]
    kept, c = minimal_filter(rows, TASKS, 0.10)
    assert [r["sample_index"] for r in kept] == list(range(1, 10))
    assert any(not r["passed"] for r in kept)                # wrong samples stay in the minimal arm
    assert minimal_filter(rows, TASKS, 0.0)[1]["kept"] == 10
    assert minimal_filter(rows[:9], TASKS, 0.10)[1]["dropped_shortest"] == 0   # floor(0.9)
    lengths = [{"task_id": "p1", "raw": "x" * n, "completion": ""} for n in (5, 1, 3)]   # no n_tokens: characters
    assert [len(r["raw"]) for r in minimal_filter(lengths, TASKS, 0.5)[0]] == [5, 3]
    with pytest.raises(InputError):
        minimal_filter(rows, TASKS, 1.0)


def test_verifier_filter_keeps_passing_samples_only():
    rows = [_row(0, 9, passed=True), _row(1, 9), _row(2, 9, passed=True),
            {**_row(3, 9, passed=True), "raw": "", "completion": ""}]
    kept, c = verifier_filter(rows, TASKS)
    assert [r["sample_index"] for r in kept] == [0, 2]
    assert c["acceptance_rate"] == 0.5 and c["prompts_with_a_kept_sample"] == 1
    with pytest.raises(InputError, match="not scored"):
        verifier_filter([{"task_id": "p1", "raw": "x"}], TASKS)


def test_records_are_the_protocol_conversation_plus_the_raw_sample_and_carry_their_arm():
    he = get_protocol("he-chat")
    rec = records([_row(0, 9)], TASKS, he, "minimal")[0]
    assert rec["arm"] == "minimal"
    assert rec["messages"][:-1] == he.messages(TASK)
    assert rec["messages"][-1] == {"role": "assistant", "content": _row(0, 9)["raw"]}
    qo = get_protocol("qwen-official")
    assert records([_row(0, 9)], TASKS, qo, "verifier")[0]["messages"][-1]["content"].startswith("```python\n")
    a = anchor_records([TASK], he)[0]
    assert a["arm"] == "anchor" and "return 2 * x" in a["messages"][-1]["content"]


def test_mix_ratio_is_declared_and_met():
    recs = [{"task_id": f"s{i}", "arm": "minimal"} for i in range(90)]
    anchors = [{"task_id": f"a{i}", "arm": "anchor"} for i in range(50)]
    out, c = mix(recs, anchors, 0.10, seed=0)
    assert c["anchors"] == 10 and len(out) == 100 and abs(c["mix_ratio_actual"] - 0.10) < 1e-9
    assert out[:90] == recs
    assert mix(recs, anchors, 0.0, 0)[1]["anchors"] == 0
    assert mix(recs, anchors, 0.10, 0)[0] == mix(recs, anchors, 0.10, 0)[0]     # seeded
    with pytest.raises(InputError, match="needs 90 anchor"):
        mix(recs, anchors, 0.5, 0)


def test_split_pool_is_deterministic_and_disjoint():
    probs = [{"id": f"p{i}", "reference": f"def f():\n    return {i}\n"} for i in range(40)]
    train, val = split_pool(probs, 0.25, seed=3)
    assert len(val) == 10 and len(train) == 30
    assert not {p["id"] for p in train} & {p["id"] for p in val}
    assert split_pool(probs, 0.25, 3) == (train, val)
    assert split_pool(probs, 0.25, 4)[1] != val
    assert len(split_pool(probs[:3], 0.1, 0)[1]) == 1             # a positive fraction keeps >= 1
    assert split_pool(probs, 0.0, 0) == (probs, [])


def test_fresh_only_drops_round1_ids_and_same_references():
    old = [{"id": "a", "reference": "def f():\n    return 1\n"}]
    new = [{"id": "a", "reference": "def g():\n    return 2\n"},
           {"id": "b", "reference": "def f():\n    # same code\n    return 1\n"},
           {"id": "c", "reference": "def h():\n    return 3\n"}]
    fresh, dropped = fresh_only(new, old)
    assert [p["id"] for p in fresh] == ["c"] and dropped == 2
