"""The SSD report (common/ssd_report.py, experiments/ssd_report.py): no pass@1 delta without the
battery, the Pareto comparison, the cost ledger, T_eval selection and arm comparisons (common/ssd_eval.py)."""
import json

import pytest

from common.results import InputError
from common.ssd_eval import best_temperature, compare_arm, deltas_for_battery, slices_of
from common.ssd_report import check_battery_beside, cost_ledger, pareto, tuning_rows
from conftest import load_script


def test_no_pass1_delta_without_the_battery():
    ev = {"arms": {"minimal": {}, "verifier": {}}}
    with pytest.raises(InputError, match="arm\\(s\\) minimal, verifier"):
        check_battery_beside(ev, None)
    with pytest.raises(InputError, match="arm\\(s\\) verifier"):
        check_battery_beside(ev, {"arms": {"minimal": {}}})
    check_battery_beside(ev, {"arms": {"minimal": {}, "verifier": {}}})
    check_battery_beside(None, None)                   # nothing evaluated: nothing to show


def test_report_script_refuses_eval_without_battery(tmp_path, capsys):
    ev = tmp_path / "ev"
    ev.mkdir()
    (ev / "result.json").write_text(json.dumps({"arms": {"minimal": {}}, "models": {}}))
    rep = load_script("experiments/ssd_report.py")
    rc = rep.main(["--inputs", "data/ssd_inputs_qwen05b.json", "--eval", str(ev), "--out-dir", str(tmp_path)])
    assert rc == 2 and "without the anti-collapse battery" in capsys.readouterr().err
    assert not (tmp_path / "ssd_report").exists()


@pytest.mark.parametrize("a,b,expect", [((1, 5), (2, 3), "dominates"), ((2, 3), (1, 5), "dominated"),
                                        ((1, 3), (2, 5), "trade-off"), ((1, 5), (1, 5), "trade-off"),
                                        ((1, 5), (1, 4), "dominates")])
def test_pareto(a, b, expect):
    assert pareto(a, b) == expect


def test_cost_ledger_rows_cpu_hours_and_pareto():
    md = cost_ledger([{"name": "SSD minimal", "seconds": 3600, "gain_pp": 4.0, "gain_text": "+4.0 pp"},
                      {"name": "evaluation", "seconds": 1800}],
                     {"name": "repair pairs", "seconds": 7200, "gain_pp": 6.0, "gain_text": "+6.0 pp"}, cpus=2)
    assert "| SSD minimal | 1.00 | 2.00 | +4.0 pp | +2.00 | trade-off |" in md
    assert "| evaluation | 0.50 | 1.00 | — | — | — |" in md
    assert "| comparator: repair pairs | 2.00 | 4.00 | +6.0 pp | +1.50 | — |" in md


def test_best_temperature_ties_go_low():
    grid = [{"t": 0.8, "pass@1": {"mean": 0.5}}, {"t": 0.2, "pass@1": {"mean": 0.5}}, {"t": 0.4, "pass@1": {"mean": 0.4}}]
    assert best_temperature(grid) == 0.2
    assert best_temperature([{"t": 1.0, "pass@1": {"mean": 0.6}}] + grid) == 1.0
    with pytest.raises(InputError):
        best_temperature([])


def test_compare_arm_paired_overall_and_per_slice():
    base = {"greedy": {"a": [True], "b": [False], "c": [False], "d": [True]},
            "sampled": {"a": [True, True], "b": [False, False], "c": [True, False], "d": [True, True]}}
    arm = {"greedy": {"a": [True], "b": [True], "c": [True], "d": [True]},
           "sampled": {"a": [True, True], "b": [True, False], "c": [False, False], "d": [True, True]}}
    sl = slices_of(base["sampled"])
    assert sl == {"a": "easy", "b": "hard", "c": "medium", "d": "easy"}
    res = compare_arm(base, arm, sl, [1, 2])
    assert res["greedy"]["comparison"]["delta"] == pytest.approx(0.5)
    assert res["greedy"]["comparison"]["gained"] == ["b", "c"]
    assert res["by_slice"]["hard"]["n_tasks"] == 1 and res["by_slice"]["hard"]["greedy"]["delta"] == 1.0
    assert res["sampled"]["pass@2"]["comparison"]["delta"] == pytest.approx(0.0)
    assert deltas_for_battery(res, 2) == (pytest.approx(0.0), pytest.approx(0.0))
    assert deltas_for_battery(res, 8) == (pytest.approx(0.0), None)
    with pytest.raises(InputError, match="different tasks"):
        compare_arm(base, {**arm, "greedy": {"a": [True]}}, sl, [1])


def test_predeclaration_check_needs_the_same_file_committed_before_training():
    from common.ssd import load_thresholds
    rep = load_script("experiments/ssd_report.py")
    th = load_thresholds()
    assert rep.predeclared(th, None)["ok"] is None
    head = {"commit": "0" * 40, "dirty": False}
    changed = rep.predeclared(th, {"git": head, "thresholds": {"sha256": "f" * 64}})
    assert changed["ok"] is False and changed["same_sha256"] is False and "NOT SHOWN" in changed["text"]
    dirty = rep.predeclared(th, {"git": {**head, "dirty": True}, "thresholds": {"sha256": th["_sha256"]}})
    assert dirty["ok"] is False and dirty["same_sha256"] is True and "uncommitted" in dirty["text"]


@pytest.mark.parametrize("stage, secs", [
    ({"counts": {"generated": 2400, "generated_this_invocation": 1200}, "seconds": 100.0}, 200.0),  # resumed: scaled
    ({"counts": {"generated": 2400, "generated_this_invocation": 2400}, "seconds": 100.0}, 100.0),  # one invocation
    ({"counts": {"generated": 2400, "generated_this_invocation": 0}, "seconds": 1.0}, 1.0),  # nothing new: as timed
    ({"counts": {"generated": 2400}, "seconds": 100.0}, 100.0),  # older runs: as recorded
    ({"counts": {"train": 5}, "seconds": 7.5}, 7.5),  # not a generation stage
    ({}, 0.0),
])
def test_stage_seconds_scales_a_resumed_generation_stage(stage, secs):
    rep = load_script("experiments/ssd_report.py")
    assert rep.stage_seconds(stage) == pytest.approx(secs)


@pytest.mark.parametrize("timings, n_tasks, secs, estimated", [
    ({"generation_s_all_invocations": 600.0, "tasks_generated_untimed": 0, "scoring_s": 10.0}, 164, 610.0, False),
    ({"generation_s_all_invocations": 600.0, "tasks_generated_untimed": 100, "scoring_s": 0.0}, 200, 1200.0, True),
    ({"generation_s": 50.0, "scoring_s": 5.0}, 10, 55.0, False),  # older runs: one invocation, as recorded
    ({"generation_s_all_invocations": 0.0, "tasks_generated_untimed": 10, "scoring_s": 1.0}, 10, 1.0, True),  # none timed
    ({}, 0, 0.0, False),
])
def test_run_seconds_costs_untimed_tasks_at_the_timed_rate(timings, n_tasks, secs, estimated):
    rep = load_script("experiments/ssd_report.py")
    got = rep.run_seconds({"timings": timings, "metrics": {"n_tasks": n_tasks}})
    assert got[0] == pytest.approx(secs) and got[1] is estimated


def _tuning(pass1: dict) -> dict:
    grid = [{"t": t, "pass@1": {"mean": v}} for t, v in pass1.items()]
    return {"grid": grid, "t_eval": best_temperature(grid), "val_n": 41, "val_samples": 4}


@pytest.mark.parametrize("base, arm, edge", [
    ({0.2: 0.909, 0.6: 0.89, 1.0: 0.823}, {0.2: 0.80, 0.6: 0.85, 1.0: 0.70}, "base"),
    ({0.2: 0.5, 0.6: 0.6, 1.0: 0.4}, {0.2: 0.5, 0.6: 0.55, 1.0: 0.4}, None),
    ({0.2: 0.5, 0.6: 0.6, 1.0: 0.7}, {0.2: 0.8, 0.6: 0.6, 1.0: 0.4}, "base, minimal"),
])
def test_tuning_rows_show_the_grid_and_flag_an_edge_optimum(base, arm, edge):
    ev = {"models": {"base": {"tuning": _tuning(base)}, "minimal": {"tuning": _tuning(arm)}}}
    text = "\n".join(tuning_rows(ev))
    assert "41 validation prompts" in text and "4 samples each" in text
    assert "| base | " + " | ".join(f"{100 * v:.1f}" for v in base.values()) in text
    assert ("edge of the grid for " + edge in text) if edge else ("edge" not in text)


def _samples(d, rows):
    d.mkdir(parents=True)
    (d / "samples.jsonl").write_text("".join(json.dumps({"task_id": t, "sample_index": i, "completion": "", "passed": v}) + "\n"
                                             for t, vs in rows.items() for i, v in enumerate(vs)))


def test_difficulty_slices_come_from_independent_samples_when_given(tmp_path):
    ev = load_script("evals/ssd_eval.py")
    base = {"a": [True, True], "b": [False, False]}
    sl, src = ev.difficulty_slices(None, base, (0.3, 0.7))
    assert sl == {"a": "easy", "b": "hard"} and "regression to the mean" in src
    _samples(tmp_path / "pre" / "humaneval", {"a": [False] * 4, "x": [True] * 4})
    _samples(tmp_path / "pre" / "problems", {"b": [True, True, False, True]})
    sl, src = ev.difficulty_slices(str(tmp_path / "pre"), base, (0.3, 0.7))
    assert sl == {"a": "hard", "b": "easy"} and "at least 4 per problem" in src
    with pytest.raises(InputError, match="no samples for 1 held-out problems"):
        ev.difficulty_slices(str(tmp_path / "pre"), {**base, "c": [True]}, (0.3, 0.7))
