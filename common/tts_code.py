"""The code TTS pipeline in four stages, shared by tts/tts_humaneval.py, tts/tts_scaling.py,
experiments/self_consistency.py and experiments/recipe_x_tts_synergy.py:

1. :func:`sample_code` — n samples per task (:func:`common.evaluation.evaluate_code` into
   ``sampled/``), the greedy reference beside them (``greedy/`` or ``--greedy-run``) and
   model-written assert tests (:func:`generate_model_tests`, ``model_tests.jsonl``);
2. :func:`execute_code` — one sandbox run per sample on the prompt's example inputs and the
   tests' inputs (``execution.jsonl``), turned into :class:`common.selection.Candidates`;
3. select — :func:`common.tts_summary.summarise_selection` (every selector, pass@k, oracle,
   SSD precondition, difficulty slices);
4. :func:`write_code_result` — ``result.json`` (kind ``tts_code``).

Each stage is resumable through its files; a run is described once by :class:`CodeTTSRun`.
"""
from __future__ import annotations

import collections
import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from common.results import InputError

log = logging.getLogger(__name__)

TESTGEN_USER = (
    "Write {m} assert statements that test the function `{entry}` below with concrete inputs and "
    "their expected results. Use only literal values, one assert per line. Output one ```python "
    "block containing only the assert lines.\n\n```python\n{prompt}\n```")
TESTGEN_RAW_STOPS = ("\n\n\n", "\ndef ", "\nclass ", "\nif __name__", "\nprint(")


@dataclass(frozen=True)
class TestGenConfig:
    """Model-written tests for CodeT (Chen et al. 2022): prompt the model for assert lines.
    Chat protocols: the request in ``TESTGEN_USER`` with the answer pre-filled as
    ``assert <entry>(``; ``raw``: the HumanEval prompt, ``pass``, a comment and ``assert <entry>(``
    (CodeT's own format)."""
    __test__ = False
    n: int = 2
    """generations per task"""
    temperature: float = 0.8
    top_p: float = 0.95
    max_new_tokens: int = 256
    """token budget of one generation"""
    n_asserts: int = 5
    """asserts asked for in one generation"""
    max_tests: int = 20
    """distinct tests kept per task, in generation order"""
    seed: int = 0

    def params(self, chat: bool):
        from common.sampling import SamplingParams
        return SamplingParams(n=self.n, temperature=self.temperature, top_p=self.top_p,
                              max_new_tokens=self.max_new_tokens, seed=self.seed,
                              stop=("\n```",) if chat else TESTGEN_RAW_STOPS)

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "user_template": TESTGEN_USER}


@dataclass(frozen=True)
class CodeTTSRun:
    """One code TTS run. ``job``: the sampled evaluation (:class:`common.evaluation.EvalJob`)
    whose ``run_dir`` is the run's root; ``strategy``: the prompt strategy every evaluation of
    the run uses; ``settings``: selection, greedy reference, model tests, SSD rule;
    ``seed_from``: generations of another run with the same prompts to reuse instead of
    generating again, ``{"sampled": dir, "greedy": dir, "model_tests": file}`` (copied into an
    empty run, then scored here: HumanEval+ re-scores HumanEval's samples)."""
    job: object
    strategy: object
    settings: object
    seed_from: Mapping[str, Path | None] | None = None

    @property
    def root(self) -> Path:
        return Path(self.job.run_dir)

    def evaluate(self, job) -> dict:
        """One evaluation of the run (sampled or greedy) with the run's prompt strategy."""
        from common.evaluation import evaluate_code
        from common.strategies import strategy_job
        return evaluate_code(strategy_job(self.strategy, job))

    def config(self) -> dict:
        s, job = self.settings, self.job
        return {"kind": "tts_code", "model": job.model.info, "protocol": self.strategy.protocol_name,
                "sampling": job.params.to_dict(), "greedy_run": s.greedy_run, "run_greedy": s.run_greedy,
                "testgen": s.testgen.to_dict() if s.testgen else None, "behaviour_inputs": s.behaviour_inputs,
                "dataset": {k: job.dataset.get(k) for k in ("name", "sha256")},
                "task_ids": [t["task_id"] for t in job.tasks]}


@dataclass
class CodeSamples:
    """What :func:`sample_code` produced: the sampled evaluation's result, its scored rows per
    task (by sample index), the greedy verdicts and their source, the model-written tests per
    task and their counts, and when the invocation started."""
    sampled: dict
    rows: dict
    greedy: dict | None
    greedy_info: dict | None
    tests: dict
    test_stats: dict | None
    t_start: float


@dataclass
class CodeExecution:
    """What :func:`execute_code` produced: one Candidates per task, the parsed prompt examples
    per task, how many programs ended in each sandbox status, and the seconds it took."""
    cands: list
    examples: dict
    status_counts: dict
    seconds: float


# --------------------------------------------------------------------------------------------
# 1. sample
# --------------------------------------------------------------------------------------------


def sample_code(run: CodeTTSRun) -> CodeSamples:
    """Stage 1: the sampled evaluation, the greedy reference and the model-written tests."""
    from common.generate import by_field
    from common.results import read_jsonl
    from common.rundir import open_run_dir
    from common.tts_run import greedy_reference
    t_start = time.time()
    job, root = run.job, run.root
    open_run_dir(root, run.config(), job.options.overwrite)
    if job.options.overwrite:
        for name in ("model_tests.jsonl", "execution.jsonl"):
            (root / name).unlink(missing_ok=True)
    seed_run(run)
    sampled = run.evaluate(dataclasses.replace(job, run_dir=root / "sampled"))
    rows = by_field(sorted(read_jsonl(root / "sampled" / "samples.jsonl"), key=lambda r: r["sample_index"]),
                    "task_id")
    name = run.strategy.protocol_name
    greedy, greedy_info = greedy_reference(run.settings, job, run.evaluate, record={"protocol": name})
    if run.settings.greedy_run and (greedy_info.get("protocol") or name) != name:
        raise InputError(f"--greedy-run {run.settings.greedy_run} used protocol {greedy_info['protocol']!r}, "
                         f"this run {name!r}")
    tests, test_stats = {t["task_id"]: [] for t in job.tasks}, None
    if run.settings.with_codet:
        tests, test_stats = generate_model_tests(job, run.strategy.protocol, run.settings.testgen,
                                                 root / "model_tests.jsonl")
    return CodeSamples(sampled, rows, greedy, greedy_info, tests, test_stats, t_start)


def seed_run(run: CodeTTSRun) -> None:
    """Copy ``run.seed_from``'s generations into the run's empty parts (the sampled and greedy
    samples without their verdicts, the model tests of the run's tasks)."""
    from common.evaluation import SAMPLE_FIELDS
    from common.results import read_jsonl, write_jsonl_atomic
    ids = {t["task_id"] for t in run.job.tasks}
    for sub, src in (run.seed_from or {}).items():
        if sub not in ("sampled", "greedy", "model_tests"):
            raise ValueError(f"seed_from: unknown part {sub!r}")
        dst = run.root / (sub + ".jsonl" if sub == "model_tests" else f"{sub}/samples.jsonl")
        src = Path(src) / "samples.jsonl" if src is not None and sub != "model_tests" else src
        if src is None or dst.exists() or not Path(src).is_file():
            continue
        keep = None if sub == "model_tests" else SAMPLE_FIELDS
        write_jsonl_atomic(dst, [r if keep is None else {k: r.get(k) for k in keep}
                                 for r in read_jsonl(src) if r["task_id"] in ids])


def render_test_prompt(task: dict, protocol, llm, cfg: TestGenConfig) -> tuple[str, str]:
    """(model input, text the answer continues) for a test-generation request."""
    entry = task["entry_point"]
    lead = f"assert {entry}("
    if protocol.chat:
        msgs = ([{"role": "system", "content": protocol.system}] if protocol.system else []) + [
            {"role": "user", "content": TESTGEN_USER.format(m=cfg.n_asserts, entry=entry,
                                                            prompt=task["prompt"].rstrip())}]
        return llm.chat_prompt(msgs, "```python\n" + lead), lead
    return task["prompt"] + "    pass\n\n\n# check the correctness of " + entry + "\n" + lead, lead


def generate_model_tests(job, protocol, cfg: TestGenConfig, path: Path) -> tuple[dict, dict]:
    """Model-written tests for the tasks of ``job`` (its model), asked for in ``protocol``'s
    chat form (or raw), resumable through ``path`` (JSONL of raw generations). Returns
    (task_id -> list of :class:`common.selection.Example`, stats)."""
    from common.generate import GenerationPlan, by_field, generate_missing
    from common.results import JsonlLog

    def rows(task, comps):
        lead = f"assert {task['entry_point']}("
        for si, c in enumerate(comps):
            yield {"task_id": task["task_id"], "sample_index": si, "raw": c.text, "text": lead + c.text,
                   "finish_reason": c.finish_reason}

    plan = GenerationPlan(field="task_id", prompt=lambda t, llm: render_test_prompt(t, protocol, llm, cfg)[0],
                          rows=rows, rows_per_item=cfg.n, desc="model tests")
    with JsonlLog(path) as lg:
        gen = generate_missing(lg, job.tasks, job.model.get_llm, cfg.params(protocol.chat), plan, job.options.progress)
        generated = list(lg.rows)
    if gen.items:
        log.info("model tests: %d tasks x %d generations in %.0fs", gen.items, cfg.n, gen.seconds)
    texts = by_field(sorted(generated, key=lambda r: (r["task_id"], r["sample_index"])), "task_id")
    tests, n_raw = {}, 0
    for t in job.tasks:
        tests[t["task_id"]], n = distinct_tests([r["text"] for r in texts.get(t["task_id"], [])],
                                                t["entry_point"], cfg.max_tests)
        n_raw += n
    counts = [len(v) for v in tests.values()]
    stats = {"tasks_with_tests": sum(1 for c in counts if c), "mean_tests_per_task": sum(counts) / max(1, len(counts)),
             "parsed_asserts": n_raw, "generations": len(generated)}
    return tests, stats


def distinct_tests(texts: Sequence[str], entry_point: str, max_tests: int) -> tuple[list, int]:
    """(the first ``max_tests`` distinct asserts parsed from ``texts``, asserts parsed in all)."""
    from common.selection import parse_test_asserts
    seen, out, n_raw = set(), [], 0
    for text in texts:
        for ex in parse_test_asserts(text, entry_point):
            n_raw += 1
            key = (ex.args, repr(ex.expected), ex.check)
            if key not in seen and len(out) < max_tests:
                seen.add(key)
                out.append(ex)
    return out, n_raw


# --------------------------------------------------------------------------------------------
# 2. execute
# --------------------------------------------------------------------------------------------


def task_inputs(examples: Sequence, tests: Sequence, behaviour_inputs: str = "both"):
    """Shared input list of one task: (inputs, example offsets, test offsets, behaviour offsets).
    Equal argument sources are run once."""
    from common.tts_run import BEHAVIOUR_INPUTS
    if behaviour_inputs not in BEHAVIOUR_INPUTS:
        raise ValueError(f"behaviour_inputs must be one of {BEHAVIOUR_INPUTS}")
    index: dict[str, int] = {}
    ex_off = [index.setdefault(e.args, len(index)) for e in examples]
    t_off = [index.setdefault(e.args, len(index)) for e in tests]
    beh = {"prompt": ex_off, "model": t_off, "both": ex_off + t_off}[behaviour_inputs]
    beh = list(dict.fromkeys(beh))
    return list(index), ex_off, t_off, beh


def execute_candidates(tasks: list[dict], rows_by_task: Mapping[str, list[dict]],
                       inputs_by_task: Mapping[str, list[str]], options, path: Path | None = None) -> dict:
    """Run every candidate once on its task's inputs (sandbox ``outputs`` mode; ``options``: a
    :class:`common.cli.RunOptions`). Returns task_id -> list of (status, outputs) per sample; a
    task with no inputs gets ("no_inputs", []) without running anything. Written to ``path``
    (JSONL) when given."""
    from common.sandbox import DEFAULT_TIMEOUT, Job, SandboxPool
    jobs, where = [], []
    out: dict[str, list] = {}
    for t in tasks:
        tid = t["task_id"]
        rows = rows_by_task[tid]
        out[tid] = [("no_inputs", [])] * len(rows)
        if not inputs_by_task.get(tid):
            continue
        for si, r in enumerate(rows):
            jobs.append(Job.outputs(t["prompt"] + (r.get("completion") or ""), t["entry_point"], inputs_by_task[tid]))
            where.append((tid, si))
    errors: dict = {}
    if jobs:
        t0 = time.time()
        with SandboxPool(workers=options.workers, timeout=options.timeout or DEFAULT_TIMEOUT) as pool:
            results = pool.run_many(jobs, progress=options.progress, desc="behaviour")
        for (tid, si), res in zip(where, results):
            out[tid][si] = (res.status, list(res.outputs or []))
            errors[(tid, si)] = res.error.strip().splitlines()[-1] if res.error.strip() else ""
        log.info("behaviour: ran %d programs in %.0fs", len(jobs), time.time() - t0)
    if path is not None:
        from common.results import write_jsonl_atomic
        write_jsonl_atomic(Path(path), [{"task_id": tid, "sample_index": si, "status": st, "outputs": outs,
                                         "error": errors.get((tid, si), "")}
                                        for tid, lst in out.items() for si, (st, outs) in enumerate(lst)])
    return out


def build_candidates(task: dict, rows: list[dict], examples, tests, execution, layout, with_codet: bool):
    """The :class:`common.selection.Candidates` of one task from its scored rows, parsed
    examples/tests, execution results and input ``layout`` (:func:`task_inputs`)."""
    from common.selection import Candidates, behaviour_signature, codet_matrix, example_holds
    _, ex_off, t_off, beh_off = layout
    n_in = len(set(ex_off) | set(t_off))
    sigs, vis, outs_ok = [], [], []
    for st, outs in execution:
        # a program that stopped part-way (timeout) still has outputs for the inputs before it
        ok = n_in > 0 and len(outs) == n_in
        sigs.append(behaviour_signature(st, [outs[i] for i in beh_off]) if ok and beh_off else None)
        vis.append([example_holds(outs[i], e) for e, i in zip(examples, ex_off)] if ok else [False] * len(examples))
        outs_ok.append(outs if ok else None)
    cand = Candidates(task["task_id"], [bool(r["passed"]) for r in rows],
                      [r.get("mean_logprob") for r in rows], [r.get("sum_logprob") for r in rows],
                      signatures=sigs, visible=vis)
    if with_codet:
        cand.codet = codet_matrix(outs_ok, tests, t_off)
    return cand


def execute_code(run: CodeTTSRun, samples: CodeSamples) -> CodeExecution:
    """Stage 2: every sample run once on its prompt's example inputs and its model tests'
    inputs; the outputs become behaviour clusters, visible-example verdicts and the CodeT
    matrix of each task's Candidates."""
    from common.selection import parse_prompt_examples
    tasks = run.job.tasks
    examples = {t["task_id"]: parse_prompt_examples(t["prompt"], t["entry_point"]) for t in tasks}
    layout = {t["task_id"]: task_inputs(examples[t["task_id"]], samples.tests[t["task_id"]],
                                        run.settings.behaviour_inputs) for t in tasks}
    t0 = time.time()
    execution = execute_candidates(tasks, samples.rows, {t: v[0] for t, v in layout.items()}, run.job.options,
                                   path=run.root / "execution.jsonl")
    seconds = time.time() - t0
    cands = [build_candidates(t, samples.rows[t["task_id"]], examples[t["task_id"]], samples.tests[t["task_id"]],
                              execution[t["task_id"]], layout[t["task_id"]], run.settings.with_codet)
             for t in tasks]
    status_counts = dict(collections.Counter(st for lst in execution.values() for st, _ in lst))
    return CodeExecution(cands, examples, status_counts, seconds)


# --------------------------------------------------------------------------------------------
# 3. select, 4. summarise
# --------------------------------------------------------------------------------------------


def select_code(run: CodeTTSRun, samples: CodeSamples, execution: CodeExecution) -> tuple[dict, dict]:
    """Stage 3: every selector on every task, pass@k, oracle, SSD precondition, slices."""
    from common.tts_summary import summarise_selection
    s = run.settings
    return summarise_selection(execution.cands, samples.greedy, selectors=s.selectors, primary=s.primary,
                               ssd_k=s.ssd_k, ssd_threshold_pp=s.ssd_threshold_pp)


def write_code_result(run: CodeTTSRun, samples: CodeSamples, execution: CodeExecution,
                      selection: tuple[dict, dict]) -> dict:
    """Stage 4: ``result.json`` (kind ``tts_code``) from the three stages before; returns it."""
    from common.results import write_json_atomic
    metrics, per_task = selection
    n_ex = [len(v) for v in execution.examples.values()]
    metrics["prompt_examples"] = {"tasks_with_examples": sum(1 for x in n_ex if x), "n_examples": sum(n_ex)}
    metrics["model_tests"] = samples.test_stats
    metrics["execution_status_counts"] = execution.status_counts
    for t in run.job.tasks:
        per_task[t["task_id"]]["n_prompt_examples"] = len(execution.examples[t["task_id"]])
        per_task[t["task_id"]]["n_model_tests"] = len(samples.tests[t["task_id"]])
    job, s = run.job, run.settings
    result = {**job.invocation.provenance(), "kind": "tts_code", "model": job.model.info,
              "protocol": run.strategy.protocol_name, "prompt_strategy": run.strategy.to_dict(),
              "sampling": job.params.to_dict(), "dataset": job.dataset, "greedy_source": samples.greedy_info,
              "testgen": s.testgen.to_dict() if s.testgen else None, "behaviour_inputs": s.behaviour_inputs,
              "sampled_run": str(run.root / "sampled"), "sandbox_limits": samples.sampled.get("sandbox_limits"),
              "timings": {"sampled": samples.sampled["timings"], "execution_s": round(execution.seconds, 1),
                          "total_s_this_invocation": round(time.time() - samples.t_start, 1)},
              "metrics": metrics, "per_task": per_task}
    write_json_atomic(run.root / "result.json", result)
    return result
