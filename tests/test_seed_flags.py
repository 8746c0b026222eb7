"""Seed 002's flag spellings (common.cli.SEED_FLAGS): read as this repository's flags by every
script that uses the shared flag groups, or refused with one line naming our flag."""
import argparse
import re

import pytest
from conftest import REPO, load_script

from common.cli import SEED_FLAGS, accept_seed_spellings, add_run_args

# (script, the guide's spelling, what our parser must hold)
ACCEPTED = [
    ("tts/tts_humaneval.py", ["--n", "8", "--temperature", "0.7"], {"n_samples": 8, "temperature": 0.7}),
    ("tts/tts_math500.py", ["--n=8", "--tag", "m"], {"n_samples": 8, "run_name": "m"}),
    ("tts/tts_aime.py", ["--n", "32"], {"n_samples": 32}),
    ("experiments/self_consistency.py", ["--bench", "gsm8k", "--n", "8"], {"bench": "gsm8k", "n_samples": 8}),
    ("experiments/recipe_x_tts_synergy.py", ["--base-model", "Qwen/Qwen2.5-14B", "--adapter", "a", "--n", "8"],
     {"model": "Qwen/Qwen2.5-14B", "adapter": "a", "n_samples": 8}),
    ("evals/eval_raw.py", ["--code-adapter", "adapter_7b_seed13", "--tag", "x"],
     {"adapter": "adapter_7b_seed13", "run_name": "x"}),
    ("recipe/multi_pair.py", ["--warmup_pairs_path", "data/w.jsonl", "--n_problems", "200", "--n_attempts", "8",
                              "--max_pairs_per_problem", "4", "--lora_rank", "32", "--tag", "multi_rerun"],
     {"extra_pairs": "data/w.jsonl", "problems_per_iter": 200, "attempts": 8, "max_pairs_per_problem": 4,
      "lora_rank": 32, "run_name": "multi_rerun"}),
    ("recipe/bootstrap.py", ["--tag", "sat_check", "--iters", "3"], {"run_name": "sat_check", "iterations": 3}),
    ("recipe/bootstrap.py", ["--iterations", "2"], {"iterations": 2}),          # our own flag: untouched
    ("recipe/curriculum_code.py", ["--iterations", "16", "--tag", "curr"], {"rounds": 16, "run_name": "curr"}),
    ("controls/corrupt_pairs_control.py", ["--tag", "mbpp_corrupt_control"], {"run_name": "mbpp_corrupt_control"}),
    ("experiments/seed_sweep.py", ["--pairs", "p.jsonl", "--lora_rank", "16", "--base-model", "m"], {"lora_rank": 16, "model": "m"}),
]

# (script, the guide's spelling, what the one-line refusal must name)
REFUSED = [
    ("recipe/bootstrap.py", ["--warmup_pairs_path", "w.jsonl"], ["--warmup-pairs", "recipe/multi_pair.py"]),
    ("recipe/bootstrap.py", ["--n", "8"], ["--n-samples", "tts/*.py"]),
    ("evals/eval_raw.py", ["--stop", "\nclass "], ["--protocol raw", "stop strings come with the prompt protocol"]),
    ("evals/confirm.py", ["--n_problems", "3"], ["--problems-per-iter", "recipe/bootstrap.py"]),
    ("tts/tts_humaneval.py", ["--iters", "3"], ["--iterations", "recipe/bootstrap.py"]),
    ("recipe/curriculum_code.py", ["--warmup_pairs_path=w.jsonl"], ["--warmup-pairs"]),
]


@pytest.mark.parametrize("script,argv,expected", ACCEPTED)
def test_seed_spellings_are_read_as_ours(script, argv, expected, capsys):
    args = load_script(script).build_parser().parse_args(argv)
    assert {k: getattr(args, k) for k in expected} == expected
    seed_flags = [a.split("=")[0] for a in argv if a.startswith("--") and a.split("=")[0] not in
                  load_script(script).build_parser()._option_string_actions]
    notes = capsys.readouterr().err.splitlines()
    assert [re.search(r"note: (\S+) \(seed 002's spelling\) is read as --", n).group(1) for n in notes] == seed_flags


@pytest.mark.parametrize("script,argv,names", REFUSED)
def test_seed_spellings_without_a_counterpart_are_refused_in_one_line(script, argv, names, capsys):
    with pytest.raises(SystemExit) as e:
        load_script(script).build_parser().parse_args(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "usage:" not in err
    assert "error: " + argv[0].split("=")[0] + " is seed 002's" in err
    for name in names:
        assert name in err


def test_other_bad_flags_keep_argparse_errors(capsys):
    with pytest.raises(SystemExit):
        load_script("evals/eval_raw.py").build_parser().parse_args(["--nonsense", "1"])
    err = capsys.readouterr().err
    assert "usage:" in err and "unrecognized arguments: --nonsense" in err


def test_translation_stops_at_double_dash_and_is_installed_once():
    p = argparse.ArgumentParser(prog="t")
    add_run_args(p)
    p.add_argument("rest", nargs="*")
    accept_seed_spellings(p)                      # a second install changes nothing
    args = p.parse_args(["--tag", "a", "--", "--tag"])
    assert args.run_name == "a" and args.rest == ["--tag"]
    args = p.parse_known_args(["--tag=b", "--extra"])
    assert args[0].run_name == "b" and args[1] == ["--extra"]


def test_every_flag_spelled_in_the_guide_is_ours_somewhere_or_a_seed_spelling():
    """Flags spelled in seed 002's commands (the committed index holds each command verbatim)."""
    tables = load_script("figures/tables.py")
    index = tables.load_index()
    text = " ".join(s["seed"] for s in index["seed_commands"])
    if tables.SEED_FILE.is_file():
        text += tables.SEED_FILE.read_text()
    spelled = set(re.findall(r"(?<![\w-])--[A-Za-z][\w-]*", text))
    assert {"--n", "--tag", "--base-model", "--warmup_pairs_path", "--n_problems", "--stop"} <= spelled
    ours = set()
    for d in ("evals", "recipe", "tts", "experiments", "controls"):
        for path in sorted((REPO / d).glob("*.py")):
            ours |= set(load_script(f"{d}/{path.name}").build_parser()._option_string_actions)
    for flag in sorted(spelled):
        assert flag in ours or flag in SEED_FLAGS or flag.replace("_", "-") in ours, flag


def test_every_script_reads_the_seed_spellings(capsys):
    missing = set()
    for d in ("evals", "recipe", "tts", "experiments", "controls"):
        for path in sorted((REPO / d).glob("*.py")):
            if not getattr(load_script(f"{d}/{path.name}").build_parser(), "_seed_spellings", False):
                missing.add(f"{d}/{path.name}")
    assert not missing
