"""The committed mining runs: every non-empty pairs file under data/ is valid, and no solver prompt behind
a committed pair contains a line of its problem's reference body (issue 5, acceptance 1).

The solve stage builds each prompt with common.problems.solver_prompt from the problem recorded in
results/<run>/iter<i>/problems.jsonl; this test rebuilds those prompts from the committed files
and checks them against the recorded reference implementations."""
import json
from pathlib import Path

import pytest

from common.pairs import validate_pairs_file
from common.problems import leaks_body, solver_prompt

REPO = Path(__file__).resolve().parent.parent
RUNS = sorted(p.parent for p in (REPO / "results").glob("*/result.json")
              if "variant" in json.loads(p.read_text()))


def _rows(path):
    return [json.loads(l) for l in Path(path).read_text().splitlines() if l.strip()]


@pytest.mark.parametrize("path", sorted(p for p in (REPO / "data").glob("pairs_*.jsonl") if p.stat().st_size),
                         ids=lambda p: p.name)
def test_committed_pairs_files_are_valid(path):
    pairs, bad = validate_pairs_file(path)
    assert bad == [] and pairs


@pytest.mark.parametrize("run", RUNS, ids=lambda p: p.name)
def test_no_solver_prompt_contains_the_reference(run):
    res = json.loads((run / "result.json").read_text())
    problems = {}
    for f in sorted(run.glob("iter*/problems.jsonl")):
        for r in _rows(f):
            if r.get("verified"):
                problems[r["problem_id"]] = r["problem"]
    verified = sum(v["counts"].get("verified", 0) for k, v in res["stages"].items() if k.endswith("/verify"))
    assert len(problems) == verified
    for pid, pr in problems.items():
        prompt = solver_prompt(pr)
        assert leaks_body(prompt, pr["reference"], pr["entry_point"]) == [], pid
    pairs = _rows(REPO / res["pairs_out"]["path"])  # an absolute path stays absolute
    assert len(pairs) == res["pairs_out"]["count"]
    for p in pairs:
        if p.get("source") == "self-mined":
            assert p["problem_id"] in problems, p["problem_id"]
