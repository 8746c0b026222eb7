"""The claim index of REPRODUCE.md section 7 (figures/claims.json + results/, rendered by
figures/tables.py): the committed file is complete and fresh, and --check fails when a row is
missing or stale, when claims.json lacks a claim or a seed-002 command, or names a script that
does not exist; every command of the index parses with the script it names."""
import copy
import json
import re
import shlex
import shutil
from pathlib import Path

import pytest
from conftest import REPO, load_script

tables = load_script("figures/tables.py")
DOC = REPO / "REPRODUCE.md"


def check(tmp_path, doc_text=None, index=None, results=None) -> int:
    argv = ["--check"]
    if doc_text is not None:
        (tmp_path / "R.md").write_text(doc_text)
        argv += ["--doc", str(tmp_path / "R.md")]
    if index is not None:
        (tmp_path / "claims.json").write_text(json.dumps(index))
        argv += ["--index", str(tmp_path / "claims.json")]
    if results is not None:
        argv += ["--results", str(results)]
    return tables.main(argv)


def committed_results_copy(tmp_path) -> Path:
    """results/*/result.json and train_log.jsonl (all that the tables read), in a scratch directory."""
    root = tmp_path / "results"
    for p in (REPO / "results").glob("*/result.json"):
        (root / p.parent.name).mkdir(parents=True)
        for name in ("result.json", "train_log.jsonl"):
            if (p.parent / name).is_file():
                shutil.copy(p.parent / name, root / p.parent.name / name)
    return root


def row(doc: str, first_cell: str) -> str:
    """The index row (claims or seed-command table) whose first cell is ``first_cell``."""
    index_part = doc.split("<!-- TABLE:claims -->", 1)[1]
    [line] = [l for l in index_part.splitlines() if l.startswith(f"| {first_cell} |")]
    return line


def test_committed_reproduce_md_is_complete_and_fresh(capsys):
    """What CI runs: `python figures/tables.py --check` on the committed tree."""
    assert tables.main(["--check"]) == 0, capsys.readouterr().err
    doc = DOC.read_text()
    index = tables.load_index()
    for n in range(1, 20):
        assert row(doc, str(n))
    for s in index["seed_commands"]:
        assert f"`{s['seed']}`".replace("|", "\\|") in row(doc, s["id"])


def test_check_fails_when_a_row_or_a_block_is_missing(tmp_path, capsys):
    doc = DOC.read_text()
    assert check(tmp_path, doc) == 0
    for cell in ("7", "13", "S14", "S36"):
        assert check(tmp_path, doc.replace(row(doc, cell) + "\n", "")) == 1
        assert "out of date" in capsys.readouterr().err
    no_block = re.sub(r"<!-- TABLE:seed_commands -->.*?<!-- /TABLE:seed_commands -->\n", "", doc, flags=re.S)
    assert check(tmp_path, no_block) == 1
    assert "no <!-- TABLE:seed_commands -->" in capsys.readouterr().err


def test_check_fails_when_a_number_or_status_is_stale(tmp_path, capsys):
    doc = DOC.read_text()
    line = row(doc, "1")
    assert "51.8 → 58.5, delta pp +6.7 [-0.6, +14.0]" in line
    assert check(tmp_path, doc.replace(line, line.replace("51.8 → 58.5", "51.8 → 59.5"))) == 1
    line = row(doc, "3")
    assert line.endswith("| runs here, no result yet |")
    assert check(tmp_path, doc.replace(line, line.replace("runs here, no result yet", "GPU scale only"))) == 1

    # results/ changes under an unchanged document: a number moves, a result disappears
    results = committed_results_copy(tmp_path)
    assert check(tmp_path, results=results) == 0
    p = results / "confirm_multi_ext_qwen05b_he-chat" / "result.json"
    r = json.loads(p.read_text())
    r["comparisons"]["he-chat"]["comparison"]["mean_b"] = 0.6
    p.write_text(json.dumps(r))
    capsys.readouterr()
    assert check(tmp_path, results=results) == 1
    assert "51.8 → 60.0" in capsys.readouterr().err
    shutil.rmtree(results / "confirm_multi_ext_qwen05b_he-chat")
    shutil.rmtree(results / "confirm_multi_ext_qwen05b_qwen-official")
    shutil.rmtree(results / "tts_humaneval_qwen2.5-coder-0.5b-instruct_qwen-official_n10-t0.8-p0.95-s0")
    assert check(tmp_path, results=results) == 1
    out = tmp_path / "R.md"
    assert tables.main(["--results", str(results), "--doc", str(out)]) == 0
    regenerated = out.read_text()
    assert row(regenerated, "1").endswith("| runs here, no result yet |")
    assert "| **committed result**: `results/self-consistency_from_" in row(regenerated, "7")  # still there
    assert "results/tts_humaneval_" not in row(regenerated, "7").split("| **committed result**")[1]


def test_check_fails_when_the_index_lacks_a_claim_or_points_nowhere(tmp_path, capsys):
    index = tables.load_index()
    assert tables.index_problems(index) == []
    short = copy.deepcopy(index)
    short["claims"] = [c for c in short["claims"] if c["claim"] != 13]
    assert tables.index_problems(short) == ["claim 13 of PAPER.md has 0 rows in claims.json (needs exactly 1)"]
    assert check(tmp_path, index=short) == 1
    assert "claim 13 of PAPER.md has 0 rows" in capsys.readouterr().err

    bad = copy.deepcopy(index)
    by_id = {s["id"]: s for s in bad["seed_commands"]}
    by_id["S3"]["ours"] = "`python recipe/no_such_script.py --x 1`"
    by_id["S25"]["ours"] = "none yet (`recipe/bootstrap.py` is planned)"
    by_id["S36"]["status"] = "maybe"
    by_id["S12"].pop("detail")
    bad["claims"][0]["seed"].append("S99")
    bad["claims"][1]["results"] = [{"run": "x", "read": "guess"}]
    bad["seed_commands"].append(dict(by_id["S1"]))
    found = tables.index_problems(bad)
    assert found == ["seed row id S1 is used 2 times",
                     "claim 1 refers to seed row S99, which does not exist",
                     "claim 2: result x has an unknown reader 'guess'",
                     "seed row S3: `recipe/no_such_script.py` does not exist",
                     "seed row S12: status data needs a detail (the flag that takes the data, or the issue)",
                     "seed row S25: `recipe/bootstrap.py` exists now; give the row its command and status",
                     "seed row S36: status 'maybe' is not one of runs, gpu, setup, data, no-script"]


SEED_EXCERPT = """| AIME pass@k curve | `python tts/tts_aime.py --model Qwen/Qwen3-8B-Base --n 32` | 25.6 |
See `recipe/curriculum_code.py`. ```bash for N in 10 21; do head -n $N p.jsonl > /tmp/p_$N.jsonl python \
recipe/train_on_pairs.py \\
  --pairs /tmp/p_$N.jsonl --out a_$N  # train
python evals/eval_raw.py --adapter a_$N --bench humaneval done ``` and `python recipe/bootstrap.py --tag x; ls`"""


def test_seed_commands_are_read_from_the_guide_text():
    cmds, scripts = tables.seed_commands_in(SEED_EXCERPT)
    assert cmds == ["python tts/tts_aime.py --model Qwen/Qwen3-8B-Base --n 32",
                    "python recipe/train_on_pairs.py --pairs /tmp/p_$N.jsonl --out a_$N",
                    "python evals/eval_raw.py --adapter a_$N --bench humaneval",
                    "python recipe/bootstrap.py --tag x"]
    assert scripts == ["evals/eval_raw.py", "recipe/bootstrap.py", "recipe/curriculum_code.py",
                       "recipe/train_on_pairs.py", "tts/tts_aime.py"]
    index = tables.load_index()
    assert tables.source_problems(index, SEED_EXCERPT) == [
        "seed 002 command without a row: python recipe/train_on_pairs.py --pairs /tmp/p_$N.jsonl --out a_$N",
        "seed 002 command without a row: python evals/eval_raw.py --adapter a_$N --bench humaneval",
        "seed 002 command without a row: python recipe/bootstrap.py --tag x"]
    short = copy.deepcopy(index)
    short["seed_commands"] = [s for s in short["seed_commands"] if s["id"] not in ("S14", "S3")]
    assert tables.source_problems(short, SEED_EXCERPT)[:2] == [
        "seed 002 command without a row: python tts/tts_aime.py --model Qwen/Qwen3-8B-Base --n 32",
        "seed 002 command without a row: python recipe/train_on_pairs.py --pairs /tmp/p_$N.jsonl --out a_$N"]
    assert "seed 002 script without a row: recipe/curriculum_code.py" in tables.source_problems(short, SEED_EXCERPT)
    paper = "## 1. The claims\n| # | claim |\n|---|---|\n| 1 | a |\n| 20 | new |\n## 2. Recipe\n| 21 | not a claim |\n"
    assert tables.source_problems(index, paper_text=paper) == ["claim 20 of PAPER.md section 1 has no row"]


@pytest.mark.skipif(not tables.SEED_FILE.is_file() or not tables.PAPER_FILE.is_file(),
                    reason="../shared (seed 002, PAPER.md) is not next to this checkout")
def test_every_command_of_seed_002_and_claim_of_paper_has_a_row(tmp_path, capsys):
    seed, paper = tables.SEED_FILE.read_text(), tables.PAPER_FILE.read_text()
    index = tables.load_index()
    cmds, scripts = tables.seed_commands_in(seed)
    assert len(set(cmds)) >= 29 and len(scripts) >= 25
    assert tables.source_problems(index, seed, paper) == []
    short = copy.deepcopy(index)
    short["seed_commands"] = [s for s in short["seed_commands"] if s["id"] != "S29"]
    short["claims"] = [c for c in short["claims"] if c["claim"] != 15]
    assert tables.source_problems(short, seed, paper) == [
        "seed 002 command without a row: python experiments/recursive_bootstrap.py --model Qwen/Qwen2.5-7B --iters 3",
        "seed 002 script without a row: experiments/recursive_bootstrap.py",
        "claim 15 of PAPER.md section 1 has no row"]
    assert check(tmp_path, index=short) == 1
    assert "recursive_bootstrap.py" in capsys.readouterr().err


def _python_commands(markdown: str) -> list[tuple[str, list[str]]]:
    """(script, argv) of every backticked `python <script> ...` in a cell (shell parts dropped)."""
    out = []
    for span in re.findall(r"`([^`]*)`", markdown):
        m = re.search(r"python\s+(\S+\.py)(.*)", span)
        if m:
            out.append((m.group(1), shlex.split(m.group(2).split(";")[0])))
    return out


def _index_commands(field: str):
    index = tables.load_index()
    rows = index["claims"] + index["seed_commands"]
    return sorted({(s, tuple(a)) for r in rows for s, a in _python_commands(f"`{r[field]}`" if field == "seed"
                                                                               else r[field])})


@pytest.mark.parametrize("script,argv", _index_commands("ours"))
def test_every_command_of_ours_parses_with_its_script(script, argv):
    load_script(script).build_parser().parse_args(list(argv))


@pytest.mark.parametrize("script,argv", [(s, a) for s, a in _index_commands("seed") if (REPO / s).is_file()])
def test_every_seed_command_whose_script_exists_here_parses(script, argv, capsys):
    """The guide's own spelling (--n, --tag, --base-model, ...) parses with our script of the same path."""
    load_script(script).build_parser().parse_args(list(argv))


def test_status_falls_back_to_the_rows_own_status():
    r = {"results": [{"run": "absent", "read": "eval"}], "status": "data", "detail": "`--data-path` (X)"}
    assert tables.status_cell(r, {}) == "needs data not available offline: `--data-path` (X)"
    assert tables.status_cell({"status": "gpu"}, {}) == "GPU scale only"
    res = {"absent": {"metrics": {"headline": {"pass@1": "50.0 [1, 2] (n=4)"}, "passed_tasks": 2, "n_tasks": 4}}}
    assert tables.status_cell(r, res) == "**committed result**: `results/absent/` pass@1 50.0 [1, 2] (n=4), 2/4 tasks"
    with pytest.raises(ValueError, match="results/absent/result.json: no eval number"):
        tables.status_cell(r, {"absent": {"metrics": {}}})
