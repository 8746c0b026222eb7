"""evals/bench_generation.py: flags, the acceptance ratios, pass@1 / identical counts against the
fp32 run (planted differences), and a tiny end-to-end run on SmolLM2-135M that resumes without
re-running a finished phase (llama-server's phase only where setup.sh built it)."""
import json
from pathlib import Path

import pytest
from conftest import load_script

from common.results import InputError

REPO = Path(__file__).resolve().parents[1]
bench = load_script("evals/bench_generation.py")


# ---- flags ------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, want", [
    ("4", {"a": 4, "b": 4, "c": 4}),
    ("0", {"a": 0, "b": 0, "c": 0}),
    ("a=16,b=2,c=1", {"a": 16, "b": 2, "c": 1}),
    ("a=3", {"a": 3, "b": 0, "c": 0}),          # a workload left out: naive does not run on it
    (" c=2 , a=1 ,", {"a": 1, "b": 0, "c": 2}),
])
def test_parse_naive_prompts(text, want):
    assert bench.parse_naive_prompts(text) == want


@pytest.mark.parametrize("text", ["", "x", "a=", "d=1", "a=1,b", "-1", "a=-2", "1.5"])
def test_parse_naive_prompts_refuses(text):
    with pytest.raises(InputError, match="--naive-prompts"):
        bench.parse_naive_prompts(text)


@pytest.mark.parametrize("argv, needle", [
    (["--backends", "int8,naive"], "must include hf"),
    (["--backends", "hf,hf"], "at most once"),
    (["--backends", "hf,vllm"], "at most once"),
    (["--backends", "hf"], "--default int8 is not among"),
    (["--workloads", "a,d"], "--workloads"),
    (["--workloads", "ab"], "--workloads"),
    (["--limit", "0"], "--limit"),
])
def test_bad_flags_are_one_line_errors_and_write_nothing(tmp_path, capsys, argv, needle):
    rc = bench.main(argv + ["--out-dir", str(tmp_path), "--run-name", "r"])
    assert rc == 2 and needle in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_a_result_of_the_earlier_bench_is_not_overwritten(tmp_path, capsys):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "result.json").write_text("{}")
    rc = bench.main(["--model", "smollm2-135m-instruct", "--backends", "hf", "--default", "hf",
                     "--out-dir", str(tmp_path), "--run-name", "r"])
    assert rc == 2 and "earlier bench" in capsys.readouterr().err
    assert (tmp_path / "r" / "result.json").read_text() == "{}"


# ---- the acceptance ratios --------------------------------------------------------------------

def R(wall, tps=100.0):
    return {"wall_s": wall, "tokens_per_s": tps}


@pytest.mark.parametrize("runs, w, want", [
    # the faster rival is the one with the shorter wall
    ({"a": {"int8": R(100, 120), "hf": R(150, 90), "llamacpp": R(130, 80)}}, "a",
     {"faster_rival": "llamacpp", "ratio": 1.3, "tokens_per_s_ratio": 1.5, "meets_target": True,
      "rivals_not_measured": []}),
    ({"a": {"int8": R(100), "hf": R(124)}}, "a", {"faster_rival": "hf", "ratio": 1.24, "meets_target": False,
                                                  "rivals_not_measured": ["llamacpp"]}),
    ({"a": {"int8": R(100), "hf": R(125)}}, "a", {"ratio": 1.25, "meets_target": True}),   # the line itself counts
    ({"c": {"int8": R(100), "hf": R(140), "llamacpp": R(400)}}, "c",
     {"faster_rival": "hf", "ratio": 1.4, "target": 1.5, "meets_target": False}),
    # a slower default: ratio below 1
    ({"a": {"int8": R(200), "llamacpp": R(100)}}, "a", {"ratio": 0.5, "meets_target": False}),
])
def test_speed_ratios(runs, w, want):
    got = bench.speed_ratios(runs, "int8")[w]
    for k, v in want.items():
        assert got[k] == v, k


@pytest.mark.parametrize("runs", [
    {},                                                       # nothing ran
    {"a": {"hf": R(100), "llamacpp": R(90)}},                 # the default did not run
    {"a": {"int8": R(100), "naive": R(1000)}},                # naive is no rival
])
def test_speed_ratios_not_measured(runs):
    got = bench.speed_ratios(runs, "int8")
    assert "not measured" in got["a"]["status"] and "not measured" in got["c"]["status"]


def test_speed_ratios_never_compare_the_default_with_itself():
    got = bench.speed_ratios({"a": {"hf": R(100), "llamacpp": R(150)}}, "hf")["a"]
    assert got["faster_rival"] == "llamacpp" and got["ratio"] == 1.5


# ---- quality against the fp32 run (planted differences) ---------------------------------------

def rows(spec):
    """[(task, sample, raw, passed)] -> scored sample rows."""
    return [{"task_id": t, "sample_index": s, "raw": raw, "completion": raw, "passed": p, "status": "ok",
             "extraction": "x", "finish_reason": "stop", "n_tokens": 3} for t, s, raw, p in spec]


def test_quality_counts_identical_samples_and_the_paired_difference():
    ref = rows([("t0", 0, "a", True), ("t1", 0, "b", False), ("t2", 0, "c", True), ("t3", 0, "d", False)])
    other = rows([("t0", 0, "a", True), ("t1", 0, "B", True), ("t2", 0, "C", False), ("t3", 0, "D", True)])
    q = bench.quality(other, ref, 1, "int8")
    v = q["vs_hf"]
    assert (v["identical_samples"], v["samples"]) == (1, 4)
    assert v["tasks_with_a_different_sample"] == ["t1", "t2", "t3"]
    p = v["pass_at_1_paired"]
    assert p["n"] == 4 and p["delta"] == pytest.approx(0.25) and p["gained"] == ["t1", "t3"] and p["lost"] == ["t2"]
    assert q["metrics"]["pass_at_k"]["pass@1"]["mean"] == 0.75
    assert bench.quality(ref, ref, 1, "int8")["vs_hf"]["identical_samples"] == 4
    assert "vs_hf" not in bench.quality(ref, ref, 1, "hf")            # the reference is not compared with itself


def test_quality_sampled_prefix_pairs_on_the_tasks_it_ran():
    """naive on a prefix: pass@1 = mean over samples, compared with hf on the same tasks only."""
    ref = rows([("t0", 0, "a", True), ("t0", 1, "b", True), ("t1", 0, "c", False), ("t1", 1, "d", False)])
    naive = rows([("t0", 0, "a", False), ("t0", 1, "x", True)])
    q = bench.quality(naive, ref, 2, "naive")
    assert q["tasks"] == 1 and q["metrics"]["pass_at_k"]["pass@1"]["mean"] == 0.5
    assert set(q["metrics"]["pass_at_k"]) == {"pass@1", "pass@2"}
    p = q["vs_hf"]["pass_at_1_paired"]
    assert p["n"] == 1 and p["delta"] == pytest.approx(-0.5) and p["mcnemar_p"] is None
    assert q["vs_hf"]["identical_samples"] == 1


def test_quality_refuses_to_pair_samples_the_reference_lacks():
    ref = rows([("t0", 0, "a", True)])
    assert "not comparable" in bench.quality(rows([("t9", 0, "a", True)]), ref, 1, "int8")["vs_hf"]


# ---- end to end on SmolLM2-135M ---------------------------------------------------------------

TINY = ["--model", "smollm2-135m-instruct", "--limit", "2", "--max-new-tokens", "8", "--probe-seconds", "0.05",
        "--quiet"]


def _run(tmp_path, extra):
    rc = bench.main(TINY + extra + ["--out-dir", str(tmp_path), "--run-name", "r"])
    assert rc == 0
    return json.loads((tmp_path / "r" / "result.json").read_text())


def _no_model(monkeypatch):
    """Any model load from now on fails the test: a resumed run must not re-run a phase."""
    import common.sampling

    def refuse(*a, **k):
        raise AssertionError("a finished phase was run again")
    monkeypatch.setattr(common.sampling.LLM, "__init__", refuse)


def test_end_to_end_resume_and_a_planted_difference(tmp_path, monkeypatch):
    extra = ["--backends", "int8,hf,naive", "--workloads", "a,c", "--naive-prompts", "a=1"]   # naive: 1 prompt of (a), none of (c)
    res = _run(tmp_path, extra)
    d = tmp_path / "r"
    assert res["reference_backend"] == "hf" and res["model"]["file_sha256"] and res["protocol"]["stop"] == ["\n```"]
    assert res["max_new_tokens"] == 8 and res["backends"]["int8"]["max_batch"] == 128
    a, c = res["workloads"]["a"], res["workloads"]["c"]
    assert (a["prompts"], a["n"], c["prompts"], c["n"]) == (2, 1, 2, 10)
    assert c["sampling"]["temperature"] == 0.8 and c["sampling"]["top_p"] == 0.95
    for w, n in (("a", 1), ("c", 10)):
        for b, prompts in (("int8", 2), ("hf", 2), ("naive", 1))[: 3 if w == "a" else 2]:
            e = res["workloads"][w]["backends"][b]
            g = e["generation"]
            assert g["prompts"] == prompts and g["samples"] == prompts * n and g["generated_tokens"] > 0
            assert g["tokens_per_s"] > 0 and g["peak_rss_gb"]["process"] > 0
            assert set(g["machine_gemm_gflops"]) >= {"before", "after"}
            assert e["full_workload"] is (b != "naive")
            assert len((d / e["samples_file"]).read_text().splitlines()) == prompts * n
            if b != "hf":
                assert e["quality"]["vs_hf"]["pass_at_1_paired"]["n"] == prompts
    assert "naive" not in c["backends"]
    assert set(c["backends"]["int8"]["quality"]["metrics"]["pass_at_k"]) == {f"pass@{k}" for k in (1, 2, 4, 5, 8, 10)}
    speed = res["acceptance"]["speed"]
    for w in ("a", "c"):
        want = res["workloads"][w]["backends"]["hf"]["generation"]["wall_s"] / \
            res["workloads"][w]["backends"]["int8"]["generation"]["wall_s"]
        assert speed[w]["faster_rival"] == "hf" and speed[w]["ratio"] == pytest.approx(want, abs=1e-3)
    assert "inside_hf_interval" in res["acceptance"]["pass_at_1_a"]

    # plant a difference in int8's scored (a) completions: task 0 differs from hf's and flips its verdict
    stages = (d / "stages.json").read_text()
    hf = [json.loads(x) for x in (d / "hf_a.jsonl").read_text().splitlines()]
    planted = [dict(r) for r in hf]
    planted[0].update(raw=hf[0]["raw"] + " # planted", passed=not hf[0]["passed"])
    (d / "int8_a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in planted))
    _no_model(monkeypatch)
    res2 = _run(tmp_path, extra)
    assert (d / "stages.json").read_text() == stages          # no phase ran again
    v = res2["workloads"]["a"]["backends"]["int8"]["quality"]["vs_hf"]
    assert (v["identical_samples"], v["samples"]) == (1, 2) and v["tasks_with_a_different_sample"] == [hf[0]["task_id"]]
    assert v["pass_at_1_paired"]["delta"] == pytest.approx(0.5 if planted[0]["passed"] else -0.5)
    assert res2["workloads"]["c"] == res["workloads"]["c"]
    # an invocation over fewer backends still describes every finished phase of the run
    res3 = _run(tmp_path, ["--backends", "int8,hf", "--workloads", "a,c", "--naive-prompts", "a=1"])
    assert res3["workloads"]["a"]["backends"]["naive"] == res2["workloads"]["a"]["backends"]["naive"]
    assert res3["backends"]["naive"] == res2["backends"]["naive"] and list(res3["backends"]) == ["int8", "hf", "naive"]


def test_a_finished_phase_with_other_settings_is_refused(tmp_path, capsys):
    extra = ["--backends", "hf", "--default", "hf", "--workloads", "a", "--limit", "1"]
    _run(tmp_path, extra)
    rc = bench.main(TINY + extra + ["--max-batch", "4", "--out-dir", str(tmp_path), "--run-name", "r"])
    assert rc == 2 and "generate/a/hf ran with other settings" in capsys.readouterr().err


def test_llamacpp_phase_records_the_server(tmp_path, monkeypatch):
    from common.llamacpp_build import server_binary
    if not server_binary().is_file():
        pytest.skip("llama-server is built by setup.sh (python -m common.llamacpp_build)")
    res = _run(tmp_path, ["--backends", "hf,llamacpp", "--default", "llamacpp", "--workloads", "a", "--limit", "1",
                          "--server-slots", "1", "--server-ctx", "512"])
    e = res["workloads"]["a"]["backends"]["llamacpp"]
    assert e["generation"]["peak_rss_gb"]["server"] > 0 and e["generation"]["generated_tokens"] > 0
    assert res["backends"]["llamacpp"]["args"] == "--spec-type ngram-simple"
    assert res["backends"]["llamacpp"]["server"]["slots"] == 1
    assert res["acceptance"]["speed"]["a"]["faster_rival"] == "hf"
    assert "identical_samples" in e["quality"]["vs_hf"]
    # a later invocation without llamacpp (and other server flags) describes the server as the phase ran it,
    # and leaves the phase's own settings as they were recorded
    res2 = _run(tmp_path, ["--backends", "hf", "--default", "hf", "--workloads", "a", "--limit", "1"])
    assert res2["backends"]["llamacpp"]["server"]["slots"] == 1
    assert res2["workloads"]["a"]["backends"]["llamacpp"]["generation"]["settings"] == e["generation"]["settings"]
    assert "server" not in e["generation"]["settings"]
