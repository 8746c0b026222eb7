"""Run directories: one writer at a time, one configuration each, stages done once.

- :func:`lock_run_dir` takes ``<run_dir>/.lock`` (an exclusive ``flock`` held until the process
  exits, with the holder's pid written in it). A second process on the same directory stops at
  once with an :class:`~common.results.InputError` naming the holder's pid. The kernel drops a
  ``flock`` when its holder dies, so a lock left behind by a killed process is taken over.
- :func:`open_run_dir` = lock + :func:`check_run_config`: a run directory belongs to one
  configuration (``config.json``); resuming it with other settings is refused.
- :class:`StageBook` is ``stages.json``: which stages of a multi-stage run are complete, with their
  counts and seconds. :meth:`StageBook.run` is the stage block every staged script uses: skip when
  done, else run, write the stage's rows atomically, record counts and time.
- :func:`record_invocation` sums generation time over the invocations of a resumable run.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import time
from pathlib import Path

from common.results import InputError, JsonlLog, read_jsonl, write_json_atomic, write_jsonl_atomic

log = logging.getLogger(__name__)

LOCK_NAME = ".lock"
_HELD: dict[Path, int] = {}   # run_dir -> open fd of its lock (held until exit or release)


def lock_run_dir(run_dir: str | Path) -> None:
    """Hold ``run_dir``'s lock for the rest of this process (idempotent within one process).

    Raises InputError naming the pid of the process that holds it."""
    run_dir = Path(run_dir).resolve()
    if run_dir in _HELD:
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise InputError(f"{run_dir} is being written by another process (pid {holder}); wait for it to "
                         f"finish or stop it, or pass another --run-name") from None
    stale = os.pread(fd, 32, 0).decode(errors="replace").strip()
    if stale and stale != str(os.getpid()):
        log.info("%s: taking over the lock left by pid %s (no longer running)", run_dir, stale)
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    _HELD[run_dir] = fd


def release_run_dir(run_dir: str | Path) -> None:
    """Give the lock back before the process ends (tests; a script simply exits)."""
    fd = _HELD.pop(Path(run_dir).resolve(), None)
    if fd is not None:
        os.close(fd)


def run_identity(config):
    """What of a run's configuration must match on resume. A model's backend counts as the
    backend that generates (``backend``), not the flag that chose it, so ``--backend auto`` and
    ``--backend int8`` resume each other's runs on a CPU. Configurations written before model
    records carried ``backend`` name only the flag (``backend_requested``); ``auto`` then meant
    the float32 engine (``hf``), on the CPU machines those runs were made on."""
    if isinstance(config, list):
        return [run_identity(x) for x in config]
    if not isinstance(config, dict):
        return config
    out = {k: run_identity(v) for k, v in config.items() if k != "backend_requested"}
    if "backend_requested" in config:
        out["backend"] = recorded_backend(config)
    return out


def recorded_backend(model: dict) -> str | None:
    """The backend that generated, from a result's or configuration's model record (see
    :func:`run_identity` for records that name only ``backend_requested``)."""
    req = model.get("backend_requested")
    return model.get("backend") or {"auto": "hf"}.get(req, req)


def other_backend(model: dict, backend: str | None) -> str | None:
    """The backend a model record says generated, when it is known and differs from ``backend``
    (a pairing or a resume across the two would mix backends); else None."""
    theirs = recorded_backend(model)
    return theirs if theirs and backend and theirs != backend else None


def differing_keys(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Dotted paths of the keys whose values differ (one level into dicts that both sides hold)."""
    out = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict) and not prefix:
            out += differing_keys(a, b, f"{k}.")
        else:
            out.append(prefix + k)
    return out


def check_run_config(run_dir: Path, config: dict, overwrite: bool) -> None:
    """A run directory belongs to one configuration; resuming with another one is refused.

    ``overwrite`` deletes the run's own files (samples, result, config, invocations) first."""
    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.json"
    config = json.loads(json.dumps(config))  # the on-disk form (tuples become lists)
    if overwrite and run_dir.exists():
        for name in ("samples.jsonl", "result.json", "config.json", "invocations.jsonl"):
            (run_dir / name).unlink(missing_ok=True)
    if cfg_path.is_file():
        old, new = run_identity(json.loads(cfg_path.read_text())), run_identity(config)
        if old != new:
            diff = differing_keys(old, new)
            hint = (f"pass --backend {old['model']['backend']} to resume it, " if diff == ["model.backend"] else "pass ")
            raise InputError(f"{run_dir} holds a run with different settings ({', '.join(diff)}); "
                             f"{hint}another --run-name, or --overwrite to start again")
    else:
        write_json_atomic(cfg_path, config)


def open_run_dir(run_dir: str | Path, config: dict, overwrite: bool = False) -> Path:
    """Create (or resume) a single-stage run directory: lock it, then check its configuration."""
    run_dir = Path(run_dir)
    lock_run_dir(run_dir)
    check_run_config(run_dir, config, overwrite)
    return run_dir


def prepare_run_dir(run_dir: str | Path, config: dict, overwrite: bool) -> Path:
    """Like :func:`open_run_dir` for staged runs, whose ``overwrite`` removes the whole directory
    (only one that holds a config.json of ours; never anything else)."""
    run_dir = Path(run_dir)
    if overwrite and run_dir.exists():
        if not (run_dir / "config.json").is_file():
            raise InputError(f"--overwrite: {run_dir} has no config.json of ours; refusing to delete it")
        lock_run_dir(run_dir)  # refuse before deleting what another process is writing
        for child in run_dir.iterdir():
            if child.name != LOCK_NAME:
                shutil.rmtree(child) if child.is_dir() else child.unlink()
    return open_run_dir(run_dir, config)


def read_rows(path: str | Path) -> list[dict]:
    """A stage's JSONL rows; [] when the stage wrote no file."""
    return read_jsonl(path, "stage file") if Path(path).is_file() else []


class StageBook:
    """``stages.json`` of a run: which stages are complete, with their counts and seconds."""

    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / "stages.json"
        self.data = json.loads(self.path.read_text()) if self.path.is_file() else {}

    def done(self, key: str) -> dict | None:
        return self.data.get(key)

    def mark(self, key: str, counts: dict, seconds: float) -> dict:
        self.data[key] = {"counts": counts, "seconds": round(seconds, 2)}
        write_json_atomic(self.path, self.data)
        log.info("stage %s done in %.1fs: %s", key, seconds,
                 ", ".join(f"{k}={v}" for k, v in counts.items() if not isinstance(v, (dict, list))))
        return self.data[key]

    def run(self, key: str, path: str | Path | None, fn) -> list[dict]:
        """The stage block: unless ``key`` is done, ``rows, counts = fn()``, write ``rows`` to
        ``path`` atomically and mark the stage with ``counts`` and its seconds. Returns the
        stage's rows as on disk (``[]`` when ``path`` is None)."""
        if not self.done(key):
            t0 = time.time()
            rows, counts = fn()
            if path is not None:
                write_jsonl_atomic(path, rows)
            self.mark(key, counts, time.time() - t0)
        return read_rows(path) if path is not None else []


def record_invocation(run_dir: Path, gen_s: float, n_generated: int, n_tasks: int) -> dict:
    """Generation time summed over every invocation of a resumable run.

    Each invocation that generated something appends ``{time_utc, generation_s,
    tasks_generated}`` to ``run_dir/invocations.jsonl``. A run written before that log existed
    starts it from its last result.json (the only invocation whose time is known). Returns
    ``{"generation_s_all_invocations", "invocations", "tasks_generated_untimed"}``; the last is
    the number of tasks generated by invocations whose time was not recorded (0 when complete).
    """
    path = run_dir / "invocations.jsonl"
    rows = read_jsonl(path) if path.is_file() else []
    if not rows and (run_dir / "result.json").is_file():
        try:
            t = json.loads((run_dir / "result.json").read_text()).get("timings", {})
        except ValueError:
            t = {}
        if t.get("tasks_generated_this_invocation") and t.get("generation_s"):
            rows = [{"time_utc": None, "generation_s": t["generation_s"],
                     "tasks_generated": t["tasks_generated_this_invocation"], "from": "an earlier result.json"}]
    if n_generated:
        rows.append({"time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                     "generation_s": round(gen_s, 1), "tasks_generated": n_generated})
    if rows:
        with JsonlLog(path) as lg:
            for r in rows[len(lg.rows):]:
                lg.append(r)
    timed = sum(r["tasks_generated"] for r in rows)
    return {"generation_s_all_invocations": round(sum(r["generation_s"] for r in rows), 1),
            "invocations": len(rows), "tasks_generated_untimed": max(0, n_tasks - timed)}
