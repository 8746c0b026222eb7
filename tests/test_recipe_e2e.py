"""One end-to-end run of the whole self-bootstrap loop on a real embedded model, tiny settings:
generate 2 problems -> verify -> solve (2 attempts, 64 tokens) -> check -> repair -> mine -> one
training step -> a two-task HumanEval evaluation of base and adapter under he-chat and
qwen-official, with paired comparisons; then the same command again resumes (nothing redone).

SmolLM2-135M rarely writes a parsable problem within 64 tokens, so iteration 1 is seeded with
two fixture problems (``--seed-problems tests/fixtures/pairs_seed_problems.jsonl``) that go
through verification, solving and mining like generated ones. Sampling is seeded, and with
these settings both get one passing and one failing attempt, so pairs are mined (the test
requires at least one and checks each against the attempts it came from); the four fixture
pairs are also added to the training set (``--extra-pairs``).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIX = Path(__file__).parent / "fixtures"


@pytest.mark.model
def test_bootstrap_end_to_end_then_resume(tmp_path):
    from common.pairs import validate_pairs_file
    from common.problems import leaks_body, solver_prompt
    from common.models import check_adapter_dir
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")     # shared 2-core machines: avoid thread oversubscription
    pairs_out = tmp_path / "pairs_e2e.jsonl"
    args = ["recipe/bootstrap.py", "--model", "smollm2-135m-instruct", "--problems-per-iter", "2", "--attempts", "2",
            "--max-new-tokens", "64", "--seed-problems", str(FIX / "pairs_seed_problems.jsonl"),
            "--extra-pairs", str(FIX / "pairs_valid.jsonl"), "--max-steps", "1", "--grad-accum", "1",
            "--warmup-ratio", "0", "--limit", "2", "--eval-max-new-tokens", "64", "--workers", "1",
            "--out-dir", str(tmp_path), "--run-name", "e2e", "--pairs-out", str(pairs_out), "--quiet"]
    p = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, env=env, timeout=1500)
    assert p.returncode == 0, p.stderr[-4000:]
    run = tmp_path / "e2e"
    res = json.loads((run / "result.json").read_text())
    for key in ("script", "argv", "git", "versions", "config", "model", "stages", "totals", "pairs_out", "extra_pairs",
                "training", "evaluation", "timings"):
        assert key in res, key

    # every stage ran once and recorded its counts
    st = {k.split("/")[1]: v["counts"] for k, v in res["stages"].items()}
    assert set(st) == {"generate", "verify", "solve", "check", "repair", "mine"}
    assert st["generate"]["generated"] == 2
    assert st["verify"]["candidates"] == 4 and st["verify"]["origins"] == {"generated": 2, "seed-file": 2}
    assert st["verify"]["verified"] >= 2 and st["verify"]["decontamination"]["n_checked"] == st["verify"]["parsed"]
    assert st["check"]["attempts"] == 2 * st["verify"]["verified"] == st["solve"]["attempts"]
    assert st["repair"]["repair_attempts"] <= st["check"]["all_fail"]
    for k in ("n_pairs", "duplicates_dropped", "contaminated", "pairs_out", "n_junk"):
        assert k in st["mine"]

    # the solver never saw a reference body
    problems = [json.loads(l) for l in (run / "iter1" / "problems.jsonl").read_text().splitlines()]
    for r in problems:
        if r["verified"]:
            pr = r["problem"]
            assert leaks_body(solver_prompt(pr), pr["reference"], pr["entry_point"]) == []

    # pairs: the output file holds only mined pairs, each valid and made of the run's own scored
    # attempts (broken = a failing one, fixed = a passing one); training saw mined + the 4 extra ones.
    # Sampling is seeded: with these settings both seeded problems get one passing and one failing
    # attempt (2 pairs measured), so there are always pairs to check.
    mined = [json.loads(l) for l in pairs_out.read_text().splitlines()]
    assert mined, "no pair was mined, so nothing below would check the mining"
    assert res["pairs_out"]["count"] == len(mined) == st["mine"]["pairs_out"]
    assert validate_pairs_file(pairs_out)[1] == []
    checked = [json.loads(l) for l in (run / "iter1" / "attempts.jsonl").read_text().splitlines()]
    attempts = {r["problem_id"]: r["attempts"] for r in checked}
    for m in mined:
        assert m["source"] in ("self-mined", "self-repair") and m["model"] == "smollm2-135m-instruct"
        broken = attempts[m["problem_id"]][m["broken_index"]]
        assert broken["code"] == m["broken"] and not broken["passed"]
        if m["source"] == "self-mined":
            fixed = attempts[m["problem_id"]][m["fixed_index"]]
            assert fixed["code"] == m["fixed"] and fixed["passed"]
    tr = res["training"]["iter1"]
    assert tr["pairs"]["count"] == len(mined) + 4 and tr["pairs"]["extra"] == 4
    assert res["extra_pairs"]["count"] == 4 and len(res["extra_pairs"]["sha256"]) == 64
    assert tr["stats"]["optimizer_steps"] == 1
    check_adapter_dir(str(run / "iter1" / "adapter"))

    # evaluation: base and adapter on the same two tasks, both protocols, paired comparison
    ev = res["evaluation"]["iter1"]
    assert set(ev) == {"he-chat", "qwen-official"}
    for proto, entry in ev.items():
        c = entry["iter1"]["comparison"]
        assert c["n"] == 2 and 0 <= c["mcnemar_p"] <= 1 and c["ci"][0] <= c["delta"] <= c["ci"][1]
        for side in ("base", "iter1"):
            rows = [json.loads(l) for l in (Path(entry[side]["run_dir"]) / "samples.jsonl").read_text().splitlines()]
            assert [r["task_id"] for r in rows] == ["HumanEval/0", "HumanEval/1"]
        cfg = json.loads((Path(entry["iter1"]["run_dir"]) / "config.json").read_text())
        assert cfg["model"]["adapter"].endswith("iter1/adapter") and cfg["protocol"] == proto

    # resume: the same command redoes nothing (no stage, no training, no generation)
    p2 = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, env=env, timeout=900)
    assert p2.returncode == 0, p2.stderr[-3000:]
    assert "already holds this run; skipped" in p2.stderr and "loaded smollm2" not in p2.stderr
    res2 = json.loads((run / "result.json").read_text())
    assert res2["stages"] == res["stages"] and res2["pairs_out"]["sha256"] == res["pairs_out"]["sha256"]
    assert res2["training"]["iter1"]["skipped"] is True


# --------------------------------------------------------------------------------------------
# every recipe/control/experiment script: --help, and bad input is one line with no traceback
# (fast: these fail before any model is loaded)
# --------------------------------------------------------------------------------------------

SCRIPTS_HELP = [
    ("recipe/bootstrap.py", ["--iterations", "--problems-per-iter", "--attempts", "--train-every", "--eval-every",
                             "--seed-problems", "--extra-pairs", "--pairs-out", "--mining-timeout", "--eval-protocols",
                             "--lora-rank", "--no-repair", "--problem-style", "--keep-contaminated"]),
    ("recipe/multi_pair.py", ["--warmup-pairs", "--max-pairs-per-problem", "--attempts", "--lora-rank"]),
    ("recipe/curriculum_code.py", ["--rounds", "--pool-size", "--attempts", "--seed-problems"]),
    ("evals/confirm.py", ["--adapter", "--base-run", "--adapter-run", "--eval-protocols", "--limit"]),
    ("controls/corrupt_pairs_control.py", ["--problems", "--mbpp", "--control-seed", "--limit-problems"]),
    ("controls/format_only_control.py", ["--problems", "--mbpp", "--junk", "--control-seed"]),
    ("experiments/pair_count_sweep.py", ["--pairs", "--counts", "--seed", "--eval-protocols"]),
    ("experiments/seed_sweep.py", ["--pairs", "--seeds", "--limit-pairs"]),
    ("recipe/preference_pairs.py", ["--samples", "--problems", "--bench", "--max-pairs-per-task", "--keep-contaminated"]),
    ("recipe/train_preference.py", ["--pairs", "--method", "--beta", "--orpo-lambda", "--lr", "--epochs", "--max-steps",
                                    "--lora-rank", "--seed", "--resume", "--save-steps", "--precision"]),
    ("recipe/train_on_pairs.py", ["--trainer", "--precision", "--gradient-checkpointing", "--logging-steps",
                                  "--save-steps", "--resume", "--max-steps"]),
]


@pytest.mark.parametrize("script,flags", SCRIPTS_HELP, ids=[s for s, _ in SCRIPTS_HELP])
def test_script_help(script, flags):
    p = subprocess.run([sys.executable, script, "--help"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0
    assert "Deviations" in p.stdout and "Quick command" in p.stdout and "Full command" in p.stdout
    for f in flags:
        assert f in p.stdout, f


BAD_INPUT = [
    ("recipe/bootstrap.py", ["--iterations", "0"], "--iterations must be >= 1"),
    ("recipe/bootstrap.py", ["--attempts", "0"], "--attempts must be >= 1"),
    ("recipe/bootstrap.py", ["--eval-protocols", "he-chat,bogus"], "unknown ['bogus']"),
    ("recipe/bootstrap.py", ["--seed-problems", "/nonexistent.jsonl"], "no such file"),
    ("recipe/bootstrap.py", ["--extra-pairs", str(FIX / "pairs_malformed.jsonl")], "line 2: missing field 'fixed'"),
    ("recipe/bootstrap.py", ["--problems-per-iter", "0"], "needs --seed-problems"),
    ("recipe/multi_pair.py", ["--warmup-pairs", str(FIX / "pairs_malformed.jsonl")], "8 malformed line(s)"),
    ("recipe/curriculum_code.py", ["--rounds", "0"], "--rounds must be >= 1"),
    ("evals/confirm.py", [], "give --adapter DIR"),
    ("evals/confirm.py", ["--base-run", "/nonexistent"], "go together"),
    ("controls/corrupt_pairs_control.py", ["--problems", str(FIX / "pairs_valid.jsonl")], "missing field 'id'"),
    ("controls/corrupt_pairs_control.py", ["--limit-problems", "0"], "--limit-problems must be >= 1"),
    ("controls/format_only_control.py", ["--junk", "stub,nonsense"], "--junk: unknown kinds ['nonsense']"),
    ("experiments/pair_count_sweep.py", ["--pairs", str(FIX / "pairs_valid.jsonl"), "--counts", "2,99"],
     "exceed the 4 pairs"),
    ("experiments/pair_count_sweep.py", ["--pairs", str(FIX / "pairs_valid.jsonl"), "--counts", "a"],
     "comma-separated integers"),
    ("experiments/seed_sweep.py", ["--pairs", str(FIX / "pairs_malformed.jsonl")], "malformed line(s)"),
    ("experiments/seed_sweep.py", ["--pairs", str(FIX / "pairs_valid.jsonl"), "--seeds", "7,7"], "repeats"),
]


@pytest.mark.parametrize("script,args,needle", BAD_INPUT, ids=[f"{s}:{' '.join(a)[:30]}" for s, a, _ in BAD_INPUT])
def test_script_bad_input_is_one_line(tmp_path, script, args, needle):
    p = subprocess.run([sys.executable, script, "--out-dir", str(tmp_path), *args], cwd=REPO, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 2, p.stderr[-2000:]
    assert needle in p.stderr and "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert list(tmp_path.iterdir()) == []            # nothing written
