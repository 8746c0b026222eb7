"""Greedy math evaluation of a base model and its adapters, and their paired comparison.

Used by evals/eval_math.py (one evaluation) and by every math recipe and experiment that judges
an adapter (common/math_recipe.py; experiments/cross_domain_code_to_math.py). One evaluation is
:func:`common.tts_math.evaluate_math` with greedy settings: the benchmark's instruction
(:data:`common.tts_math.MATH_BENCHES`) in the model's chat template, the final answer extracted
and checked against the gold one with math-verify (flexible, strict and the paper's faithful
verdict side by side), ``samples.jsonl`` + ``result.json`` in its run directory, resumable.

* :class:`MathEvalSpec` and its flags (:func:`add_math_eval_args`): benchmark, data file,
  format, task limit, token budget, a finished base run to reuse (:func:`check_math_base_run`
  decides whether it may stand in);
* :func:`math_eval_job` builds the :class:`common.evaluation.EvalJob` of one evaluation;
* :func:`evaluate_and_compare_math` evaluates the base model and named adapters one at a time
  (a :class:`common.compare.ModelSlot`) and pairs each adapter with the base per task
  (:func:`common.compare.compare`: paired bootstrap interval, McNemar exact p, tasks gained and
  lost), under each verdict.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from common.results import InputError
from common.rundir import other_backend

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MathEvalSpec:
    """What every math evaluation of a run uses (greedy). ``base_run``: a finished greedy
    evaluation of the base model (evals/eval_math.py) reused as the base side."""
    bench: str = "procedural"
    data_path: str | None = None
    limit: int | None = None
    fmt: str = "chat"
    max_new_tokens: int | None = None
    base_run: str | None = None

    def __post_init__(self):
        from common.tts_math import MATH_BENCHES, MATH_FORMATS
        if self.bench not in MATH_BENCHES:
            raise InputError(f"unknown math benchmark {self.bench!r}; choose from {', '.join(MATH_BENCHES)}")
        if self.fmt not in MATH_FORMATS:
            raise InputError(f"unknown math prompt format {self.fmt!r}; choose from {', '.join(MATH_FORMATS)}")
        if self.limit is not None and self.limit < 1:
            raise InputError(f"--limit must be >= 1, got {self.limit}")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise InputError(f"--eval-max-new-tokens must be >= 1, got {self.max_new_tokens}")

    @classmethod
    def from_args(cls, args) -> "MathEvalSpec":
        """From parsed :func:`add_math_eval_args` flags (+ ``--limit``)."""
        return cls(args.eval_bench, args.eval_data_path, getattr(args, "limit", None), args.eval_format,
                   args.eval_max_new_tokens, args.base_run)

    def prompt(self):
        from common.tts_math import MathPrompt, math_bench
        return MathPrompt(math_bench(self.bench), self.fmt)

    def params(self):
        """Greedy sampling settings of the evaluation (the benchmark's token budget by default)."""
        from common.sampling import SamplingParams
        p = self.prompt()
        return SamplingParams(n=1, temperature=0.0, top_p=1.0, top_k=0, seed=0, logprobs=True, stop=p.stop,
                              max_new_tokens=self.max_new_tokens or p.max_new_tokens)

    def tasks(self) -> tuple[list[dict], dict]:
        from common.math_benchmarks import load_math_tasks
        return load_math_tasks(self.bench, limit=self.limit, path=self.data_path)

    def to_config(self) -> dict:
        return {"bench": self.bench, "data_path": self.data_path, "limit": self.limit, "format": self.fmt,
                "max_new_tokens": self.params().max_new_tokens}


@dataclass(frozen=True)
class EvalContext:
    """How the evaluations of one invocation were started (a common.evaluation.Invocation,
    recorded as provenance) and their run options (common.cli.RunOptions)."""
    invocation: object
    options: object


def add_math_eval_args(p, bench: str = "procedural") -> None:
    """Evaluation flags of the math recipes (the task limit is ``--limit`` of the run flags)."""
    from common.math_benchmarks import MATH_BENCHMARKS
    from common.tts_math import MATH_FORMATS
    g = p.add_argument_group("evaluation (greedy; common.math_eval)")
    g.add_argument("--eval-bench", default=bench, choices=sorted(MATH_BENCHMARKS),
                   help=f"math benchmark the base model and the adapter are compared on (default {bench}: "
                        f"data/procedural_math.jsonl, 300 problems)")
    g.add_argument("--eval-data-path", default=None,
                   help="the evaluation benchmark's file (gsm8k, math500, aime need one)")
    g.add_argument("--eval-format", default="chat", choices=MATH_FORMATS,
                   help="chat template (default) or raw text ending in 'Solution:'")
    g.add_argument("--eval-max-new-tokens", type=int, default=None,
                   help="evaluation token budget (default: the benchmark's, 400 for procedural)")
    g.add_argument("--base-run", default=None,
                   help="a finished greedy evals/eval_math.py run of the base model on the same benchmark and "
                        "settings, reused as the base side (checked: model file, dataset, protocol, budget, tasks)")


def math_eval_job(spec: MathEvalSpec, bench: tuple, model, run_dir: Path, ev, extra: dict | None = None):
    """The :class:`common.evaluation.EvalJob` of one greedy evaluation: ``bench`` = (tasks,
    dataset info), ``model`` a :class:`common.evaluation.EvalModel`, ``ev`` anything with
    ``invocation`` and ``options`` (:class:`EvalContext`, common.math_recipe.MathSetup)."""
    from common.evaluation import EvalJob
    tasks, dataset = bench
    return EvalJob(Path(run_dir), tasks, dataset, spec.prompt(), spec.params(), model, ev.invocation, ev.options,
                   extra=extra)


def check_math_base_run(run_dir: str | Path, spec: MathEvalSpec, model_sha256: str | None, tasks: list[dict],
                        backend: str | None = None) -> None:
    """Refuse (InputError, naming each mismatch) a base run that is not a finished greedy math
    evaluation of the same model file (no adapter), benchmark file, protocol, budget and generation
    ``backend`` (when given), covering every evaluation task."""
    p = Path(run_dir)
    if not (p / "result.json").is_file() or not (p / "samples.jsonl").is_file():
        raise InputError(f"--base-run {p}: not a finished math evaluation (result.json and samples.jsonl expected)")
    res = json.loads((p / "result.json").read_text())
    params, problems = spec.params(), []
    samp, model = res.get("sampling") or {}, res.get("model") or {}
    if res.get("kind") != "math_samples":
        problems.append(f"kind {res.get('kind')!r} is not a math evaluation")
    if res.get("protocol") != spec.prompt().name:
        problems.append(f"protocol {res.get('protocol')!r} != {spec.prompt().name!r}")
    if samp.get("n") != 1 or samp.get("temperature") not in (0, 0.0):
        problems.append("not greedy")
    if samp.get("max_new_tokens") != params.max_new_tokens:
        problems.append(f"max_new_tokens {samp.get('max_new_tokens')} != {params.max_new_tokens}")
    if model.get("adapter"):
        problems.append(f"it evaluated an adapter ({model['adapter']})")
    if model_sha256 and model.get("file_sha256") != model_sha256:
        problems.append("another model file")
    if theirs := other_backend(res, backend):
        problems.append(f"backend {theirs!r} != {backend!r} (the pair would mix backends)")
    have = {r["task_id"] for r in _rows(p)}
    missing = [t["task_id"] for t in tasks if t["task_id"] not in have]
    if missing:
        problems.append(f"{len(missing)} evaluation tasks missing (e.g. {missing[0]})")
    ds = res.get("dataset") or {}
    if tasks and ds.get("sha256") and ds.get("name") != spec.bench:
        problems.append(f"benchmark {ds.get('name')!r} != {spec.bench!r}")
    if problems:
        raise InputError(f"--base-run {p}: cannot stand in for the base evaluation: " + "; ".join(problems))


def _rows(run_dir: Path) -> list[dict]:
    from common.results import read_jsonl
    return read_jsonl(Path(run_dir) / "samples.jsonl", "samples file")


def verdict_outcomes(run_dir: str | Path, task_ids: list[str], field: str = "passed") -> dict[str, float]:
    """task_id -> fraction of its samples whose ``field`` verdict is true, on ``task_ids``."""
    acc: dict[str, list] = {}
    for r in _rows(Path(run_dir)):
        acc.setdefault(r["task_id"], []).append(bool(r.get(field)))
    return {t: sum(acc[t]) / len(acc[t]) for t in task_ids}


def paired(base_dir: str | Path, other_dir: str | Path, task_ids: list[str], label: str) -> dict:
    """The paired comparison of two math runs on ``task_ids`` under each verdict (flexible =
    ``passed``, strict, faithful)."""
    from common.compare import compare
    from common.tts_math import VERDICTS
    return {name: compare(verdict_outcomes(base_dir, task_ids, f), verdict_outcomes(other_dir, task_ids, f),
                          "base", label) for name, f in VERDICTS.items()}


def evaluate_and_compare_math(slot, adapters: dict[str, str], eval_root: Path, spec: MathEvalSpec, ev) -> dict:
    """Greedy evaluation of the base model (or ``spec.base_run``, checked) and each named adapter
    on ``spec``'s benchmark, one model in memory at a time (``slot``: common.compare.ModelSlot),
    each adapter paired with the base per task. Returns {"bench", "base": {...}, name: {run_dir,
    adapter, accuracy, comparison (flexible), comparisons (every verdict)}}."""
    from common.evaluation import EvalModel
    from common.tts_math import evaluate_math
    bench = spec.tasks()
    ids = [t["task_id"] for t in bench[0]]
    if spec.base_run:
        info = slot.info(None)
        check_math_base_run(spec.base_run, spec, info.get("file_sha256"), bench[0], info.get("backend"))
        bdir = Path(spec.base_run)
    else:
        bdir = Path(eval_root) / "base"
        evaluate_math(math_eval_job(spec, bench, EvalModel(slot.info(None), lambda: slot.get(None)), bdir, ev))
    base_out = verdict_outcomes(bdir, ids)
    out = {"bench": spec.to_config(), "dataset": {k: bench[1].get(k) for k in ("name", "sha256", "n_tasks")},
           "base": {"run_dir": str(bdir), "reused": bool(spec.base_run),
                    "accuracy": sum(base_out.values()) / len(ids)}}
    for name, adapter in adapters.items():
        adir = Path(eval_root) / name
        res = evaluate_math(math_eval_job(spec, bench, EvalModel(slot.info(adapter), lambda a=adapter: slot.get(a)),
                                          adir, ev))
        cmps = paired(bdir, adir, ids, name)
        out[name] = {"run_dir": str(adir), "adapter": str(adapter), "accuracy": res["metrics"]["accuracy"],
                     "comparison": cmps["flexible"], "comparisons": cmps}
        log.info("%s on %s: %s", name, spec.bench, cmps["flexible"]["headline"])
    slot.release()
    return out


def print_math_comparison(title: str, evaluation: dict) -> None:
    print(f"\n{title}")
    for name, v in evaluation.items():
        if isinstance(v, dict) and "comparisons" in v:
            for verdict, c in v["comparisons"].items():
                print(f"  [{evaluation['bench']['bench']} · {verdict}] {c['headline']}")
