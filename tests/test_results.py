"""Result files: atomic JSON, resumable JSONL (torn tails), line-numbered input errors; tables."""
import json

import pytest
from conftest import load_script

from common.results import InputError, JsonlLog, provenance, read_jsonl, write_json_atomic


def test_jsonl_log_resumes_and_drops_a_torn_tail(tmp_path):
    p = tmp_path / "s.jsonl"
    with JsonlLog(p) as lg:
        lg.append({"a": 1})
        lg.append({"a": 2})
    with open(p, "a") as f:
        f.write('{"a": 3, "b": ')       # interrupted mid-write
    with JsonlLog(p) as lg:
        assert lg.rows == [{"a": 1}, {"a": 2}]
        lg.append({"a": 4})
    assert [json.loads(l)["a"] for l in p.read_text().splitlines()] == [1, 2, 4]


def test_read_jsonl_names_the_bad_line(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text('{"ok": 1}\n\n[1, 2]\n')
    with pytest.raises(InputError, match="line 3"):
        read_jsonl(p)
    p.write_text('{"ok": 1}\n{"bad": \n')
    with pytest.raises(InputError, match="line 2"):
        read_jsonl(p)
    with pytest.raises(InputError, match="no such file"):
        read_jsonl(tmp_path / "missing.jsonl")


def test_write_json_atomic_and_provenance(tmp_path):
    p = tmp_path / "d" / "r.json"
    write_json_atomic(p, {"x": 1, **provenance("evals/eval_raw.py", ["--limit", "1"])})
    r = json.loads(p.read_text())
    assert r["x"] == 1 and r["argv"] == ["--limit", "1"]
    for k in ("git", "versions", "machine", "time_utc"):
        assert k in r
    assert not list(p.parent.glob("*.tmp*"))


def test_tables_regenerate_from_results(tmp_path):
    tables = load_script("figures/tables.py")
    run = tmp_path / "results" / "eval_humaneval_m_qwen-official_greedy"
    write_json_atomic(run / "result.json", {
        "model": {"ref": "qwen2.5-coder-0.5b-instruct", "file_sha256": "ab" * 32, "adapter": None},
        "protocol": {"name": "qwen-official"},
        "sampling": {"temperature": 0.0, "n": 1, "top_p": 1.0, "max_new_tokens": 512},
        "timings": {"generation_s": 12.0},
        "metrics": {"n_tasks": 164, "passed_tasks": 90, "headline": {"pass@1": "54.9 [47.2, 62.3] (n=164)"},
                    "pass_at_k": {"pass@1": {"mean": 0.549}}}})
    doc = tmp_path / "R.md"
    index_blocks = "".join(f"<!-- TABLE:{n} -->\n<!-- /TABLE:{n} -->\n" for n in tables.INDEX_TABLES)
    doc.write_text("x\n<!-- TABLE:humaneval -->\nold\n<!-- /TABLE:humaneval -->\n" + index_blocks)
    assert tables.main(["--results", str(tmp_path / "results"), "--doc", str(doc), "--check"]) == 1
    assert tables.main(["--results", str(tmp_path / "results"), "--doc", str(doc)]) == 0
    text = doc.read_text()
    assert "54.9 [47.2, 62.3] (n=164)" in text and "90/164" in text and "61.6" in text
    assert tables.main(["--results", str(tmp_path / "results"), "--doc", str(doc), "--check"]) == 0


def test_recipe_and_mining_tables(tmp_path):
    tables = load_script("figures/tables.py")
    cmp_ = {"mean_a": 0.5, "mean_b": 0.55, "delta": 0.05, "ci": [-0.01, 0.11], "mcnemar_p": 0.2, "n": 164,
            "gained": ["HumanEval/1"] * 12, "lost": ["HumanEval/2"] * 4}
    res = {
        "confirm_x": {"model": {"base": {"adapter": None}, "adapter": {"adapter": "results/train_x"}},
                      "comparisons": {"he-chat": {"comparison": cmp_}}},
        "corrupt_x": {"control": "corrupted-pairs", "pairs": {"count": 20},
                      "evaluation": {"he-chat": {"base": {}, "adapter": {"comparison": {**cmp_, "mcnemar_p": None}}}}},
        "boot_x": {"variant": "plain", "model": {"ref": "m"},
                   "config": {"problems_per_iter": 64, "seed_problems": {"path": "data/ext.jsonl", "count": 42},
                              "mining": {"problem_style": "plain", "attempts": 4}}, "pairs_out": {"count": 7, "path": "data/p.jsonl",
                                                                             "sha256": "cd" * 32},
                   "stages": {"iter1/generate": {"counts": {}, "seconds": 120.0},
                              "iter1/solve": {"counts": {}, "seconds": 480.0}},
                   "totals": {"generate.generated": 64, "verify.parsed": 50, "verify.verified": 30,
                              "check.attempts": 120, "check.passes": 70, "check.mixed": 9, "mine.n_pairs": 7}},
    }
    rec = tables.recipe_table(res)
    assert "| confirm_x | `results/train_x` | he-chat | 50.0 | 55.0 | +5.0 [-1.0, +11.0] | 12 / 4 | 0.2 | 164 |" in rec
    assert "corrupted-pairs control (20 pairs)" in rec and "| – | 164 |" in rec
    mine = tables.mining_table(res)
    assert "64 → 50 → 30 (0, 0)" in mine and "4; 120 (70)" in mine and "0 / 9 / 0" in mine
    assert "| self-written (plain) × 64 + `ext.jsonl` |" in mine
    assert "| 7 (0) | `p.jsonl` (cdcdcdcdcdcd…) | 10 min |" in mine
    assert tables.recipe_table({}) == "_no paired comparison yet_" and tables.mining_table({}) == "_no mining result yet_"


def test_strategy_and_sweep_tables():
    tables = load_script("figures/tables.py")
    samp = {"n": 1, "temperature": 0.0, "top_p": 1.0, "max_new_tokens": 512, "seed": 0}
    p1 = {"mean": 0.5, "ci": [0.35, 0.65], "n_tasks": 40}
    res = {
        "strategies_x": {"kind": "prompt_strategies", "sampling": samp, "metrics": {
            "standard": {"pass@1": p1, "mean_new_tokens": 120.4},
            "scot": {"pass@1": {**p1, "mean": 0.425}, "mean_new_tokens": None,
                     "vs_standard": {"delta": -0.075, "ci": [-0.2, 0.05], "mcnemar_p": 0.38}}}},
        "sweep_x": {"kind": "sampling_sweep", "cells": [
            {"temperature": 0.0, "top_p": None, "n": 1, "pass_at_k": {"pass@1": p1}},
            {"temperature": 0.8, "top_p": 0.95, "n": 4,
             "pass_at_k": {"pass@1": {"mean": 0.4, "ci": [0.3, 0.5]}, "pass@4": {"mean": 0.6, "ci": [0.45, 0.75]}}}]},
    }
    st = tables.strategies_table(res)
    assert "| `strategies_x` | standard | n=1, T=0, top-p 1, max 512 tok, seed 0 | 50.0 [35.0, 65.0] (40) | – | 120 |" in st
    assert "| scot |" in st and "| 42.5 [35.0, 65.0] (40) | -7.5 [-20.0, +5.0], p=0.38 | – |" in st
    sw = tables.sweep_table(res)
    assert "| `sweep_x` | 0 (greedy) | – | 1 | 50.0 [35.0, 65.0] | – |" in sw
    assert "| `sweep_x` | 0.8 | 0.95 | 4 | 40.0 [30.0, 50.0] | pass@4 60.0 [45.0, 75.0] |" in sw
    assert tables.strategies_table({}) == "_no prompt-strategy result yet_"
    assert tables.sweep_table({}) == "_no sampling sweep yet_"


def test_generation_time_summed_over_invocations(tmp_path):
    from common.rundir import record_invocation
    run = tmp_path / "run"
    run.mkdir()
    # a run written before the log existed: its last result.json is the only timed invocation
    write_json_atomic(run / "result.json", {"timings": {"generation_s": 600.0, "tasks_generated_this_invocation": 110}})
    t = record_invocation(run, 0.0, 0, 164)
    assert t == {"generation_s_all_invocations": 600.0, "invocations": 1, "tasks_generated_untimed": 54}
    t = record_invocation(run, 30.04, 54, 164)
    assert t == {"generation_s_all_invocations": 630.0, "invocations": 2, "tasks_generated_untimed": 0}
    assert record_invocation(run, 0.0, 0, 164) == t            # a re-summarising invocation adds nothing
    assert len((run / "invocations.jsonl").read_text().splitlines()) == 2
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    assert record_invocation(fresh, 0.0, 0, 5) == {"generation_s_all_invocations": 0, "invocations": 0,
                                                    "tasks_generated_untimed": 5}
    tables = load_script("figures/tables.py")
    assert tables._gen_time({"timings": {**t, "generation_s": 30.0}}) == "630 s over 2 invocation(s)"
    assert tables._gen_time({"timings": {"generation_s": 30.0, "generation_s_all_invocations": 30.0, "invocations": 1,
                                         "tasks_generated_untimed": 54}}) == "30 s over 1 invocation(s), 54 tasks untimed"


def test_generation_breakdown_and_gemm_tables():
    tables = load_script("figures/tables.py")
    brk = {"wall_s": 100.0, "prefill_s": 20.0, "prefill_tokens": 900, "shared_prefix_tokens": 30, "steps": 40,
           "step_s": 70.0, "step_positions": 2000, "step_rows": 1600, "drafted": 500, "draft_accepted": 300,
           "tail_steps": 10, "tail_s": 9.0, "other_s": 10.0}
    side = {"prompts": 4, "useful_tokens": 1000, "wall_s": 100.0, "tokens_per_s": 10.0, "peak_rss_gb": 1.0}
    gen = {"workloads": {"a": {"n": 1, "naive": side, "engine": {**side, "breakdown": brk},
                               "speedup_tokens_per_s": 5.0}},
           "engine": {"max_batch": 64, "spec_max": 8, "packed_steps": True, "linear_gemm": "onednn-prepacked",
                      "dtype": "float32"}}
    text = tables.generation_table({"bench_generation_engine_vs_naive": gen})
    assert "| (a) | 100 s | 20 s (900, shared prefix 30) | 40 | 70 s | 50.0 | 40.0 | 500 → 300 | 10 steps, 9 s | 10 s |" in text
    assert "packed_steps True" in text and "linear_gemm onednn-prepacked" in text
    gemm = {"per_decode_step": {"64": {"linear_ms_per_step_torch": 600.0, "linear_ms_per_step_onednn": 400.0,
                                       "speedup": 1.5}},
            "measurements": [{"max_abs_diff": 3e-6}, {"max_abs_diff": 8e-6}],
            "model_config": {"ref": "m"}, "torch_threads": 2}
    text = tables.gemm_table({"bench_gemm": gemm})
    assert "| 64 | 600.0 ms | 400.0 ms | 1.5× |" in text and "8.0e-06" in text
    assert "no results/bench_gemm" in tables.gemm_table({})


def test_preference_table_reads_method_pairs_and_the_last_quarter_of_the_log():
    from figures import tables
    log = [{"step": i, "loss": 0.7 - 0.01 * i, "rewards/accuracies": 0.5 if i < 7 else 1.0,
            "rewards/margins": 0.1 * i} for i in range(1, 9)]
    dpo = {"preference": {"method": "dpo", "beta": 0.1, "orpo_lambda": 0.1, "format": "chat"},
           "pairs": {"count": 12, "n_tasks": 5}, "_train_log": log,
           "stats": {"optimizer_steps": 8, "train_seconds": 61.2, "first_loss": 0.69, "final_loss": 0.62}}
    orpo = {**dpo, "preference": {**dpo["preference"], "method": "orpo", "orpo_lambda": 0.2},
            "_train_log": [{"step": 1, "loss": 1.0, "log_odds_ratio": -0.8}, {"step": 2, "loss": 0.9, "log_odds_ratio": -0.4}]}
    text = tables.preference_table({"dpo_x": dpo, "orpo_x": orpo, "train_y": {"stats": {}}})
    lines = text.splitlines()
    assert len(lines) == 4                                     # header, rule, two runs; the SFT run is not here
    assert lines[2] == "| dpo_x | dpo | 0.1 | 12 (5) | 8 | 61 | 0.690 → 0.620 | 1.000 | 0.750 | – |"
    assert lines[3].startswith("| orpo_x | orpo | 0.2 |") and lines[3].endswith("| – | – | -0.400 |")
    assert tables.preference_table({}) == "_no preference run yet_"


def _cmp(a, b, gained, lost, n=10, p=0.5):
    return {"mean_a": a, "mean_b": b, "delta": b - a, "ci": [b - a - 0.1, b - a + 0.1], "mcnemar_p": p,
            "gained": ["t"] * gained, "lost": ["t"] * lost, "n": n}


def test_math_tables_read_evaluations_recipes_and_untrained_runs():
    from figures import tables
    acc = {"mean": 0.2, "ci": [0.1, 0.3]}
    ev = {"kind": "math_samples", "dataset": {"name": "procedural"}, "backend": "int8",
          "metrics": {"n_tasks": 10, "accuracy": acc, "strict_accuracy": {"mean": 0.1}, "faithful_accuracy": {"mean": 0.0},
                      "mean_new_tokens": 42.4},
          "timings": {"generation_s": 12.0, "tasks_generated_this_invocation": 10}}
    arm = {"comparison": _cmp(0.2, 0.5, 4, 1), "comparisons": {"flexible": _cmp(0.2, 0.5, 4, 1),
                                                               "strict": _cmp(0.1, 0.1, 0, 0, p=1.0),
                                                               "faithful": _cmp(0.0, 0.2, 2, 0)}}
    star = {"script": "experiments/star_baseline_gsm8k.py", "records": {"count": 7},
            "evaluation": {"bench": {"bench": "procedural"}, "base": {"accuracy": 0.2}, "star": arm}}
    empty = {"script": "recipe/math_bootstrap.py", "records": {"count": 0},
             "training": {"skipped": True, "reason": "no training records"}, "evaluation": {}}
    res = {"ev": ev, "star": star, "boot": empty, "other": {"kind": "tts"}}
    lines = tables.math_table(res).splitlines()
    assert lines[2] == "| `ev` | procedural (10) | int8 | 20.0 [10.0, 30.0] | 10.0 | 0.0 | 42 | 12 s (10) |"
    assert len(lines) == 3
    rec = tables.math_recipe_table(res).splitlines()
    assert rec[2] == ("| `star` | `experiments/star_baseline_gsm8k.py` | 7 | star | procedural | 20.0 | 50.0 | "
                      "+30.0 [+20.0, +40.0], p=0.5 | 4 / 1 | +0.0 [-10.0, +10.0], p=1 | +20.0 [+10.0, +30.0], p=0.5 | 10 |")
    assert rec[3] == ("| `boot` | `recipe/math_bootstrap.py` | 0 | – | – | – | – | not trained: no training records "
                      "| – | – | – | – |")
    assert len(rec) == 4
    assert tables.READERS["math_compare"](empty, {}) == "no adapter: no training records (0 records)"
    assert tables.READERS["math_compare"](star, {}) == "procedural (star): 20.0 → 50.0, delta pp +30.0 [+20.0, +40.0], p=0.5 (n=10)"
    assert tables.math_table({}) == "_no math evaluation yet_"


@pytest.mark.parametrize("path, expected", [
    ("data/ssd_thresholds.json", "data/ssd_thresholds.json"),
    ("data/../data/ssd_thresholds.json", "data/ssd_thresholds.json"),
    ("/tmp/elsewhere.json", "/tmp/elsewhere.json"),
])
def test_repo_relative(path, expected):
    from common.results import REPO_ROOT, repo_relative
    p = path if path.startswith("/") else REPO_ROOT / path
    assert repo_relative(p) == expected
