"""Base model versus adapter: evaluation settings, the one-model slot, greedy evaluation and the
paired comparison, and the train → evaluate → compare path (PAPER.md §2 stage "evaluate").

Used by every script that trains or judges an adapter: recipe/bootstrap.py, recipe/multi_pair.py,
recipe/curriculum_code.py, controls/, experiments/pair_count_sweep.py, experiments/seed_sweep.py
and evals/confirm.py.

* :class:`EvalSpec` and its flags (:func:`add_eval_args`): protocols, benchmark, task limit,
  token budget, finished base runs to reuse (:func:`check_base_run` decides whether one may);
  :class:`EvalRun` adds how the script was invoked and its run options;
* :class:`ModelSlot` holds at most one loaded model (base or with one adapter) and is released
  before training, so no two models sit in memory at once;
* :func:`evaluate_model` runs ``common.evaluation.evaluate_code`` (greedy, resumable) for one
  (model, adapter, protocol); :func:`task_outcomes` reads its per-task results and
  :func:`compare` pairs two runs with ``common.metrics.paired_delta`` (McNemar exact p and a
  paired bootstrap CI); :func:`evaluate_and_compare` does both for the base and named adapters;
* :func:`train_and_evaluate` chains ``common.lora.train_adapter`` with those evaluations, and
  :class:`TrainEvalSetup` is the configuration of that path built from its flags
  (:func:`add_training_path_args`: model, LoRA, evaluation and run flags).
"""
from __future__ import annotations

import dataclasses
import gc
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from common.prompts import PAPER_MULTI_SYSTEM
from common.results import InputError

log = logging.getLogger(__name__)

EVAL_PROTOCOLS = ("he-chat", "qwen-official", "he-chat-multi", "he-chat-faithful", "raw")


@dataclass(frozen=True)
class EvalSpec:
    """What every evaluation of a run uses (greedy; ``base_runs``: (protocol, finished eval run
    dir) pairs reused as the base side)."""
    protocols: tuple[str, ...] = ("he-chat", "qwen-official")
    bench: str = "humaneval"
    data_path: str | None = None
    limit: int | None = None
    max_new_tokens: int | None = None
    base_runs: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_args(cls, args) -> "EvalSpec":
        """From parsed :func:`add_eval_args` flags (+ ``--limit``)."""
        protos = tuple(x.strip() for x in (args.eval_protocols or "").split(",") if x.strip())
        bad = [x for x in protos if x not in EVAL_PROTOCOLS]
        if bad:
            raise InputError(f"--eval-protocols: unknown {bad}; choose from {', '.join(EVAL_PROTOCOLS)}")
        if getattr(args, "limit", None) is not None and args.limit < 1:
            raise InputError(f"--limit must be >= 1, got {args.limit}")
        return cls(protocols=protos, bench=args.eval_bench, data_path=args.eval_data_path,
                   limit=getattr(args, "limit", None), max_new_tokens=args.eval_max_new_tokens,
                   base_runs=parse_base_runs(getattr(args, "base_runs", None), protos))

    def to_config(self) -> dict:
        """What a run's config.json records of the evaluation."""
        return {"protocols": list(self.protocols), "bench": self.bench, "limit": self.limit,
                "max_new_tokens": self.max_new_tokens}


@dataclass(frozen=True)
class EvalRun:
    """What every evaluation of one script invocation shares: the :class:`EvalSpec`, the
    :class:`common.evaluation.Invocation` recorded as provenance and the
    :class:`common.cli.RunOptions` (sandbox workers and timeout, progress; never ``overwrite``:
    a script that starts again from scratch wipes its whole run directory first)."""
    spec: EvalSpec
    invocation: object
    options: object

    @classmethod
    def from_args(cls, script: str, argv, args) -> "EvalRun":
        """From a script's ``__file__``, ``argv`` (None: ``sys.argv[1:]``) and parsed evaluation
        and run flags (:func:`add_eval_args`, ``common.cli.add_run_args``)."""
        from common.cli import RunOptions
        from common.evaluation import Invocation
        options = dataclasses.replace(RunOptions.from_args(args), overwrite=False)
        return cls(EvalSpec.from_args(args), Invocation(script, argv, vars(args)), options)


def parse_base_runs(text: str | None, protocols: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """``--base-runs PROTOCOL=RUN_DIR,...``: each protocol evaluated, each a finished run."""
    base_runs = []
    for item in (text or "").split(","):
        if not item.strip():
            continue
        proto, sep, run_dir = item.partition("=")
        proto, run_dir = proto.strip(), run_dir.strip()
        if not sep or not run_dir:
            raise InputError(f"--base-runs: expected PROTOCOL=RUN_DIR, got {item.strip()!r}")
        if proto not in protocols:
            raise InputError(f"--base-runs: protocol {proto!r} is not in --eval-protocols ({', '.join(protocols)})")
        if not (Path(run_dir) / "result.json").is_file() or not (Path(run_dir) / "samples.jsonl").is_file():
            raise InputError(f"--base-runs: {run_dir} is not a finished evaluation run "
                             f"(result.json and samples.jsonl expected)")
        base_runs.append((proto, run_dir))
    return tuple(base_runs)


def add_eval_args(p, protocols: str = "he-chat,qwen-official") -> None:
    """Evaluation flags (task limit, workers and timeout come from ``common.cli.add_run_args``)."""
    g = p.add_argument_group("evaluation (greedy; common.evaluation.evaluate_code)")
    g.add_argument("--eval-protocols", default=protocols,
                   help=f"comma-separated protocols from {', '.join(EVAL_PROTOCOLS)}; he-chat-multi = he-chat "
                        f"with the multi-pair system prompt; '' skips evaluation (default {protocols})")
    g.add_argument("--eval-bench", default="humaneval", help="benchmark to evaluate on (default humaneval)")
    g.add_argument("--eval-data-path", default=None, help="data file for benchmarks not shipped offline")
    g.add_argument("--eval-max-new-tokens", type=int, default=None,
                   help="evaluation token budget (default: the protocol's own, 400/512)")
    g.add_argument("--base-runs", default=None,
                   help="reuse finished greedy base evaluations instead of running them again: comma-separated "
                        "PROTOCOL=RUN_DIR (e.g. he-chat=results/eval_humaneval_..._he-chat_greedy); each is "
                        "checked to be the same model file, protocol, token budget, greedy and complete on the "
                        "evaluation tasks (default: evaluate the base model under results/<run>/eval/)")


def check_base_run(run_dir: str | Path, *, protocol_name: str, model_sha256: str | None, tasks,
                   max_new_tokens: int | None, backend: str | None = None) -> dict:
    """Validate a finished eval run reused as the greedy base side; returns its pass@1 entry.

    The run must be greedy (n=1, T=0), under the same protocol name (and token budget when one
    is given), on the same model file (sha256) with no adapter, generated on ``backend`` (when
    given), and have a scored sample for every evaluation task. Anything else is an InputError
    naming the mismatch."""
    from common.rundir import other_backend
    run_dir = Path(run_dir)
    cfg = json.loads((run_dir / "result.json").read_text())
    problems = []
    if cfg.get("protocol", {}).get("name") != protocol_name:
        problems.append(f"protocol {cfg.get('protocol', {}).get('name')!r} != {protocol_name!r}")
    samp = cfg.get("sampling", {})
    if samp.get("n") != 1 or samp.get("temperature") not in (0, 0.0):
        problems.append(f"not greedy (n={samp.get('n')}, temperature={samp.get('temperature')})")
    if max_new_tokens is not None and samp.get("max_new_tokens") != max_new_tokens:
        problems.append(f"max_new_tokens {samp.get('max_new_tokens')} != {max_new_tokens}")
    model = cfg.get("model", {})
    if model.get("adapter"):
        problems.append(f"it evaluated an adapter ({model.get('adapter')})")
    if model_sha256 and model.get("file_sha256") != model_sha256:
        problems.append(f"model file sha256 {str(model.get('file_sha256'))[:12]}… != {model_sha256[:12]}…")
    if theirs := other_backend(model, backend):
        problems.append(f"generated on the {theirs} backend, the adapters on {backend} "
                        f"(the pairs would mix backends; pass --backend {theirs} or another base run)")
    have = task_outcomes(run_dir)
    missing = [t["task_id"] for t in tasks if t["task_id"] not in have]
    if missing:
        problems.append(f"{len(missing)} evaluation tasks missing (e.g. {missing[0]})")
    if problems:
        raise InputError(f"--base-runs {run_dir}: cannot stand in for the base evaluation: " + "; ".join(problems))
    return cfg["metrics"]["pass_at_k"]["pass@1"]


def eval_protocol(name: str):
    """(Protocol, recorded name). he-chat-multi = he-chat with the multi-pair system prompt."""
    from common.prompts import get_protocol
    if name == "he-chat-multi":
        return dataclasses.replace(get_protocol("he-chat"), system=PAPER_MULTI_SYSTEM), name
    return get_protocol(name), None


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


class ModelSlot:
    """At most one loaded model at a time: ``get(adapter)`` reloads when the adapter changes.
    ``cfg`` (a :class:`common.runtime.ModelConfig`) says how to load it; its own adapter is unused."""

    def __init__(self, resolved, cfg):
        self.resolved = resolved
        self.cfg = cfg
        self._key = None
        self._llm = None

    def get(self, adapter: str | None = None):
        key = str(adapter) if adapter else None
        if self._llm is None or self._key != key:
            self.release()
            from common.sampling import LLM
            self._llm = LLM(self.resolved, self.cfg.with_adapter(key))
            self._key = key
        return self._llm

    def info(self, adapter: str | None) -> dict:
        """common.runtime.model_info of the model with ``adapter`` (None: the base model)."""
        from common.runtime import model_info
        return model_info(self.resolved, self.cfg.with_adapter(adapter))

    def release(self) -> None:
        """Drop the loaded model; a server it started (llamacpp backend) is stopped, so its
        memory really returns before training."""
        if self._llm is not None:
            self._llm.close()
        self._llm = None
        self._key = None
        gc.collect()


# --------------------------------------------------------------------------------------------
# Evaluation and comparison
# --------------------------------------------------------------------------------------------


def load_eval_tasks(spec: EvalSpec) -> tuple[list[dict], dict]:
    """(tasks, dataset info) of the spec's benchmark, limited to its first ``limit`` tasks."""
    from common.benchmarks import load_tasks
    return load_tasks(spec.bench, limit=spec.limit, path=spec.data_path)


def evaluate_model(slot: ModelSlot, adapter: str | None, protocol_name: str, run_dir: Path, bench: tuple,
                   ev: EvalRun) -> dict:
    """Greedy evaluation of the base model or an adapter on ``bench`` = (tasks, dataset info)
    (common.evaluation.evaluate_code; resumable: a finished run is reused)."""
    from common.evaluation import EvalHooks, EvalJob, EvalModel, evaluate_code
    from common.sampling import SamplingParams
    protocol, recorded = eval_protocol(protocol_name)
    params = SamplingParams(n=1, temperature=0.0, top_p=1.0, top_k=0, seed=0, logprobs=True, stop=protocol.stop,
                            max_new_tokens=ev.spec.max_new_tokens or protocol.max_new_tokens)
    tasks, dataset = bench
    return evaluate_code(EvalJob(run_dir=Path(run_dir), tasks=tasks, dataset=dataset, protocol=protocol,
                                 params=params, model=EvalModel(slot.info(adapter), lambda: slot.get(adapter)),
                                 invocation=ev.invocation, options=ev.options,
                                 hooks=EvalHooks(protocol_name=recorded)))


def task_outcomes(run_dir: str | Path) -> dict[str, float]:
    """task_id -> fraction of that task's samples that passed, from a scored samples.jsonl."""
    from collections import defaultdict

    from common.evaluation import load_scored_samples
    rows = load_scored_samples(Path(run_dir) / "samples.jsonl")
    acc = defaultdict(list)
    for r in rows:
        if "passed" not in r:
            raise InputError(f"{run_dir}/samples.jsonl: task {r['task_id']} is not scored; rerun its evaluation")
        acc[r["task_id"]].append(bool(r["passed"]))
    return {t: sum(v) / len(v) for t, v in acc.items()}


def compare(base: dict[str, float], other: dict[str, float], label_a: str = "base",
            label_b: str = "adapter") -> dict:
    """Paired comparison on the same tasks: paired_delta + per-task gains and losses + a headline."""
    from common.metrics import paired_delta
    d = paired_delta(base, other)
    gained = sorted(t for t in base if other[t] > base[t])
    lost = sorted(t for t in base if other[t] < base[t])
    lo, hi = d["ci"]
    p = d["mcnemar_p"]
    head = (f"{label_a} {100 * d['mean_a']:.1f}% -> {label_b} {100 * d['mean_b']:.1f}% "
            f"(delta {100 * d['delta']:+.1f} pp, 95% CI [{100 * lo:+.1f}, {100 * hi:+.1f}], "
            f"{len(gained)} gained / {len(lost)} lost" + (f", McNemar p={p:.3g}" if p is not None else "") +
            f", n={d['n']})")
    return {**d, "ci": [lo, hi], "gained": gained, "lost": lost, "headline": head}


def base_side(slot: ModelSlot, proto: str, bench: tuple, eval_root: Path, ev: EvalRun) -> tuple[dict, dict]:
    """The base model's evaluation under ``proto``: (entry for result.json, task outcomes on the
    evaluation tasks). A ``--base-runs`` run is checked and reused instead of evaluating."""
    tasks, spec = bench[0], ev.spec
    reused = dict(spec.base_runs).get(proto)
    if reused:
        bdir = Path(reused)
        pass1 = check_base_run(bdir, protocol_name=eval_protocol(proto)[1] or proto,
                               model_sha256=slot.info(None).get("file_sha256"), tasks=tasks,
                               max_new_tokens=spec.max_new_tokens, backend=slot.info(None).get("backend"))
        log.info("base [%s]: reusing %s", proto, bdir)
    else:
        bdir = Path(eval_root) / f"base_{proto}"
        pass1 = evaluate_model(slot, None, proto, bdir, bench, ev)["metrics"]["pass_at_k"]["pass@1"]
    tids = {t["task_id"] for t in tasks}
    all_out = task_outcomes(bdir)
    base_out = {t: v for t, v in all_out.items() if t in tids}
    if reused and len(base_out) != len(all_out):  # a reused run on more tasks: its own pass@1 is not ours
        pass1 = {"k": 1, "mean": sum(base_out.values()) / len(base_out), "n_tasks": len(base_out),
                 "note": f"recomputed on the {len(base_out)} evaluation tasks of the reused run"}
    return {"run_dir": str(bdir), "pass@1": pass1, "reused": bool(reused)}, base_out


def evaluate_and_compare(slot: ModelSlot, adapters: dict[str, str], eval_root: Path, ev: EvalRun) -> dict:
    """Evaluate the base model and each named adapter under every protocol of ``ev.spec``;
    returns {protocol: {"base": metrics, name: {"metrics", "comparison"}}}. Base runs live in
    ``eval_root/base_<protocol>``, adapters in ``eval_root/<name>_<protocol>``."""
    out = {}
    if not ev.spec.protocols:
        return out
    bench = load_eval_tasks(ev.spec)
    for proto in ev.spec.protocols:
        entry = {}
        entry["base"], base_out = base_side(slot, proto, bench, eval_root, ev)
        for name, adapter in adapters.items():
            adir = Path(eval_root) / f"{name}_{proto}"
            ares = evaluate_model(slot, adapter, proto, adir, bench, ev)
            cmp_ = compare(base_out, task_outcomes(adir), "base", name)
            entry[name] = {"run_dir": str(adir), "adapter": str(adapter),
                           "pass@1": ares["metrics"]["pass_at_k"]["pass@1"], "comparison": cmp_}
            log.info("%s [%s]: %s", name, proto, cmp_["headline"])
        out[proto] = entry
    slot.release()
    return out


def print_comparisons(title: str, evaluation: dict) -> None:
    print(f"\n{title}")
    for proto, entry in evaluation.items():
        for name, v in entry.items():
            if name != "base":
                print(f"  [{proto}] {v['comparison']['headline']}")


# --------------------------------------------------------------------------------------------
# Train, then evaluate and compare
# --------------------------------------------------------------------------------------------


def summarize_training(tres: dict) -> dict:
    """What a run's result.json keeps of a training result."""
    return {"skipped": bool(tres.get("skipped")), "pairs": tres.get("pairs"), "data": tres.get("data"),
            "stats": tres.get("stats"), "train_config": tres.get("train_config")}


def train_and_evaluate(slot: ModelSlot, pairs: list[dict], pairs_info: dict, cfg, run_dir: Path, name: str,
                       ev: EvalRun, train_extra: dict | None = None) -> dict:
    """Train ``run_dir/adapter`` with ``cfg`` (common.lora.train_adapter, skipped when already
    done), then evaluate base and adapter (named ``name``) under ``run_dir/eval`` and compare
    them per protocol."""
    from common.lora import train_adapter
    slot.release()
    adapter_dir = Path(run_dir) / "adapter"
    tres = train_adapter(slot.resolved, pairs, pairs_info, cfg, adapter_dir, ev.invocation, ev.options,
                         extra=train_extra)
    evaluation = evaluate_and_compare(slot, {name: str(adapter_dir)}, Path(run_dir) / "eval", ev)
    return {"adapter": str(adapter_dir), "training": summarize_training(tres), "evaluation": evaluation}


def add_training_path_args(p, lora_overrides: dict | None = None, seed_flag: str = "--train-seed") -> None:
    """Model, LoRA, evaluation and run flags: what every control and sweep needs (read back by
    :meth:`TrainEvalSetup.from_args`)."""
    from common.cli import add_model_args, add_run_args
    from common.lora import add_lora_args
    add_model_args(p, adapter=False)
    add_lora_args(p, seed_flag=seed_flag, **(lora_overrides or {}))
    add_eval_args(p)
    add_run_args(p)


@dataclass(frozen=True)
class TrainEvalSetup:
    """The train → evaluate path's configuration, built once from the flags of a script that
    trains and evaluates (:func:`add_training_path_args`, or the same groups among others):
    model, training, evaluation, and where the run goes (``overwrite``: start it from scratch)."""
    model: object           # common.runtime.ModelConfig
    train: object           # common.lora.TrainConfig
    ev: EvalRun
    run_name: str | None = None
    out_dir: str | None = None
    overwrite: bool = False

    @classmethod
    def from_args(cls, script: str, argv, args, **train_overrides) -> "TrainEvalSetup":
        from common.lora import TrainConfig
        from common.runtime import ModelConfig
        return cls(ModelConfig.from_args(args), TrainConfig.from_args(args, **train_overrides),
                   EvalRun.from_args(script, argv, args), args.run_name, args.out_dir, args.overwrite)

    def run_dir(self, default_name: str) -> Path:
        """results/<run-name>/ (``default_name`` without --run-name), under --out-dir when given."""
        from common.results import results_root
        return Path(self.out_dir or results_root()) / (self.run_name or default_name)
