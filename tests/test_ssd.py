"""SSD verdict, inputs, held-out rules and the round-2 gate (common/ssd.py): table-driven, no model."""
import json
from pathlib import Path

import pytest

from common.results import InputError
from common.ssd import (ARMS, REQUIRED_INPUTS, arm_adapters, check_declared_n, check_heldout_size, check_inputs,
                        decide, finished_run, justification, load_thresholds, merge_inputs, missing_inputs,
                        precondition_numbers, round2_gate)

REPO = Path(__file__).resolve().parent.parent
PRE = load_thresholds()["precondition"]


def _full_inputs():
    return json.loads((REPO / "data" / "ssd_inputs_qwen05b.json").read_text())


def _outcomes(groups):
    """groups: [(number of tasks, passing samples of 16)] -> task -> verdicts."""
    out, i = {}, 0
    for n_tasks, c in groups:
        for _ in range(n_tasks):
            out[f"t{i}"] = [True] * c + [False] * (16 - c)
            i += 1
    return out


# --------------------------------------------------------------------------------------------
# Inputs: each missing field refused by name
# --------------------------------------------------------------------------------------------


def test_committed_inputs_are_complete():
    inputs = _full_inputs()
    assert missing_inputs(inputs) == []
    check_inputs(inputs)
    assert inputs["heldout"]["n"] == 206


@pytest.mark.parametrize("field", REQUIRED_INPUTS)
def test_each_missing_input_is_refused_by_name(field):
    inputs = _full_inputs()
    del inputs[field]
    with pytest.raises(InputError) as e:
        check_inputs(inputs)
    assert str(e.value).split("missing: ")[1].split(" (declare")[0] == field


@pytest.mark.parametrize("sub", ["sets", "n", "contamination_log"])
def test_heldout_subfields_are_required(sub):
    inputs = _full_inputs()
    inputs["heldout"][sub] = "" if sub != "n" else None
    assert missing_inputs(inputs) == [f"heldout.{sub}"]


def test_all_inputs_missing_names_all_six_and_empty_values_count_as_missing():
    with pytest.raises(InputError) as e:
        check_inputs({"model": "", "budget": {}, "comparator": None})
    for f in REQUIRED_INPUTS:
        assert f in str(e.value)
    assert missing_inputs({**_full_inputs(), "heldout": "206 problems"}) == [
        "heldout (must be an object with sets and contamination_log)"]
    assert missing_inputs({**_full_inputs(), "heldout": {**_full_inputs()["heldout"], "sets": [{}]}}) == [
        "heldout.sets[0].bench"]


def test_flags_replace_file_fields():
    merged = merge_inputs({"model": {"name": "a"}, "heldout": {"n": 1}}, {"budget": "2 cores", "model": None,
                                                                       "heldout.n": 5})
    assert merged == {"model": {"name": "a"}, "heldout": {"n": 5}, "budget": "2 cores"}


def test_small_heldout_refused_unless_acknowledged():
    assert check_heldout_size(206, 200, False) is None
    with pytest.raises(InputError, match="164 problems, fewer than the 200"):
        check_heldout_size(164, 200, False)
    assert "acknowledged" in check_heldout_size(164, 200, True)
    with pytest.raises(InputError, match="declare a held-out n of 206"):
        check_declared_n(206, 164, limited=False)
    check_declared_n(206, 4, limited=True)


# --------------------------------------------------------------------------------------------
# Decision table
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("groups,verifier,label", [
    ([(100, 0)], True, "GO-OTHER (SFT-external)"),            # floor: never sampled correctly
    ([(95, 16), (5, 0)], True, "GO-OTHER (do-nothing)"),      # ceiling
    ([(50, 16), (50, 0)], True, "GO-OTHER (GRPO)"),           # no gap, a verifier exists
    ([(50, 16), (50, 0)], False, "GO-OTHER (SFT-external)"),  # no gap, no verifier
    ([(100, 4)], True, "GO-VERIFIER-AWARE-SSD"),               # gap, most samples wrong, tests exist
    ([(100, 4)], False, "GO-SSD"),                             # gap, no verifier
    ([(100, 10)], True, "GO-SSD"),                             # gap, most samples right
])
def test_decision_table(groups, verifier, label):
    v = decide(precondition_numbers(_outcomes(groups), PRE), PRE, verifier)
    assert v["label"] == label
    assert v["verdict"] in ("GO-SSD", "GO-VERIFIER-AWARE-SSD", "GO-OTHER")
    assert (v["other"] is not None) == (v["verdict"] == "GO-OTHER")


def test_gap_below_five_pp_is_no_go_and_the_threshold_is_inclusive():
    def numbers(gap_pp):
        row = {"overall": {"gap_pp": gap_pp, "gap_ci_pp": (gap_pp - 1, gap_pp + 1), "pass@1": 0.6, "pass@8": 0.6 + gap_pp / 100},
               "slices": {"hard": {"n_tasks": 0}, "medium": {"n_tasks": 10, "gap_pp": gap_pp}, "easy": {"n_tasks": 0}}}
        return {"by_k": {"8": row}, "pass_at_k": {"pass@16": {"mean": 0.7}}}
    assert decide(numbers(4.99), PRE, True)["verdict"] == "GO-OTHER"
    assert decide(numbers(5.0), PRE, False)["verdict"] == "GO-SSD"
    assert decide(numbers(5.0), PRE, False)["robust"] is False        # interval reaches below 5
    assert decide(numbers(7.0), PRE, False)["robust"] is True


def test_per_slice_disagreement_is_named_both_ways():
    # overall GO (hard tasks carry a big gap), the easy slice has none
    nums = precondition_numbers(_outcomes([(50, 16), (50, 4)]), PRE)
    v = decide(nums, PRE, False)
    assert v["verdict"] == "GO-SSD" and v["slice_disagreement"] == ["easy"] and v["scope"] == ["hard"]
    text = justification(v, nums, "100 problems", None)
    assert "Slices disagree" in text and "easy 0.0 pp (n=50)" in text and "help on hard only" in text
    # overall NO-GO, but the hard slice clears the threshold on its own
    nums = precondition_numbers(_outcomes([(95, 16), (5, 2)]), PRE)
    v = decide(nums, PRE, True)
    assert v["verdict"] == "GO-OTHER" and v["slice_disagreement"] == ["hard"] and v["scope"] == ["hard"]


def test_numbers_need_sixteen_samples_and_carry_intervals():
    short = {"a": [True] * 3 + [False] * 5}
    with pytest.raises(InputError, match="pass@16 needs >= 16"):
        precondition_numbers(short, PRE)
    nums = precondition_numbers(_outcomes([(10, 4), (10, 12)]), PRE)
    for k in ("pass@1", "pass@4", "pass@8", "pass@16"):
        lo, hi = nums["pass_at_k"][k]["ci"]
        assert lo <= nums["pass_at_k"][k]["mean"] <= hi
    assert set(nums["by_k"]) == {"4", "8", "16"}
    assert nums["slices"]["hard"]["n_tasks"] == 10 and nums["slices"]["easy"]["n_tasks"] == 10


def test_justification_states_the_hypothesis_and_the_small_set_caveat():
    nums = precondition_numbers(_outcomes([(20, 4)]), PRE)
    v = decide(nums, PRE, True)
    text = justification(v, nums, "20 problems", "the held-out set has 20 problems, fewer than 200")
    assert text.startswith("SSD bets that the base model already samples correct completions")
    assert "GO-VERIFIER-AWARE-SSD" in text and "Caveat: the held-out set has 20 problems" in text


# --------------------------------------------------------------------------------------------
# Round-2 gate, arms, finished runs
# --------------------------------------------------------------------------------------------


def _eval(delta, base_ci, arm_ci):
    return {"arms": {"minimal": {"greedy": {"comparison": {"delta": delta}, "base_pass@1": {"ci": base_ci},
                                            "pass@1": {"ci": arm_ci}}}}}


GATE = load_thresholds()["round2_gate"]
BAT_OK = {"arms": {"minimal": {"all_within": True, "alerts": []}}}


@pytest.mark.parametrize("ev,bat,passed,failed", [
    (_eval(0.20, (0.40, 0.50), (0.55, 0.70)), BAT_OK, True, []),
    (_eval(0.03, (0.40, 0.50), (0.55, 0.70)), BAT_OK, False, ["lift"]),
    (_eval(0.20, (0.40, 0.60), (0.55, 0.70)), BAT_OK, False, ["non_overlapping_ci"]),
    (_eval(0.20, (0.40, 0.50), (0.55, 0.70)), {"arms": {"minimal": {"all_within": False, "alerts": ["length"]}}},
     False, ["battery"]),
    (_eval(0.20, (0.40, 0.50), (0.55, 0.70)), None, False, ["battery"]),
    (None, BAT_OK, False, ["lift", "non_overlapping_ci"]),
])
def test_round2_gate(ev, bat, passed, failed):
    g = round2_gate("minimal", ev, bat, GATE)
    assert g["passed"] is passed
    assert [c["name"] for c in g["conditions"] if not c["ok"]] == failed


def test_arm_adapters(tmp_path):
    (tmp_path / "result.json").write_text(json.dumps({"arms": {"minimal": {"adapter": "A"}, "verifier": {"adapter": None}}}))
    assert arm_adapters(str(tmp_path), None) == {"base": None, "minimal": "A"}
    assert arm_adapters(None, "verifier=B") == {"base": None, "verifier": "B"}
    for bad in ("base=X", "mixed=Y", "minimal="):
        with pytest.raises(InputError):
            arm_adapters(None, bad)
    with pytest.raises(InputError, match="no SSD arm"):
        arm_adapters(None, None)
    assert ARMS == ("minimal", "verifier")


def test_finished_run_needs_same_config_result_and_every_verdict(tmp_path):
    cfg = {"sampling": {"n": 2}, "task_ids": ["a"], "model": {"ref": "m"}}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    rows = [{"task_id": "a", "completion": "", "passed": True}, {"task_id": "a", "completion": "", "passed": False}]
    (tmp_path / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert not finished_run(tmp_path, cfg)                     # no result.json yet
    (tmp_path / "result.json").write_text("{}")
    assert finished_run(tmp_path, cfg)
    assert not finished_run(tmp_path, {**cfg, "model": {"ref": "other"}})
    (tmp_path / "samples.jsonl").write_text(json.dumps(rows[0]) + "\n")
    assert not finished_run(tmp_path, cfg)                     # a sample missing
