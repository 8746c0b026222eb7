"""Test-time sampling (common/tts_*.py and the tts/, experiments/, figures/ scripts): the summary
numbers recomputed independently, the SSD verdict rule, the whole code and math pipelines with a
scripted stand-in model (real sandbox), resume, HumanEval+ re-scoring, script contracts, and one
tiny real-model smoke run."""
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import load_script
from fake_llm import FakeLLM

from common.metrics import ks_for
from common.selection import Candidates
from common.tts_code import TestGenConfig
from common.tts_summary import (candidates_from_rows, gap_recovered, proportion, selection_curve, ssd_precondition,
                                tts_summary)

REPO = Path(__file__).resolve().parent.parent
FIX = REPO / "tests" / "fixtures"


# --------------------------------------------------------------------------------------------
# pure summaries
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n,want", [(1, [1]), (2, [1, 2]), (3, [1, 2, 3]), (10, [1, 2, 4, 5, 8, 10]),
                                    (12, [1, 2, 4, 5, 8, 10, 12]), (64, [1, 2, 4, 5, 8, 10, 16, 20, 32, 50, 64])])
def test_ks_for(n, want):
    assert ks_for(n) == want


def test_proportion_and_gap():
    p = proportion({"a": 1.0, "b": 0.0, "c": 1.0})
    assert p["passed_tasks"] == 2 and p["ci_method"] == "wilson" and p["ci"][0] < 2 / 3 < p["ci"][1]
    q = proportion({"a": 0.5, "b": 1.0})
    assert q["mean"] == 0.75 and q["ci_method"].startswith("bootstrap") and "passed_tasks" not in q
    assert gap_recovered(0.5, 0.4, 0.6) == pytest.approx(0.5)
    assert gap_recovered(0.5, 0.5, 0.5) is None
    assert gap_recovered(0.3, 0.4, 0.6) == pytest.approx(-0.5)


def _outcomes(rates, n=8):
    return {f"t{i}": [j < round(r * n) for j in range(n)] for i, r in enumerate(rates)}


@pytest.mark.parametrize("rates,k,threshold,verdict,slices", [
    # pass@2 - pass@1 = 0.786 - 0.5 per task: 28.6 pp
    ([0.5, 0.5], 2, 5.0, "GO", "hard — (n=0); medium 28.6 pp (n=2); easy — (n=0)"),
    # all-or-nothing tasks: no gap at all
    ([0.0, 1.0], 4, 5.0, "NO-GO", "hard 0.0 pp (n=1); medium — (n=0); easy 0.0 pp (n=1)"),
    # floor: SSD cannot amplify what is never sampled
    ([0.0, 0.0, 0.0], 4, 5.0, "NO-GO", "hard 0.0 pp (n=3); medium — (n=0); easy — (n=0)"),
])
def test_ssd_verdicts(rates, k, threshold, verdict, slices):
    r = ssd_precondition(_outcomes(rates), k=k, threshold_pp=threshold)
    assert r["verdict"] == verdict and r["k"] == k and r["line"].endswith(f"→ {verdict}; by slice: {slices}")
    assert ("→ " + verdict) in r["line"]


def test_ssd_threshold_is_inclusive_and_slices():
    # one task with 1 of 2 passing: pass@2 - pass@1 = 1 - 0.5 = 50 pp; nine tasks at 0 or 1: no gap
    out = {"mid": [True, False], **{f"z{i}": [False, False] for i in range(5)}, **{f"o{i}": [True, True] for i in range(4)}}
    r = ssd_precondition(out, threshold_pp=5.0)
    assert r["k"] == 2                                          # n=2 < 4: k = n
    assert r["overall"]["gap_pp"] == pytest.approx(5.0)         # 50 pp / 10 tasks, exactly the threshold
    assert r["verdict"] == "GO" and r["robust"] is False        # the interval reaches down to 0
    assert {s: b["n_tasks"] for s, b in r["slices"].items()} == {"hard": 5, "medium": 1, "easy": 4}
    assert r["slices"]["medium"]["gap_pp"] == pytest.approx(50.0) and r["slices"]["hard"]["verdict"] == "NO-GO"
    r2 = ssd_precondition(out, threshold_pp=5.01)
    assert r2["verdict"] == "NO-GO" and "< 5.01 pp → NO-GO" in r2["line"]
    assert r["per_task"]["mid"] == {"pass@1": 0.5, "pass@2": 1.0, "slice": "medium"}


def test_ssd_default_k_and_errors():
    assert ssd_precondition(_outcomes([0.5], n=10))["k"] == 8
    assert ssd_precondition(_outcomes([0.5], n=16))["k"] == 16
    assert ssd_precondition(_outcomes([0.5], n=3))["k"] == 3
    with pytest.raises(ValueError, match="at least 2 samples"):
        ssd_precondition({"a": [True]})
    with pytest.raises(ValueError, match="must be in 2"):
        ssd_precondition(_outcomes([0.5], n=4), k=5)
    # slicing by the BASE model's rates (a trained model's outcomes, base difficulty)
    r = ssd_precondition({"a": [True, True], "b": [True, False]}, rates={"a": 0.0, "b": 1.0})
    assert r["per_task"]["a"]["slice"] == "hard" and r["per_task"]["b"]["slice"] == "easy"


def test_recompute_pass_at_k_from_a_samples_file(tmp_path):
    """Independent recomputation: pass@k straight from math.comb on a small samples.jsonl."""
    passed = {"A": [1, 0, 0, 1, 0], "B": [0, 0, 0, 0, 0], "C": [1, 1, 1, 1, 1], "D": [0, 1, 0, 0, 0]}
    path = tmp_path / "samples.jsonl"
    with open(path, "w") as f:
        for t, xs in passed.items():
            for i, x in reversed(list(enumerate(xs))):   # out of order on purpose
                f.write(json.dumps({"task_id": t, "sample_index": i, "completion": "", "passed": bool(x),
                                    "mean_logprob": -i - 1.0, "sum_logprob": -5.0 * i}) + "\n")
    from common.results import read_jsonl
    metrics, per_task = tts_summary(candidates_from_rows(read_jsonl(path)), selectors=("mean_logprob",))
    n = 5
    for k in (1, 2, 4, 5):
        want = sum(1 - math.comb(n - sum(xs), k) / math.comb(n, k) for xs in passed.values()) / len(passed)
        assert metrics["pass_at_k"][f"pass@{k}"]["mean"] == pytest.approx(want, abs=1e-12), k
    assert metrics["oracle_pass@n"]["mean"] == pytest.approx(3 / 4) and metrics["oracle_pass@n"]["label"] == "oracle_pass@5"
    assert metrics["random_expected"]["mean"] == pytest.approx((2 / 5 + 0 + 1 + 1 / 5) / 4)
    # mean_logprob picks sample 0 (highest) of every task: A pass, B fail, C pass, D fail
    assert metrics["selectors"]["mean_logprob"]["passed_tasks"] == 2
    assert [r["method"] for r in metrics["table"]] == ["random (expected)", "mean_logprob", "oracle_pass@5"]
    assert per_task["A"]["passed"] == [True, False, False, True, False]


def test_tts_summary_checks_and_greedy():
    c = [Candidates("a", [True, False], [-1, -2], [-1, -2]), Candidates("b", [False, False], [-1, -2], [-1, -2])]
    m, _ = tts_summary(c, greedy={"a": False, "b": False}, selectors=("mean_logprob",), primary="mean_logprob")
    sel = m["selectors"]["mean_logprob"]
    assert m["greedy"]["mean"] == 0 and sel["mean"] == 0.5 and sel["vs_greedy"]["delta"] == 0.5
    assert m["primary"] is sel and m["table"][0]["method"] == "greedy" and m["table"][-1]["method"] == "oracle_pass@2"
    assert sel["oracle_gap_recovered"] == pytest.approx((0.5 - 0.25) / (0.5 - 0.25))
    with pytest.raises(ValueError, match="greedy verdicts missing"):
        tts_summary(c, greedy={"a": True}, selectors=("mean_logprob",))
    with pytest.raises(ValueError, match="same number of samples"):
        tts_summary(c + [Candidates("c", [True], [0], [0])])
    with pytest.raises(ValueError, match="primary selector 'codet' was not computed"):
        tts_summary(c, primary="codet")


def test_selection_curve_matches_full_selection_and_estimator():
    import random
    rng = random.Random(1)
    cands = []
    for t in range(12):
        passed = [rng.random() < 0.4 for _ in range(6)]
        sigs = [("ok",) if p else (f"bad{rng.randint(0, 2)}",) for p in passed]
        cands.append(Candidates(f"t{t}", passed, [rng.random() for _ in passed], [0.0] * 6, signatures=sigs))
    curve = selection_curve(cands, [1, 3, 6], selectors=("behaviour_majority", "mean_logprob"), repeats=10)
    full, _ = tts_summary(cands, selectors=("behaviour_majority", "mean_logprob"))
    assert curve[6]["selectors"]["behaviour_majority"]["mean"] == pytest.approx(full["selectors"]["behaviour_majority"]["mean"])
    assert curve[6]["oracle_pass@n"] == pytest.approx(full["oracle_pass@n"]["mean"])
    assert curve[3]["oracle_pass@n"] == pytest.approx(sum(
        1 - math.comb(6 - sum(c.passed), 3) / math.comb(6, 3) for c in cands) / 12)
    # with one candidate every selector takes it: the mean verdict of the seeded single-sample
    # draws (the curve draws m=1 first, task by task, 10 repeats each, from default_rng(seed=0))
    import numpy as np
    draws = np.random.default_rng(0)
    want = sum(sum(c.passed[int(draws.choice(6, 1, replace=False)[0])] for _ in range(10)) / 10 for c in cands) / 12
    for s in ("mean_logprob", "behaviour_majority"):
        assert curve[1]["selectors"][s]["mean"] == pytest.approx(want, abs=1e-12), s
    with pytest.raises(ValueError, match="not in 1..6"):
        selection_curve(cands, [7])


# --------------------------------------------------------------------------------------------
# the pipelines with a scripted model
# --------------------------------------------------------------------------------------------

WRONG_0 = "def has_close_elements(numbers, threshold):\n    return False\n"
RIGHT_0 = ("def has_close_elements(numbers, threshold):\n    for i, a in enumerate(numbers):\n"
           "        for j, b in enumerate(numbers):\n            if i != j and abs(a - b) < threshold:\n"
           "                return True\n    return False\n")
RIGHT_0B = ("def has_close_elements(numbers, threshold):\n    s = sorted(numbers)\n"
            "    return any(b - a < threshold for a, b in zip(s, s[1:]))\n")
BROKEN = "def has_close_elements(numbers, threshold):\n    raise RuntimeError('unfinished')\n"
RIGHT_2 = "def truncate_number(number: float) -> float:\n    return number % 1.0\n"
RIGHT_38 = "def decode_cyclic(s: str):\n    return encode_cyclic(encode_cyclic(s))\n"
WRONG_38 = "def decode_cyclic(s: str):\n    return s\n"

# per task: (sample texts, mean log-probs); sample 0 is also the greedy answer
SCRIPT = {
    "has_close_elements": ([WRONG_0, RIGHT_0, RIGHT_0B, BROKEN], [-0.1, -0.5, -0.6, -0.2]),
    "truncate_number": ([RIGHT_2] * 4, [-0.3] * 4),
    "decode_cyclic": ([RIGHT_38, WRONG_38, WRONG_38, WRONG_38], [-0.9, -0.3, -0.4, -0.5]),
}
TESTS = {
    "has_close_elements": "[1.0, 2.0, 3.0], 0.5) == False\nassert has_close_elements([1.0, 1.05], 0.1) == True",
    "truncate_number": "2.25) == 0.25",
    "decode_cyclic": "'bca') == 'abc'",
}


def scripted(math_answers=None) -> FakeLLM:
    """The stand-in model: SCRIPT's answers (sample k for sample k, sample 0 when greedy), TESTS
    for test-generation requests, or ``math_answers`` (problem text -> answers)."""
    def respond(p, params, si):
        k = si if params.temperature > 0 else 0
        if math_answers is not None:
            return math_answers[next(key for key in math_answers if key in p)][k], -1.0
        entry = next(e for e in SCRIPT if f"def {e}(" in p.split("<|assistant|>")[0].split("Write ")[0]
                     or (f"`{e}`" in p))
        if "assert statements" in p:
            return TESTS[entry], -1.0
        return SCRIPT[entry][0][k], SCRIPT[entry][1][k]
    return FakeLLM(respond)


@pytest.fixture(scope="module")
def he_tasks():
    from common.benchmarks import load_tasks
    tasks = {t["task_id"]: t for t in load_tasks("humaneval")[0]}
    return [tasks[t] for t in ("HumanEval/0", "HumanEval/2", "HumanEval/38")]


def _code_run(run_dir, tasks, llm, bench="humaneval", greedy_run=None, seed_from=None):
    """A code TTS run of the four stages on the scripted model: (result, candidates)."""
    from common.cli import RunOptions
    from common.evaluation import EvalJob, EvalModel, Invocation
    from common.prompts import get_protocol
    from common.sampling import SamplingParams
    from common.strategies import get_strategy
    from common.tts_code import CodeTTSRun, execute_code, sample_code, select_code, write_code_result
    from common.tts_run import TTSSettings
    strat = get_strategy("standard", get_protocol("qwen-official"))
    params = SamplingParams(n=4, temperature=0.8, top_p=0.95, max_new_tokens=64, stop=strat.stop, logprobs=True)
    job = EvalJob(run_dir, tasks, {"name": bench, "sha256": "x"}, strat.protocol, params,
                  EvalModel({"ref": "scripted", "file_sha256": "f"}, lambda: llm), Invocation("tests/test_tts.py", []),
                  RunOptions(workers=2, progress=False))
    settings = TTSSettings.code("behaviour_majority", TestGenConfig(n=1, max_new_tokens=32), greedy_run=greedy_run)
    run = CodeTTSRun(job, strat, settings, seed_from=seed_from)
    samples = sample_code(run)
    execution = execute_code(run, samples)
    return write_code_result(run, samples, execution, select_code(run, samples, execution)), execution.cands


@pytest.fixture(scope="module")
def scripted_run(tmp_path_factory, he_tasks):
    """One scripted code TTS run shared by the tests below (they only read it)."""
    run_dir = tmp_path_factory.mktemp("tts") / "results" / "run"
    llm = scripted()
    res, cands = _code_run(run_dir, he_tasks, llm)
    return run_dir, res, cands, llm


def test_code_pipeline_with_a_scripted_model(tmp_path, he_tasks, scripted_run):
    run_dir, res, cands, llm = scripted_run
    m = res["metrics"]
    sel = m["selectors"]
    assert res["kind"] == "tts_code" and m["n_samples_per_task"] == 4
    # greedy = sample 0 of each task: HE/0 wrong, HE/2 right, HE/38 right
    assert m["greedy"]["passed_tasks"] == 2
    assert m["random_expected"]["mean"] == pytest.approx((2 / 4 + 1 + 1 / 4) / 3)
    assert m["oracle_pass@n"]["passed_tasks"] == 3 and m["oracle_pass@n"]["label"] == "oracle_pass@4"
    got = {s: [res["per_task"][t["task_id"]]["passed"][res["per_task"][t["task_id"]]["selected"][s]] for t in he_tasks]
           for s in sel}
    assert got["mean_logprob"] == [False, True, False]        # HE/0: the confident wrong answer
    assert got["behaviour_majority"] == [True, True, False]   # HE/38: three wrong answers agree
    assert got["visible_filter"] == [True, True, False]       # HE/38 has no examples: fallback
    assert got["codet"] == [True, True, True]                 # the model tests separate them
    pt = res["per_task"]
    assert pt["HumanEval/0"]["cluster"] == [0, 1, 1, None]    # a sample that only raises does not vote
    assert pt["HumanEval/38"]["how"]["visible_filter"] == "visible_fallback_logprob"
    assert pt["HumanEval/0"]["n_prompt_examples"] == 2 and pt["HumanEval/0"]["n_model_tests"] == 2
    assert sel["codet"]["how"] == {"codet": 3}
    assert sel["behaviour_majority"]["vs_greedy"]["delta"] == pytest.approx(0.0)
    assert m["ssd_precondition"]["k"] == 4 and m["ssd_precondition"]["verdict"] == "GO"
    assert [c.task_id for c in cands] == [t["task_id"] for t in he_tasks]
    assert {d for d, _, _ in llm.calls} == {"generate", "model tests"}
    for name in ("sampled/samples.jsonl", "greedy/samples.jsonl", "model_tests.jsonl", "execution.jsonl", "config.json"):
        assert (run_dir / name).is_file(), name
    # resume (a copy of the run): no generation at all, identical numbers
    import shutil
    shutil.copytree(run_dir, tmp_path / "run")
    res2, _ = _code_run(tmp_path / "run", he_tasks, FakeLLM(None))
    assert res2["metrics"]["table"] == m["table"]
    # another configuration in the same directory is refused
    from common.results import InputError
    with pytest.raises(InputError, match="different settings"):
        _code_run(tmp_path / "run", he_tasks[:2], FakeLLM(None))


def test_humaneval_plus_rescoring_reuses_generations(tmp_path, scripted_run):
    from common.benchmarks import load_tasks
    plus, info = load_tasks("humaneval_plus", limit=2, path=str(FIX / "HumanEvalPlus.jsonl"))
    src = scripted_run[0]
    res, _ = _code_run(tmp_path / "plus", plus, FakeLLM(None), bench="humaneval_plus",
                       seed_from={"sampled": src / "sampled", "greedy": src / "greedy",
                                  "model_tests": src / "model_tests.jsonl"})
    assert res["metrics"]["n_tasks"] == 2 and res["per_task"]["HumanEval/0"]["passed"] == [False, True, True, False]


def test_greedy_run_reuse_checks(tmp_path, he_tasks, scripted_run):
    from common.results import InputError
    from common.tts_run import load_greedy_run
    run = scripted_run[0]
    g, info = load_greedy_run(run / "greedy", [t["task_id"] for t in he_tasks],
                              model_info={"file_sha256": "f", "adapter_sha256": None})
    assert g == {"HumanEval/0": False, "HumanEval/2": True, "HumanEval/38": True}
    with pytest.raises(InputError, match="another model"):
        load_greedy_run(run / "greedy", ["HumanEval/0"], model_info={"file_sha256": "other"})
    cfg_path = run / "greedy" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    try:   # a greedy run of another backend is refused; a record without one (this scripted run's) is not
        cfg_path.write_text(json.dumps({**cfg, "model": {**cfg["model"], "backend_requested": "auto"}}))
        with pytest.raises(InputError, match="generated on the hf backend, this run on int8"):
            load_greedy_run(run / "greedy", ["HumanEval/0"], model_info={"file_sha256": "f", "backend": "int8"})
        load_greedy_run(run / "greedy", ["HumanEval/0"], model_info={"file_sha256": "f", "backend": "hf"})
    finally:
        cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(InputError, match="not a greedy run"):
        load_greedy_run(run / "sampled", ["HumanEval/0"])
    with pytest.raises(InputError, match="lacks 1 of the tasks"):
        load_greedy_run(run / "greedy", ["HumanEval/1"])
    with pytest.raises(InputError, match="scored on humaneval"):   # HumanEval verdicts are not HumanEval+ ones
        load_greedy_run(run / "greedy", ["HumanEval/0"], dataset={"name": "humaneval_plus", "sha256": "y"})
    # reused in a new run: greedy comes from the given directory, nothing is generated for it
    llm = scripted()
    res, _ = _code_run(tmp_path / "run2", he_tasks, llm, greedy_run=str(run / "greedy"))
    assert res["greedy_source"]["path"] == str(run / "greedy") and not (tmp_path / "run2" / "greedy").exists()
    assert all(p.temperature > 0 for _, _, p in llm.calls)


def test_math_pipeline_majority_vote(tmp_path):
    from common.math_benchmarks import load_math_tasks
    from common.cli import RunOptions
    from common.evaluation import EvalJob, EvalModel, Invocation
    from common.sampling import SamplingParams
    from common.tts_math import MathPrompt, MathTTSRun, math_bench, sample_math, select_math, write_math_result
    from common.tts_run import TTSSettings
    tasks, info = load_math_tasks("gsm8k", path=str(FIX / "gsm8k.jsonl"))
    golds = [t["answer"] for t in tasks]
    answers = {tasks[0]["problem"][:40]: ["#### 7", f"so #### {golds[0]}", f"#### {golds[0]}.", "no idea"],
               tasks[1]["problem"][:40]: [f"#### {golds[1]}", "#### 1", "#### 1", "#### 1"],
               tasks[2]["problem"][:40]: ["#### 5", "#### 6", "the answer is 8", f"#### {golds[2]}"]}
    params = SamplingParams(n=4, temperature=0.8, top_p=0.95, max_new_tokens=32, logprobs=True)
    job = EvalJob(tmp_path / "m", tasks, info, MathPrompt(math_bench("gsm8k"), "chat"), params,
                  EvalModel({"ref": "scripted"}, lambda: scripted(math_answers=answers)), Invocation("t", []),
                  RunOptions(progress=False))
    run = MathTTSRun(job, TTSSettings.math())
    samples = sample_math(run)
    cands, selection = select_math(run, samples)
    res = write_math_result(run, samples, selection)
    m = res["metrics"]
    maj = [res["per_task"][t["task_id"]]["passed"][res["per_task"][t["task_id"]]["selected"]["majority_vote"]]
           for t in tasks]
    assert maj == [True, False, False]          # 2 of 4 agree on the gold; 3 wrong agree; no majority -> first
    assert m["greedy"]["passed_tasks"] == 1 and m["oracle_pass@n"]["passed_tasks"] == 3
    assert m["extraction_counts"] == {"hash": 10, "answer_is": 1, "none": 1}   # "the answer is 8"
    rows = [json.loads(x) for x in (tmp_path / "m" / "sampled" / "samples.jsonl").read_text().splitlines()]
    assert {"answer", "extraction", "passed", "strict_passed", "faithful_passed", "completion", "gold"} <= set(rows[0])
    assert [r["strict_passed"] for r in rows[:4]] == [False, True, True, False]   # "#### g." is strict; "no idea" not
    sampled = json.loads((tmp_path / "m" / "sampled" / "result.json").read_text())
    assert sampled["metrics"]["accuracy"]["passed_samples"] == sum(r["passed"] for r in rows) == 4
    assert set(sampled["metrics"]) >= {"strict_pass_at_k", "faithful_pass_at_k", "status_counts", "check_counts"}


def test_self_consistency_and_synergy_analyses(scripted_run):
    syn = load_script("experiments/recipe_x_tts_synergy.py")
    sc = load_script("experiments/self_consistency.py")
    res = scripted_run[1]
    out = sc.analyse(res, repeats=5)
    assert out["selector"] == "behaviour_majority" and out["majority"]["mean"] == pytest.approx(2 / 3)
    assert out["curve"][4]["majority"]["mean"] == pytest.approx(2 / 3)
    p1, orc = res["metrics"]["random_expected"]["mean"], 1.0
    assert out["recovered"] == pytest.approx((2 / 3 - p1) / (orc - p1))
    # synergy: an "adapter" that fixes HE/0's greedy answer and nothing else
    adapter = json.loads(json.dumps(res))
    adapter["per_task"]["HumanEval/0"]["greedy"] = True
    adapter["metrics"]["greedy"] = {"mean": 1.0}
    s = syn.synergy(res, adapter, "behaviour_majority")
    assert s["greedy_lift"]["delta"] == pytest.approx(1 / 3)
    assert s["oracle"]["trained_tts_minus_raw_tts"]["delta"] == 0
    assert s["oracle"]["interaction"]["delta"] == pytest.approx(-1 / 3)   # TTS gains less on top of it
    assert s["selector"]["label"] == "behaviour_majority" and s["oracle"]["label"] == "oracle_pass@4"
    with pytest.raises(ValueError, match="different tasks"):
        syn.synergy(res, {**adapter, "per_task": {}}, "behaviour_majority")


def test_figures_from_results(tmp_path, scripted_run):
    plot = load_script("figures/plot.py")
    found = plot.find_results(scripted_run[0].parent)
    assert [n for n, _ in found] == ["run"]
    written = plot.plot_all(found, tmp_path / "figs")
    assert sorted(p.name for p in written) == ["pass_at_k_humaneval.png", "selectors_run.png"]
    assert all(p.stat().st_size > 1000 for p in written)


# --------------------------------------------------------------------------------------------
# script contracts
# --------------------------------------------------------------------------------------------

SCRIPTS = ["tts/tts_humaneval.py", "tts/tts_scaling.py", "tts/tts_math500.py", "tts/tts_aime.py", "tts/tts_procedural.py",
           "experiments/self_consistency.py", "experiments/sampling_sweep.py",
           "experiments/recipe_x_tts_synergy.py", "experiments/prompt_strategies.py", "figures/plot.py"]


def _run(script, *args, timeout=120):
    import os
    env = {k: v for k, v in os.environ.items() if not k.startswith("SELFIMPROVE_DATA_")}
    return subprocess.run([sys.executable, script, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          env=env)


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_and_docstring_contract(script):
    p = _run(script, "--help")
    assert p.returncode == 0, p.stderr
    doc = (REPO / script).read_text()
    assert "claim" in doc.lower() and "Full command" in doc and "Quick command" in doc
    assert "CPU cores" in doc and "Deviation" in doc
    import argparse
    parser = load_script(script).build_parser()
    for a in parser._actions:
        if not isinstance(a, argparse._HelpAction):
            assert a.help, f"{script}: {a.option_strings} has no help"


HUMANEVAL_BAD = [
    (["--n-samples", "1"], "at least 2"),
    (["--temperature", "0"], "temperature > 0"),
    (["--rerank", "codet", "--test-samples", "0"], "needs model-written tests"),
    (["--prompt-strategy", "scot", "--protocol", "raw"], "needs a chat protocol"),
    (["--prompt-strategy", "magic"], "unknown prompt strategy"),
    (["--bench", "nope"], "unknown benchmark"),
    (["--greedy-run", "/nonexistent", "--no-greedy"], "contradict"),
    (["--ssd-k", "50"], "--ssd-k"),
    (["--test-samples", "3", "--test-temperature", "0"], "greedy decoding"),
]


@pytest.mark.parametrize("script,args,needle", [("tts/tts_humaneval.py", a, n) for a, n in HUMANEVAL_BAD] + [
    ("tts/tts_math500.py", ["--data-path", "/nonexistent.jsonl"], "no such file"),
    ("tts/tts_aime.py", [], "needs a local data file"),
    ("tts/tts_scaling.py", ["--ns", "1,99"], "--ns values"),
    ("tts/tts_scaling.py", ["--benches", "humaneval,humaneval_plus"], "humaneval_plus"),
    ("experiments/sampling_sweep.py", ["--top-ps", "0,1"], "--top-ps"),
    ("experiments/prompt_strategies.py", ["--strategies", "scot", "--protocol", "raw"], "needs a chat protocol"),
    ("experiments/self_consistency.py", ["--from-run", "/nonexistent"], "no result.json"),
    ("experiments/recipe_x_tts_synergy.py", [], "give --adapter"),
    ("experiments/recipe_x_tts_synergy.py", ["--base-run", "/x"], "go together"),
    ("figures/plot.py", ["--results-dir", "/nonexistent"], "does not exist"),
    ("figures/plot.py", ["--only", "pie"], "unknown kind"),
])
def test_bad_input_is_one_clear_line(tmp_path, script, args, needle):
    p = _run(script, "--limit", "1", "--out-dir", str(tmp_path), *args) if not script.startswith("figures") \
        else _run(script, *args)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert needle in p.stderr, p.stderr
    assert "Traceback" not in p.stderr


@pytest.mark.model
def test_tts_humaneval_tiny_real_model(tmp_path):
    """Smoke run on the real (smallest) model: 2 tasks x n=2, 48 new tokens, 1 test generation."""
    args = ["--model", "smollm2-135m-instruct", "--limit", "2", "--n-samples", "2", "--max-new-tokens", "48",
            "--test-samples", "1", "--test-max-new-tokens", "48", "--out-dir", str(tmp_path), "--run-name", "smoke",
            "--quiet"]
    p = _run("tts/tts_humaneval.py", *args, timeout=1800)
    assert p.returncode == 0, p.stderr[-3000:]
    res = json.loads((tmp_path / "smoke" / "result.json").read_text())
    m = res["metrics"]
    assert res["kind"] == "tts_code" and m["n_tasks"] == 2 and m["n_samples_per_task"] == 2
    assert set(m["selectors"]) == {"mean_logprob", "sum_logprob", "behaviour_majority", "visible_filter", "codet"}
    assert m["oracle_pass@n"]["label"] == "oracle_pass@2" and m["greedy"] is not None
    assert m["ssd_precondition"]["verdict"] in ("GO", "NO-GO")
    assert "oracle_pass@2" in p.stdout and "SSD precondition" in p.stdout
    rows = [json.loads(x) for x in (tmp_path / "smoke" / "sampled" / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and all(r["mean_logprob"] <= 0 and isinstance(r["passed"], bool) for r in rows)


def test_reproduce_tables_from_tts_results(scripted_run):
    tables = load_script("figures/tables.py")
    run_dir, res, _, _ = scripted_run
    text = tables.tts_table({"run": json.loads((run_dir / "result.json").read_text())})
    m = res["metrics"]
    assert "**`results/run/`** — humaneval (3 tasks)" in text
    assert "| greedy | 66.7 [" in text and "| 2/3 |" in text
    assert f"| oracle_pass@4 (oracle: the benchmark's tests pick) | {100 * m['oracle_pass@n']['mean']:.1f} [" in text
    for s in m["selectors"]:
        assert f"| {s}" in text
    assert "pass@k (unbiased estimator, 95% CI): pass@1 " in text and "verdict **" in text
    assert "| slice | tasks | pass@1 | pass@4 | gap pp | greedy | mean_logprob |" in text
    # HumanEval/0 is the one medium task: greedy wrong, oracle right
    assert "| medium | 1 | 50.0 | 100.0 | 50.0 | 0.0 | " in text and text.count(" | 100.0 |") >= 2
    assert tables.tts_table({}) == "_no test-time sampling result yet_"


def test_tts_backends_table_pairs_each_backend_with_its_float32_twin():
    tables = load_script("figures/tables.py")

    def run(backend_field, per_task):
        return {"kind": "tts_code", "model": {"file_sha256": "abc", **backend_field}, "protocol": "qwen-official",
                "sampling": {"n": 2, "temperature": 0.8}, "dataset": {"sha256": "d"}, "per_task": per_task,
                "metrics": {"n_samples_per_task": 2, "selectors": {"mean_logprob": {}}}}
    ref = run({"backend_requested": "auto"}, {                    # a record from before `backend` (= hf)
        "T/0": {"passed": [True, False], "selected": {"mean_logprob": 0}, "greedy": True},
        "T/1": {"passed": [False, False], "selected": {"mean_logprob": 1}, "greedy": False}})
    other = run({"backend_requested": "auto", "backend": "int8"}, {
        "T/0": {"passed": [True, True], "selected": {"mean_logprob": 1}, "greedy": True},
        "T/1": {"passed": [False, True], "selected": {"mean_logprob": 0}, "greedy": True}})
    text = tables.tts_backends_table({"fp32": ref, "q": other})
    assert "**`results/q/`** (int8) against **`results/fp32/`** (hf" in text and "n=2." in text
    assert "| pass@1 | 25.0 | 75.0 | +50.0 [" in text and "| 0 / 2 |" in text
    assert "| greedy | 50.0 | 100.0 | +50.0 [" in text
    assert "| mean_logprob | 50.0 | 50.0 | +0.0 [+0.0, +0.0] | 0 / 0 |" in text
    assert "| pass@2 (oracle: the benchmark's tests pick) | 50.0 | 100.0 |" in text
    other["sampling"] = {"n": 2, "temperature": 0.6}              # no float32 twin: no table
    assert tables.tts_backends_table({"fp32": ref, "q": other}).startswith("_no test-time-sampling run")


def _pt(passed, selected, greedy):
    return {"passed": passed, "selected": selected, "greedy": greedy}


@pytest.mark.parametrize("per_task,slices,want", [
    # one task per slice: all-fail (hard), mixed (medium), all-pass (easy)
    ({"a": _pt([False, False], {"m": 0}, False), "b": _pt([True, False], {"m": 1}, True),
      "c": _pt([True, True], {"m": 0}, True)},
     {"a": "hard", "b": "medium", "c": "easy"},
     {"hard": (1, 0.0, 0.0, {"m": 0.0}, 0.0), "medium": (1, 1.0, 0.5, {"m": 0.0}, 1.0),
      "easy": (1, 1.0, 1.0, {"m": 1.0}, 1.0)}),
    # single sample per task, two tasks in one slice, an empty slice
    ({"a": _pt([True], {"m": 0, "v": 0}, True), "b": _pt([False], {"m": 0, "v": 0}, True)},
     {"a": "medium", "b": "medium"},
     {"hard": (0, None, None, {}, None), "medium": (2, 1.0, 0.5, {"m": 0.5, "v": 0.5}, 0.5),
      "easy": (0, None, None, {}, None)}),
    # no greedy verdicts
    ({"a": _pt([True, False, True], {"m": 1}, None)}, {"a": "easy"},
     {"hard": (0, None, None, {}, None), "medium": (0, None, None, {}, None),
      "easy": (1, None, 2 / 3, {"m": 0.0}, 1.0)}),
])
def test_by_slice(per_task, slices, want):
    from common.tts_summary import by_slice
    got = by_slice(per_task, slices)
    for sl, (n, g, r, sels, o) in want.items():
        e = got[sl]
        assert (e["n_tasks"], e["greedy"], e["selectors"], e["oracle_pass@n"]) == (n, g, sels, o), sl
        assert e["random_expected"] == (None if r is None else pytest.approx(r)), sl


def test_by_slice_needs_every_task():
    from common.tts_summary import by_slice
    with pytest.raises(ValueError, match="no slice for 1 tasks"):
        by_slice({"a": _pt([True], {}, None)}, {})
