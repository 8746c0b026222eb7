"""The math TTS pipeline and the math evaluation, shared by tts/tts_math500.py, tts/tts_aime.py,
tts/tts_procedural.py (all thin over :func:`math_script`, which differ only in their source and
default n), experiments/self_consistency.py, evals/eval_math.py and common/math_eval.py:

1. :func:`sample_math` — n answers per problem and the greedy answer beside them
   (:func:`evaluate_math`: generate → extract the final answer → check it against the gold
   answer with math-verify, into ``sampled/`` and ``greedy/``);
2. :func:`select_math` — majority vote over the extracted answers (self-consistency),
   log-probability selection, oracle, pass@k, SSD precondition, difficulty slices;
3. :func:`write_math_result` — ``result.json`` (kind ``tts_math``).

Sources (:data:`MATH_BENCHES`, loaded by common.math_benchmarks.load_math_tasks): the offline
procedural set and CHAMP (``champ``, ``champ_int``), and GSM8K, MATH-500, AIME from their files.
A problem's prompt is a :class:`MathPrompt`: the source's instruction in the model's chat
template (``chat``) or as plain text ending in ``Solution:`` (``raw``). Every sample is graded
by common.math_benchmarks.grade_sample: ``passed`` (flexible extraction, math-verify equality
with any gold form), ``strict_passed`` and ``faithful_passed`` (the paper's rules) beside it.
"""
from __future__ import annotations

import argparse
import collections
import json
import time
from dataclasses import dataclass
from pathlib import Path

from common.results import InputError

GSM8K_TEMPLATE = ("Solve this math problem step by step. End with the answer on a new line as: "
                  "#### <number>\n\nProblem: {problem}")
MATH_TEMPLATE = ("Solve this math problem step by step. Put the final answer in \\boxed{{}}.\n\n"
                 "Problem: {problem}")
AIME_TEMPLATE = ("Solve this math problem step by step. The answer is an integer from 0 to 999. Put the "
                 "final answer in \\boxed{{}}.\n\nProblem: {problem}")
MATH_FORMATS = ("chat", "raw")
RAW_MATH_STOPS = ("\n\nProblem:", "\nProblem:")


@dataclass(frozen=True)
class MathBench:
    """A math source as the TTS and evaluation scripts put it to the model: its instruction
    (``####`` line or ``\\boxed{}``, as :data:`common.math_benchmarks.MATH_BENCHMARKS` says) and
    token budget. Answers are graded by :func:`common.math_benchmarks.grade_sample` (flexible and
    strict extraction, math-verify equality with any gold form, the paper's faithful verdict)."""
    name: str
    template: str
    max_new_tokens: int

    @property
    def style(self) -> str:
        from common.math_benchmarks import MATH_BENCHMARKS
        return MATH_BENCHMARKS[self.name].style

    def grade(self, text: str, task: dict, checker=None, finish_reason: str | None = None) -> dict:
        """The grading fields of one completion (``passed``, ``strict_passed``, ``faithful_passed``, ...);
        ``finish_reason="length"`` for a text the token budget cut off."""
        from common.answer_check import default_checker
        from common.math_benchmarks import grade_sample
        return grade_sample(text, task, self.style, checker or default_checker(), faithful=True,
                            finish_reason=finish_reason)


# procedural: PAPER.md §3's evaluation budget (400); the rest keep room for longer solutions
MATH_BENCHES = {"procedural": MathBench("procedural", GSM8K_TEMPLATE, 400),
                "gsm8k": MathBench("gsm8k", GSM8K_TEMPLATE, 512),
                "champ": MathBench("champ", MATH_TEMPLATE, 1024),
                "champ_int": MathBench("champ_int", MATH_TEMPLATE, 1024),
                "math500": MathBench("math500", MATH_TEMPLATE, 1024),
                "aime": MathBench("aime", AIME_TEMPLATE, 1024)}


def math_bench(name: str) -> MathBench:
    if name not in MATH_BENCHES:
        raise InputError(f"unknown math benchmark {name!r}; choose from {', '.join(MATH_BENCHES)}")
    return MATH_BENCHES[name]


@dataclass(frozen=True)
class MathPrompt:
    """How a math problem is put to the model: ``bench``'s instruction in the ``fmt`` format.
    Its ``stop`` and ``max_new_tokens`` are the defaults of the sampling settings
    (:func:`common.cli.sampling_from_args`)."""
    bench: MathBench
    fmt: str = "chat"

    def __post_init__(self):
        if self.fmt not in MATH_FORMATS:
            raise InputError(f"unknown math prompt format {self.fmt!r}; choose from {', '.join(MATH_FORMATS)}")

    @property
    def name(self) -> str:
        return f"{self.bench.name}-{self.fmt}"

    @property
    def stop(self) -> tuple[str, ...]:
        return RAW_MATH_STOPS if self.fmt == "raw" else ()

    @property
    def max_new_tokens(self) -> int:
        return self.bench.max_new_tokens

    def render(self, task: dict, llm) -> str:
        user = self.bench.template.format(problem=task["problem"])
        if self.fmt == "chat":
            return llm.chat_prompt([{"role": "user", "content": user}])
        return user + "\n\nSolution:"

    def record(self) -> dict:
        """What results record about the prompt."""
        return {"bench": self.bench.name, "format": self.fmt, "template": self.bench.template}


# --------------------------------------------------------------------------------------------
# Flags
# --------------------------------------------------------------------------------------------


def add_math_args(p, bench: str) -> None:
    """Benchmark flags of the math TTS scripts."""
    p.add_argument("--data-path", default=None,
                   help=f"local {bench} data file (JSONL/JSON/parquet in the Hugging Face schema; default: "
                        f"the SELFIMPROVE_DATA_{bench.upper()} variable)")
    p.add_argument("--format", default="chat", choices=MATH_FORMATS,
                   help="chat: the instruction as a user turn in the model's chat template; raw: plain text "
                        "ending in 'Solution:' with a stop at the next 'Problem:' (default chat)")


def math_run_from_args(args, source: str, script: str, argv, run_dir: Path | None = None) -> "MathTTSRun":
    """The math TTS run of a script's flags on the benchmark ``source``: its prompt, sampling and
    selection settings (refused as InputError when inconsistent), problems, model and run
    directory (``run_dir``, else --out-dir / (--run-name or :func:`math_run_name`));
    ``script``/``argv`` are recorded as its provenance."""
    from common.cli import RunOptions, sampling_from_args
    from common.evaluation import EvalJob, EvalModel, Invocation
    from common.results import results_root
    from common.runtime import ModelConfig
    from common.math_benchmarks import load_math_tasks
    from common.tts_run import TTSSettings
    prompt = MathPrompt(math_bench(source), args.format)
    params = sampling_from_args(args, prompt, logprobs=True)
    settings = TTSSettings.from_args(args, params, code=False)
    tasks, dataset = load_math_tasks(source, limit=args.limit, path=args.data_path)
    model_cfg = ModelConfig.from_args(args)
    run_dir = run_dir or Path(args.out_dir or results_root()) / (
        args.run_name or math_run_name(source, model_cfg, prompt, params, args.limit))
    return MathTTSRun(EvalJob(run_dir, tasks, dataset, prompt, params, EvalModel.load(model_cfg),
                              Invocation(script, argv, vars(args)), RunOptions.from_args(args)), settings)


def math_run_name(source: str, model, prompt: MathPrompt, params, limit: int | None, prefix: str = "tts") -> str:
    """The default run name of the math scripts (``model``: a common.runtime.ModelConfig):
    ``<prefix>_<source>_<model>[_adapter-<adapter>]_<format>_<greedy | n..-t..-p..-s..>[_limit<N>]``
    (prefix ``tts`` for the TTS scripts, ``eval-math`` for evals/eval_math.py)."""
    from common.results import slug
    parts = [prefix, source, slug(model.model)] + (["adapter-" + slug(model.adapter)] if model.adapter else [])
    parts += [prompt.fmt, "greedy" if params.temperature == 0 else
              f"n{params.n}-t{params.temperature}-p{params.top_p}-s{params.seed}"]
    return "_".join(parts + ([f"limit{limit}"] if limit else []))


# --------------------------------------------------------------------------------------------
# The pipeline
# --------------------------------------------------------------------------------------------


def evaluate_math(job) -> dict:
    """Generate → extract the final answer → check it against the gold answer, for the
    evaluation ``job`` (:class:`common.evaluation.EvalJob` whose ``protocol`` is a
    :class:`MathPrompt`); resumable. ``samples.jsonl``: one line per sample with ``completion``
    (the model's text) and :meth:`MathBench.grade`'s fields (``passed``: the flexible answer
    equals the gold; ``strict_passed``; ``faithful_passed``: the paper's rules), so
    evals/confirm.py and common.compare.task_outcomes read it like a code run; ``result.json``:
    pass@k (unbiased) with intervals for each verdict, greedy accuracy, the protocol (template,
    stops, token budget), the checker's settings, the backend and counts."""
    from common.answer_check import AnswerChecker
    from common.generate import GenerationPlan, completion_fields, generate_missing, samples_in_order
    from common.results import JsonlLog, write_json_atomic, write_jsonl_atomic
    from common.rundir import open_run_dir, record_invocation
    from common.sampling import pick_backend
    run_dir, prompt, params = Path(job.run_dir), job.protocol, job.params
    head = {"model": job.model.info, "protocol": prompt.name, **prompt.record(), "sampling": params.to_dict()}
    open_run_dir(run_dir, {"kind": "math_samples", **head, "dataset": {k: job.dataset.get(k) for k in ("name", "sha256")},
                           "task_ids": [t["task_id"] for t in job.tasks]}, job.options.overwrite)
    backend = run_backend(run_dir, job.model.info.get("backend"))
    with AnswerChecker() as checker:
        def rows(task, comps):
            for si, c in enumerate(comps):
                yield {"task_id": task["task_id"], "sample_index": si, "completion": c.text,
                       **prompt.bench.grade(c.text, task, checker, c.finish_reason), **completion_fields(c),
                       "sum_logprob": c.sum_logprob, "mean_logprob": c.mean_logprob}

        plan = GenerationPlan(field="task_id", prompt=prompt.render, rows=rows, rows_per_item=params.n,
                              desc=prompt.bench.name)
        with JsonlLog(run_dir / "samples.jsonl") as lg:
            earlier = {r["task_id"] for r in lg.rows}
            gen = generate_missing(lg, job.tasks, job.model.get_llm, params, plan, job.options.progress)
            samples = samples_in_order(lg.rows, job.tasks)
        samples, regraded = regrade(samples, earlier, {t["task_id"]: t for t in job.tasks}, prompt.bench, checker)
        write_jsonl_atomic(run_dir / "samples.jsonl", samples)      # in task order, as a code run's
        checker_info = {**checker.settings(), "n_killed": checker.n_killed, "regraded": regraded}
    if gen.llm is not None:
        backend = {"backend": getattr(gen.llm, "backend", None)}
    elif not backend:
        backend = {"backend": job.model.info.get("backend") or pick_backend("auto"),
                   "backend_from": "--backend of an invocation that generated nothing (no earlier record)"}
    n_generated = len(job.tasks) - len(earlier)
    result = {**job.invocation.provenance(), "kind": "math_samples", **head, **backend,
              "protocol_detail": {**prompt.record(), "stop": list(params.stop), "max_new_tokens": params.max_new_tokens},
              "dataset": job.dataset, "checker": checker_info,
              "timings": {"generation_s": round(gen.seconds, 1), "tasks_generated_this_invocation": n_generated,
                          **record_invocation(run_dir, gen.seconds, n_generated, len(job.tasks))},
              "metrics": math_metrics(samples, job.tasks, params.n), **(job.extra or {})}
    write_json_atomic(run_dir / "result.json", result)
    return result


VERDICTS = {"flexible": "passed", "strict": "strict_passed", "faithful": "faithful_passed"}


def run_backend(run_dir: Path, backend: str | None) -> dict:
    """``{"backend": ...}`` of the run's earlier result.json ({} when there is none); an
    InputError when this invocation generates on another backend (``backend``, resolved), whose
    samples would mix with the earlier ones."""
    path = run_dir / "result.json"
    try:
        before = json.loads(path.read_text()).get("backend") if path.is_file() else None
    except ValueError:
        before = None
    if before and backend and backend != before:
        raise InputError(f"{run_dir}: its samples were generated on the {before} backend; resume it with "
                         f"--backend {before}, or pass another --run-name")
    return {"backend": before} if before else {}


def regrade(samples: list[dict], task_ids: set, tasks: dict, bench: MathBench, checker) -> tuple[list[dict], dict]:
    """The rows of ``task_ids`` (written by an earlier invocation) graded again from their stored
    text and finish reason by the current grader, so a resumed run never mixes grading rules and
    a grading fix needs no new generation. Returns the rows and {rows, answers_changed,
    verdicts_changed} (a verdict: any of :data:`VERDICTS`)."""
    out, answers, verdicts = [], 0, 0
    for r in samples:
        if r["task_id"] in task_ids:
            g = bench.grade(r["completion"], tasks[r["task_id"]], checker, r.get("finish_reason"))
            answers += g["answer"] != r.get("answer")
            verdicts += any(g.get(f) != r.get(f) for f in VERDICTS.values())
            r = {**r, **g}
        out.append(r)
    return out, {"rows": sum(r["task_id"] in task_ids for r in samples), "answers_changed": answers,
                 "verdicts_changed": verdicts}


def math_metrics(samples: list[dict], tasks: list[dict], n: int) -> dict:
    """pass@k with intervals under each verdict (:data:`VERDICTS`; ``pass_at_k`` is the
    flexible one), ``accuracy`` (greedy runs: pass@1, its Wilson interval and the count), counts
    of extraction rules, statuses, checks and finish reasons, mean new tokens: pure."""
    from common.metrics import format_ci, ks_for, pass_at_k_summary
    ids = [t["task_id"] for t in tasks]
    m = {}
    for name, field in VERDICTS.items():
        outcomes = collections.defaultdict(list)
        for r in samples:
            outcomes[r["task_id"]].append(bool(r.get(field)))
        summ = pass_at_k_summary({t: outcomes[t] for t in ids}, ks_for(n))
        m["pass_at_k" if name == "flexible" else f"{name}_pass_at_k"] = summ
        if name == "flexible":
            m["headline"] = {k: format_ci(v["mean"], v["ci"], v["n_tasks"]) for k, v in summ.items()}
        m["accuracy" if name == "flexible" else f"{name}_accuracy"] = {
            "mean": summ["pass@1"]["mean"], "ci": summ["pass@1"]["ci"], "ci_method": summ["pass@1"]["ci_method"],
            "passed_samples": sum(bool(r.get(field)) for r in samples), "n_samples": len(samples)}
    tokens = [r["n_tokens"] for r in samples if r.get("n_tokens") is not None]
    m.update({"n_tasks": len(ids), "n_samples": len(samples),
              "mean_new_tokens": round(sum(tokens) / len(tokens), 1) if tokens else None,
              **{f"{f}_counts": dict(collections.Counter(str(r.get(f)) for r in samples))
                 for f in ("extraction", "status", "check", "finish_reason")}})
    return m


@dataclass(frozen=True)
class MathTTSRun:
    """One math TTS run: ``job`` is the sampled evaluation (an EvalJob with a
    :class:`MathPrompt`) whose ``run_dir`` is the run's root; ``settings`` the selection and
    greedy settings (:class:`common.tts_run.TTSSettings`)."""
    job: object
    settings: object


@dataclass
class MathSamples:
    """What :func:`sample_math` produced: the sampled evaluation's result, its rows per task (by
    sample index), the greedy verdicts and their source, and when the invocation started."""
    sampled: dict
    rows: dict
    greedy: dict | None
    greedy_info: dict | None
    t_start: float


def sample_math(run: MathTTSRun) -> MathSamples:
    """Stage 1: the sampled answers (``sampled/``) and the greedy reference (``greedy/`` or
    ``--greedy-run``), each extracted and checked as it is generated."""
    import dataclasses
    from common.generate import by_field
    from common.results import read_jsonl
    from common.tts_run import greedy_reference
    t_start = time.time()
    root = Path(run.job.run_dir)
    sampled = evaluate_math(dataclasses.replace(run.job, run_dir=root / "sampled"))
    rows = by_field(sorted(read_jsonl(root / "sampled" / "samples.jsonl"), key=lambda r: r["sample_index"]),
                    "task_id")
    greedy, greedy_info = greedy_reference(run.settings, run.job, evaluate_math, field="passed")
    return MathSamples(sampled, rows, greedy, greedy_info, t_start)


def math_candidates(task_id: str, rows: list[dict]):
    """Candidates of one math task: answers' vote keys (common.answers.vote_keys: answers
    math-verify finds equal share a key) as signatures, so majority vote = self-consistency."""
    from common.answers import vote_keys
    from common.selection import Candidates
    return Candidates(task_id, [bool(r["passed"]) for r in rows], [r.get("mean_logprob") for r in rows],
                      [r.get("sum_logprob") for r in rows], signatures=vote_keys([r.get("answer") for r in rows]))


def select_math(run: MathTTSRun, samples: MathSamples) -> tuple[list, tuple[dict, dict]]:
    """Stage 2: (candidates, (metrics, per_task)) — majority vote, log-probability selection,
    oracle, pass@k, SSD precondition and difficulty slices."""
    from common.tts_summary import summarise_selection
    s = run.settings
    cands = [math_candidates(t["task_id"], samples.rows[t["task_id"]]) for t in run.job.tasks]
    return cands, summarise_selection(cands, samples.greedy, selectors=s.selectors, primary=s.primary,
                                      ssd_k=s.ssd_k, ssd_threshold_pp=s.ssd_threshold_pp, per_task_ssd=False)


def write_math_result(run: MathTTSRun, samples: MathSamples, selection: tuple[dict, dict]) -> dict:
    """Stage 3: ``result.json`` (kind ``tts_math``), with each task's answers and gold answer."""
    from common.results import write_json_atomic
    metrics, per_task = selection
    metrics["extraction_counts"] = samples.sampled["metrics"]["extraction_counts"]
    for t in run.job.tasks:
        per_task[t["task_id"]]["answers"] = [r.get("answer") for r in samples.rows[t["task_id"]]]
        per_task[t["task_id"]]["gold"] = t["answer"]
    job, root = run.job, Path(run.job.run_dir)
    result = {**job.invocation.provenance(), "kind": "tts_math", "model": job.model.info, **job.protocol.record(),
              "sampling": job.params.to_dict(), "dataset": job.dataset, "greedy_source": samples.greedy_info,
              "sampled_run": str(root / "sampled"),
              "timings": {"sampled": samples.sampled["timings"],
                          "total_s_this_invocation": round(time.time() - samples.t_start, 1)},
              "metrics": metrics, "per_task": per_task}
    write_json_atomic(root / "result.json", result)
    return result


# --------------------------------------------------------------------------------------------
# The math TTS scripts
# --------------------------------------------------------------------------------------------


def math_script(source: str, doc: str, script: str, n_samples: int, choices: tuple[str, ...] = ()):
    """``(build_parser, main)`` of the math TTS script on the benchmark ``source``
    (tts/tts_math500.py, tts/tts_aime.py, tts/tts_procedural.py): ``doc`` is its docstring,
    ``n_samples`` its default n; ``choices``: other sources the script takes with ``--bench``
    (default ``source``). The method: load the problems and the model, sample (answers
    extracted and checked), select, summarise."""
    def build_parser() -> argparse.ArgumentParser:
        from common.cli import add_model_args, add_run_args, add_sampling_args
        from common.tts_run import add_tts_args
        p = argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                    formatter_class=argparse.RawDescriptionHelpFormatter, epilog=doc)
        if choices:
            p.add_argument("--bench", default=source, choices=choices,
                           help=f"math source: {', '.join(choices)} (default {source})")
        add_math_args(p, source)
        add_tts_args(p, code=False)
        add_model_args(p)
        add_sampling_args(p, n=n_samples, temperature=0.8, top_p=0.95)
        add_run_args(p)
        return p

    def _main(argv) -> int:
        from common.tts_summary import print_summary
        args = build_parser().parse_args(argv)
        run = math_run_from_args(args, getattr(args, "bench", source), script, argv)
        samples = sample_math(run)                        # 1. sample (answers extracted and checked)
        _, selection = select_math(run, samples)          # 2. select (majority vote, log-prob, oracle)
        res = write_math_result(run, samples, selection)  # 3. summarise
        m, params = res["metrics"], run.job.params
        print_summary(f"{res['bench']} · {res['model']['ref']} · {res['format']} · n={params.n} "
                      f"T={params.temperature} top_p={params.top_p} · {m['n_tasks']} tasks", m,
                      [f"answer extraction: {m['extraction_counts']}", f"results: {run.job.run_dir}"])
        return 0

    def main(argv=None) -> int:
        from common.cli import run_main
        return run_main(_main, argv)

    return build_parser, main
