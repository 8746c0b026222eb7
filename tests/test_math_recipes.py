"""The math recipes and their evaluation (common/math_recipe.py, common/math_eval.py, the greedy
math evaluation evals/eval_math.py, recipe/curriculum_math.py, recipe/math_bootstrap.py,
experiments/star_baseline_gsm8k.py, self_correction_math.py, math500_seeded_mining.py,
cross_domain_code_to_math.py, tts/tts_procedural.py): pure parts table-driven, then every
script end to end on the real SmolLM2-135M with tiny settings."""
import json

import pytest
from conftest import REPO, load_script

from common import math_recipe as R
from common.math_eval import MathEvalSpec, check_math_base_run
from common.results import InputError

SMOL = ["--model", "smollm2-135m-instruct", "--quiet"]
EASY = [("Tom has 2 apples. He gets 3 more apples. How many apples does Tom have now?", 5),
        ("Ann has 4 pens. She buys 4 more pens. How many pens does Ann have now?", 8),
        ("A box has 10 eggs. 1 egg breaks. How many eggs are not broken?", 9)]


# --------------------------------------------------------------------------------------------
# pure parts
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,want", [
    ("PROBLEM: Sam has 3 bags with 4 apples each. How many apples?\nEXPRESSION: 3 * 4\nANSWER: 12",
     ({"problem": "Sam has 3 bags with 4 apples each. How many apples?", "expression": "3 * 4", "answer": "12"}, "ok")),
    ("**PROBLEM:** A farm has 120 cows and sells 1,000 / 50 of them. How many are left?\n"
     "**EXPRESSION:** 120 - 1,000 / 50\n**ANSWER:** $100",                                   # markdown, commas, $
     ({"problem": "A farm has 120 cows and sells 1,000 / 50 of them. How many are left?",
       "expression": "120 - 1,000 / 50", "answer": "100"}, "ok")),
    ("PROBLEM: A farm has 120 cows and sells 20 of them. How many are left?\nEXPRESSION: 120 - 20\n"
     "ANSWER: 100 cows", ({"problem": "A farm has 120 cows and sells 20 of them. How many are left?",
                           "expression": "120 - 20", "answer": "100"}, "ok")),
    ("PROBLEM: Split 7 cakes between 2 friends. How much each?\nEXPRESSION: 7 / 2\nANSWER: 3.5",
     (None, "answer_not_integer")),
    ("PROBLEM: What is 2 + 2, asked in a long way?\nEXPRESSION: __import__('os').system('x')\nANSWER: 4",
     (None, "expression_unreadable")),                      # never evaluated as Python
    ("PROBLEM: Huge power of ten question here?\nEXPRESSION: 10 ** 10 ** 10\nANSWER: 1", (None, "expression_unreadable")),
    ("PROBLEM: <the problem>\nEXPRESSION: 1 + 1\nANSWER: 2", (None, "too_short")),
    ("The answer is 42", (None, "format")),
    ("PROBLEM: Ben has 5 cards and buys 6 more cards.\nHow many cards now?\nEXPRESSION: 5 + 6\nANSWER: 11\n"
     "PROBLEM: another one", ({"problem": "Ben has 5 cards and buys 6 more cards. How many cards now?",
                               "expression": "5 + 6", "answer": "11"}, "ok")),   # a second problem is ignored
])
def test_parse_problem(text, want):
    assert R.parse_problem(text) == want


def test_parse_problem_mismatch_case_really_mismatches():
    from common.arith import evaluate
    assert evaluate("120 - 1,000 / 50") == 100       # 1,000 is one thousand
    ok, why = R.parse_problem("PROBLEM: A farm has 120 cows and sells 1,000 / 50 of them. How many are left?\n"
                              "EXPRESSION: 120 - 1,000 / 50\nANSWER: 101")
    assert (ok, why) == (None, "expression_mismatch")


@pytest.mark.parametrize("level,share,want", [(2, 1.0, 3), (2, 0.75, 3), (2, 0.5, 2), (2, 0.25, 1), (2, 0.0, 1),
                                              (5, 1.0, 5), (1, 0.0, 1), (3, None, 3)])
def test_next_level(level, share, want):
    cur = load_script("recipe/curriculum_math.py")
    assert cur.next_level(level, share, 0.75, 0.25) == want


def test_procedural_pool_is_disjoint_from_the_evaluation_set():
    from common.math_benchmarks import load_math_tasks
    with pytest.raises(InputError, match="seed of the evaluation set"):
        R.procedural_pool(0, 5)
    pool = R.procedural_pool(1, 20)
    ev = load_math_tasks("procedural")[0]
    assert len(pool) == 100 and pool[0]["task_id"] == "pool-s1/L1/000" and pool[0]["golds"] == [pool[0]["answer"]]
    assert not {t["task_id"] for t in pool} & {t["task_id"] for t in ev}
    assert not {t["problem"] for t in pool} & {t["problem"] for t in ev}
    kept, report = R.decontaminate(pool, {"procedural": ev})
    assert report["n_checked"] == 100 and report["against"]["procedural"]["exact"] == 0
    assert report["against"]["procedural"]["any_13gram"] >= 1          # template phrases are shared ...
    assert report["n_dropped"] == 0 and len(kept) == 100               # ... but no problem is mostly shared


def test_decontaminate_drops_copies_and_near_copies():
    ev = [{"task_id": "e/0", "problem": "Maya has 12 marbles. Then Maya gets 5 more marbles. Maya gives 3 marbles to "
                                        "a friend. How many marbles does Maya have now?"}]
    items = [{"task_id": "copy", "problem": "  MAYA has 12 marbles.  Then Maya gets 5 more marbles. Maya gives 3 marbles "
                                            "to a friend! How many marbles does Maya have now?"},
             {"task_id": "near", "problem": ev[0]["problem"].replace("now?", "today?")},
             {"task_id": "other", "problem": "A train leaves at 3 and travels 40 miles an hour for 2 hours. How far?"}]
    kept, report = R.decontaminate(items, {"ev": ev})
    assert [k["task_id"] for k in kept] == ["other"]
    assert report["against"]["ev"]["exact"] == 1 and report["against"]["ev"]["dropped_ids"] == ["copy", "near"]


def _row(tid, *atts):
    return {"task_id": tid, "attempts": [{"text": t, "answer": None, "passed": p, "finish_reason": f} for t, p, f in atts],
            "n_pass": sum(a[1] for a in atts)}


def test_records_traces_and_pairs():
    sc = load_script("experiments/self_correction_math.py")
    seeded = load_script("experiments/math500_seeded_mining.py")
    probs = [{"task_id": t, "problem": f"problem {t}"} for t in "abcd"]
    solved = [_row("a", ("wrong a", False, "eos"), ("right a", True, "eos")),
              _row("b", ("right b", True, "eos"), ("right b2", True, "eos")),
              _row("c", ("cut", True, "length"), ("wrong c", False, "eos")),      # a cut chain is no target
              _row("d", ("wrong d", False, "eos"))]
    assert R.first_correct(solved[2]) is None and R.first_wrong(solved[2])["text"] == "wrong c"
    naive = sc.trace_stage(probs, solved, "naive", 1.0)
    assert [r["kind"] for r in naive] == ["correction"]
    assert naive[0]["messages"][-1]["content"] == "wrong a" + R.RECONSIDER + "right a"
    assert naive[0]["messages"][0]["content"].endswith("Problem: problem a")
    fixed = sc.trace_stage(probs, solved, "fixed", 1.0)
    assert [(r["kind"], r["task_id"]) for r in fixed] == [("correction", "a"), ("solution", "b")]  # never-wrong first
    assert len(sc.trace_stage(probs, solved, "fixed", 5.0)) == 3 and sc.trace_stage(probs, solved, "fixed", 0) == naive
    pairs = seeded.mine_stage(probs, solved, "procedural")
    assert [p["task_id"] for p in pairs] == ["a"] and "My attempt:\nwrong a" in pairs[0]["messages"][0]["content"]
    assert pairs[0]["messages"][1]["content"] == "right a"
    assert [r["task_id"] for r in R.solution_records(probs, solved)] == ["a", "b"]


def test_eval_spec_and_flags_refuse_bad_values():
    with pytest.raises(InputError, match="unknown math benchmark"):
        MathEvalSpec(bench="gsm9k")
    with pytest.raises(InputError, match="--limit"):
        MathEvalSpec(limit=0)
    assert MathEvalSpec().params().max_new_tokens == 400 and MathEvalSpec(max_new_tokens=32).params().temperature == 0
    with pytest.raises(InputError, match="temperatures"):
        R.MathMiningConfig(solve_temperature=0)


def test_math_metrics_counts_each_verdict():
    from common.tts_math import math_metrics
    tasks = [{"task_id": "a"}, {"task_id": "b"}]
    rows = [{"task_id": "a", "passed": True, "strict_passed": False, "faithful_passed": True, "n_tokens": 10,
             "extraction": "hash", "status": "equal", "check": "integer", "finish_reason": "eos"},
            {"task_id": "b", "passed": False, "strict_passed": False, "faithful_passed": False, "n_tokens": 20,
             "extraction": "none", "status": "no_answer", "check": "none", "finish_reason": "length"}]
    m = math_metrics(rows, tasks, 1)
    assert m["accuracy"]["mean"] == 0.5 and m["accuracy"]["ci_method"] == "wilson"
    assert m["strict_accuracy"]["mean"] == 0.0 and m["faithful_accuracy"]["passed_samples"] == 1
    assert m["mean_new_tokens"] == 15 and m["status_counts"] == {"equal": 1, "no_answer": 1}


# --------------------------------------------------------------------------------------------
# end to end on SmolLM2-135M
# --------------------------------------------------------------------------------------------

def _ok(script, *args):
    assert load_script(script).main([*args]) == 0


@pytest.fixture(scope="module")
def star_run(tmp_path_factory):
    """STaR on three easy problems SmolLM2 solves sometimes: trains, evaluates, compares."""
    root = tmp_path_factory.mktemp("math")
    data = root / "easy.jsonl"
    data.write_text("".join(json.dumps({"question": q, "answer": f"#### {a}"}) + "\n" for q, a in EASY))
    _ok("experiments/star_baseline_gsm8k.py", *SMOL, "--train-data", str(data), "--attempts", "4",
        "--max-new-tokens", "64", "--limit", "2", "--eval-max-new-tokens", "32", "--max-steps", "1",
        "--backend", "hf", "--out-dir", str(root), "--run-name", "star")   # float32: SmolLM2 solves some there
    return root, json.loads((root / "star" / "result.json").read_text())


@pytest.mark.model
def test_star_trains_and_compares(star_run):
    root, res = star_run
    assert res["records"]["count"] >= 1 and res["records"]["kinds"] == {"solution": res["records"]["count"]}
    assert res["training"]["skipped"] is False and (root / "star" / "adapter" / "adapter_config.json").is_file()
    ev = res["evaluation"]
    assert ev["bench"]["bench"] == "procedural" and ev["dataset"]["n_tasks"] == 2
    c = ev["star"]["comparisons"]
    assert set(c) == {"flexible", "strict", "faithful"} and c["flexible"]["n"] == 2 and "ci" in c["flexible"]
    assert res["decontamination"]["n_checked"] == 3 and set(res["decontamination"]["against"]) == {"procedural", "champ"}
    recs = [json.loads(x) for x in (root / "star" / "train.jsonl").read_text().splitlines()]
    assert all(r["messages"][0]["content"].startswith("Solve this math problem step by step.") for r in recs)
    # the evaluation rows are graded per sample; evals/confirm.py pairs two math runs
    rows = [json.loads(x) for x in (root / "star" / "eval" / "base" / "samples.jsonl").read_text().splitlines()]
    assert {"completion", "passed", "strict_passed", "faithful_passed", "answer", "gold"} <= set(rows[0])
    _ok("evals/confirm.py", "--base-run", str(root / "star" / "eval" / "base"), "--adapter-run",
        str(root / "star" / "eval" / "star"), "--out-dir", str(root), "--run-name", "confirm")
    conf = json.loads((root / "confirm" / "result.json").read_text())
    assert conf["comparisons"]["procedural-chat"]["comparison"]["n"] == 2
    # a rerun resumes: every stage and the training are skipped
    _ok("experiments/star_baseline_gsm8k.py", *SMOL, "--train-data", str(root / "easy.jsonl"), "--attempts", "4",
        "--max-new-tokens", "64", "--limit", "2", "--eval-max-new-tokens", "32", "--max-steps", "1",
        "--backend", "hf", "--out-dir", str(root), "--run-name", "star")
    assert json.loads((root / "star" / "result.json").read_text())["stages"] == res["stages"]


@pytest.mark.model
def test_eval_math_and_base_run_reuse(star_run, tmp_path, capsys):
    root, _ = star_run
    _ok("evals/eval_math.py", *SMOL, "--bench", "procedural", "--limit", "2", "--max-new-tokens", "32",
        "--out-dir", str(tmp_path), "--run-name", "ev")
    res = json.loads((tmp_path / "ev" / "result.json").read_text())
    assert res["kind"] == "math_samples" and res["protocol"] == "procedural-chat" and res["backend"] == "int8"   # auto on a CPU
    assert res["protocol_detail"]["max_new_tokens"] == 32 and "#### <number>" in res["protocol_detail"]["template"]
    assert res["model"]["file_sha256"] and res["sampling"]["seed"] == 0 and res["dataset"]["sha256"]
    assert res["metrics"]["accuracy"]["ci_method"] == "wilson" and res["checker"]["checker"] == "math-verify"
    # identical to the base side STaR evaluated (same greedy settings): it may stand in for it
    spec = MathEvalSpec(limit=2, max_new_tokens=32)
    check_math_base_run(tmp_path / "ev", spec, res["model"]["file_sha256"], spec.tasks()[0])
    with pytest.raises(InputError, match="max_new_tokens 32 != 48"):
        check_math_base_run(tmp_path / "ev", MathEvalSpec(limit=2, max_new_tokens=48), None, spec.tasks()[0])
    with pytest.raises(InputError, match="backend 'int8' != 'hf'"):
        check_math_base_run(tmp_path / "ev", spec, res["model"]["file_sha256"], spec.tasks()[0], "hf")
    check_math_base_run(tmp_path / "ev", spec, res["model"]["file_sha256"], spec.tasks()[0], "int8")
    with pytest.raises(InputError, match="evaluated an adapter"):
        check_math_base_run(root / "star" / "eval" / "star", spec, None, spec.tasks()[0])
    # code -> math transfer with that adapter, the base side reused
    _ok("experiments/cross_domain_code_to_math.py", *SMOL, "--adapter", str(root / "star" / "adapter"), "--limit", "2",
        "--eval-max-new-tokens", "32", "--base-run", str(tmp_path / "ev"), "--out-dir", str(tmp_path),
        "--run-name", "c2m")
    c2m = json.loads((tmp_path / "c2m" / "result.json").read_text())
    assert c2m["evaluation"]["base"]["reused"] and c2m["evaluation"]["code-adapter"]["comparison"]["n"] == 2
    assert c2m["adapter_sha256"] and "code -> math" in capsys.readouterr().out


@pytest.mark.model
@pytest.mark.parametrize("script,args", [
    ("experiments/self_correction_math.py", ["--variant", "naive", "--limit-pool", "2", "--attempts", "2"]),
    ("experiments/math500_seeded_mining.py", ["--bench", "champ_int", "--eval-bench", "champ_int", "--limit-pool", "2",
                                              "--attempts", "2"]),
    ("recipe/math_bootstrap.py", ["--problems", "2", "--attempts", "2"]),
    ("recipe/curriculum_math.py", ["--iterations", "2", "--problems-per-iter", "2", "--attempts", "2"]),
])
def test_recipe_scripts_run_end_to_end(tmp_path, script, args):
    _ok(script, *SMOL, *args, "--max-new-tokens", "32", "--limit", "2", "--eval-max-new-tokens", "32",
        "--max-steps", "1", "--out-dir", str(tmp_path), "--run-name", "r")
    res = json.loads((tmp_path / "r" / "result.json").read_text())
    assert res["stages"] and "decontamination" in res and res["records"]["count"] >= 0
    assert (tmp_path / "r" / "train.jsonl").is_file() and res["config"]["eval"]["bench"] in ("procedural", "champ_int")
    if "curriculum" in script:
        assert [x["level"] for x in res["levels"]][0] == 2 and len(res["levels"]) == 2
    if "seeded" in script:   # seeds and evaluated tasks are disjoint parts of CHAMP
        evaluated = set(res["decontamination"]["against"]) - {"procedural"}
        assert evaluated == {"champ_int (evaluated tasks)"}
        pool = [json.loads(x)["task_id"] for x in (tmp_path / "r" / "pool.jsonl").read_text().splitlines()]
        assert len(pool) == 2 and not set(pool) & set(MathEvalSpec("champ_int", limit=2).tasks()[1]["task_ids"])


@pytest.mark.model
def test_tts_procedural_tiny(tmp_path):
    _ok("tts/tts_procedural.py", *SMOL, "--limit", "2", "--n-samples", "2", "--max-new-tokens", "32",
        "--out-dir", str(tmp_path), "--run-name", "t")
    res = json.loads((tmp_path / "t" / "result.json").read_text())
    m = res["metrics"]
    assert res["kind"] == "tts_math" and res["bench"] == "procedural" and m["n_samples_per_task"] == 2
    assert "majority_vote" in m["selectors"] and m["oracle_pass@n"]["label"] == "oracle_pass@2"
    assert "oracle_gap_recovered" in m["selectors"]["majority_vote"]
    tables = load_script("figures/tables.py")                # REPRODUCE.md section 8 reads it
    text = tables.tts_table({"t": res}, "tts_math")
    assert "**`results/t/`** — procedural (2 tasks)" in text and "protocol chat," in text
    assert "| oracle_pass@2 (oracle: the gold answer picks) |" in text and "| majority_vote (primary) |" in text
    assert tables.tts_table({"t": res}) == "_no test-time sampling result yet_"    # not a code TTS run
    assert tables.READERS["tts"](res, {}).startswith("oracle pass@2 ")


SCRIPTS = ["evals/eval_math.py", "recipe/curriculum_math.py", "recipe/math_bootstrap.py",
           "experiments/star_baseline_gsm8k.py", "experiments/self_correction_math.py",
           "experiments/math500_seeded_mining.py", "experiments/cross_domain_code_to_math.py"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_docstring_contract_and_help(script):
    import argparse
    doc = (REPO / script).read_text()
    assert "claim" in doc.lower() and "Full command" in doc and "Quick command" in doc
    assert "CPU cores" in doc and "Deviation" in doc and "Writes" in doc
    for a in load_script(script).build_parser()._actions:
        if not isinstance(a, argparse._HelpAction):
            assert a.help, f"{script}: {a.option_strings} has no help"


@pytest.mark.parametrize("script,argv,dest,want", [
    ("recipe/curriculum_math.py", ["--iterations", "16", "--tag", "curr_3b_rerun"], "iterations", 16),
    ("recipe/curriculum_math.py", ["--tag", "curr_3b_rerun"], "run_name", "curr_3b_rerun"),
    ("experiments/cross_domain_code_to_math.py", ["--code-adapter", "a"], "adapter", "a"),
    ("experiments/self_correction_math.py", ["--base-model", "m"], "model", "m"),
])
def test_seed_spellings(script, argv, dest, want):
    assert getattr(load_script(script).build_parser().parse_args(argv), dest) == want


@pytest.mark.parametrize("script,argv,needle", [
    ("experiments/star_baseline_gsm8k.py", ["--pool-seed", "0"], "seed of the evaluation set"),
    ("experiments/self_correction_math.py", ["--mix-ratio", "-1"], "--mix-ratio"),
    ("recipe/curriculum_math.py", ["--raise-at", "0.2", "--lower-at", "0.5"], "--lower-at"),
    ("recipe/math_bootstrap.py", ["--problems", "0"], "--problems"),
    ("experiments/cross_domain_code_to_math.py", ["--adapter", "/nonexistent"], "adapter"),
    ("experiments/math500_seeded_mining.py", ["--bench", "gsm8k"], "needs a local data file"),
])
def test_bad_input_is_an_input_error(tmp_path, script, argv, needle, capsys):
    assert load_script(script).main([*argv, "--out-dir", str(tmp_path), "--model", "smollm2-135m-instruct"]) == 2
    assert needle in capsys.readouterr().err
    assert not any(tmp_path.iterdir())                 # nothing written on bad input
