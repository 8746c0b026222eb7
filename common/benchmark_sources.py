"""Where benchmark records come from: a local file in the dataset's public schema, or the
dataset itself through ``datasets.load_dataset`` (PAPER.md §5 ids) when the hub is reachable.

:func:`source_records` is the one entry: ``path`` (``--data-path``), else the benchmark's
environment variable, else the hub (unless ``HF_HUB_OFFLINE``/``HF_DATASETS_OFFLINE`` is set or
the hub cannot be reached), else an InputError naming all three. Every source yields plain
records (dicts in the public schema) that the same loader in :mod:`common.benchmarks` turns into
tasks, with what to record about them: a file's path and sha256, or the hub id, config, splits,
the commit read (``revision``: the one pinned in :data:`common.benchmarks.DATASETS`, else the
commit the hub serves at load time, resolved first and then read) and the sha256 of the records
as canonical JSON.

Local files are read by :func:`read_records` (JSONL, a JSON array, either optionally gzipped, or
parquet), not by ``datasets``' JSON builder: on tests/fixtures/HumanEvalPlus.jsonl that builder
returned the input 0.3 as 0.30000000000000004 (its JSON number parsing), and HumanEval+'s
expected outputs are computed from those inputs. Parquet (the hub's format) keeps doubles exactly.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
from pathlib import Path

from common.results import InputError, file_sha256


def _to_builtin(x):
    """numpy arrays/scalars from a parquet row -> lists / Python scalars (recursively)."""
    if hasattr(x, "tolist"):
        x = x.tolist()
    if isinstance(x, dict):
        return {k: _to_builtin(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_to_builtin(v) for v in x]
    return x


def _json_rows(path: Path, text: str) -> list:
    """JSON vs JSONL sniffed from the first non-space character (``[`` = array)."""
    if text.lstrip().startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(f"{path}, line {e.lineno}: not valid JSON ({e.msg})") from None
    rows = []
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise InputError(f"{path}, line {i}: not valid JSON ({e.msg})") from None
    return rows


def read_records(path: str | Path) -> list[dict]:
    """Records from a JSONL file, a JSON array, either optionally ``.gz``, or parquet.

    JSON vs JSONL is sniffed from the first non-space character (``[`` = array), so an HF
    ``to_json`` export named ``.json`` (really JSONL) works. Parquet needs a pandas parquet
    engine (pyarrow, installed with ``datasets``); without one it raises InputError (no
    fallback). Missing file, malformed JSON (with its line number) or a non-object record raise
    InputError."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"dataset file {path}: no such file")
    name = path.name.lower()
    if name.endswith(".parquet"):
        try:
            import pandas as pd
            df = pd.read_parquet(path)
        except ImportError as e:
            raise InputError(
                f"{path}: reading parquet needs pyarrow or fastparquet ({e}); convert it once "
                f"with `datasets`' to_json(...) or install a parquet engine") from None
        rows = [_to_builtin(r) for r in df.to_dict(orient="records")]
    else:
        if name.endswith(".gz"):
            with gzip.open(path, "rt", encoding="utf-8") as f:
                text = f.read()
        else:
            text = path.read_text(encoding="utf-8")
        rows = _json_rows(path, text)
    for i, r in enumerate(rows, 1):
        if not isinstance(r, dict):
            raise InputError(f"{path}: record {i} is a {type(r).__name__}, expected an object")
    if not rows:
        raise InputError(f"{path}: no records")
    return rows


def hub_offline() -> bool:
    """True when the user said offline (``HF_HUB_OFFLINE`` or ``HF_DATASETS_OFFLINE``)."""
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
               for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def hub_available() -> bool:
    """The hub may be asked: not offline, and its host answers on port 443."""
    if hub_offline():
        return False
    from common.models import _hub_reachable
    return _hub_reachable()


def records_sha256(rows: list[dict]) -> str:
    """sha256 of records as canonical JSON (sorted keys, one line each): the hub's content hash."""
    h = hashlib.sha256()
    for r in rows:
        h.update(json.dumps(r, sort_keys=True, ensure_ascii=False).encode() + b"\n")
    return h.hexdigest()


def hub_records(spec) -> tuple[list[dict], dict]:
    """Every split of ``spec`` (a :class:`common.benchmarks.DatasetSpec`) from the hub through
    ``datasets.load_dataset``, concatenated in the spec's order, at one resolved commit."""
    from datasets import load_dataset
    from huggingface_hub import HfApi
    revision = spec.revision or HfApi().dataset_info(spec.hub_id).sha
    rows = []
    for split in spec.splits:
        ds = load_dataset(spec.hub_id, spec.config, split=split, revision=revision)
        rows += [_to_builtin(r) for r in ds.to_list()]
    return rows, {"hub_id": spec.hub_id, "config": spec.config, "splits": list(spec.splits), "revision": revision,
                  "revision_pinned": spec.revision is not None, "path_from": "hub", "sha256": records_sha256(rows)}


def source_records(bench: str, spec, path: str | Path | None = None) -> tuple[list[dict], dict, str]:
    """(records, what to record about their source, a label for messages) of a file-backed
    benchmark: ``path``, else ``$spec.env``, else the hub, else InputError (nothing guessed)."""
    given, how = (path, "path argument") if path else (os.environ.get(spec.env), f"${spec.env}")
    if given:
        p = Path(given).expanduser()
        return read_records(p), {"path": str(p), "path_from": how, "sha256": file_sha256(p)}, str(p)
    if spec.hub_id and hub_available():
        rows, info = hub_records(spec)
        return rows, info, f"{spec.hub_id}@{info['revision'][:12]}"
    hub = (f"the hub copy {spec.hub_id} is not reachable or HF_HUB_OFFLINE is set" if spec.hub_id
           else "the hub has no copy in this schema")
    raise InputError(f"benchmark {bench!r} needs a local data file in the {spec.source} schema: pass "
                     f"--data-path/path= or set ${spec.env} ({hub}; nothing is downloaded)")
