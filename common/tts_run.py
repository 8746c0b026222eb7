"""What the code and math test-time sampling (TTS) runs share.

* The test-time selection flags (:func:`add_tts_args`) and the settings they become,
  :class:`TTSSettings`, built once from the parsed flags by :meth:`TTSSettings.from_args`
  (every inconsistency refused as an InputError); :func:`code_tts_from_args` adds the prompt
  strategy and the sampling settings of the code scripts.
* The greedy reference beside the samples (:func:`greedy_reference`): a finished greedy run
  reused (:func:`load_greedy_run`, checked: greedy, same model, same dataset) or greedy
  decoding into ``<run>/greedy/``.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from common.results import InputError
from common.tts_summary import CODE_SELECTORS, MATH_SELECTORS, SSD_THRESHOLD_PP

RERANK_CHOICES = {"logprob": "mean_logprob", "mean_logprob": "mean_logprob", "sum_logprob": "sum_logprob",
                  "majority": "behaviour_majority", "behaviour": "behaviour_majority",
                  "behaviour_majority": "behaviour_majority", "visible": "visible_filter",
                  "visible_filter": "visible_filter", "codet": "codet"}
BEHAVIOUR_INPUTS = ("prompt", "model", "both")


def add_code_tts_args(p, n: int) -> None:
    """The flags of a code TTS script after its benchmark flags: prompt strategy, test-time
    selection, model, sampling (default ``n`` samples, T=0.8, top-p 0.95) and run flags."""
    from common.cli import add_model_args, add_run_args, add_sampling_args
    from common.strategies import add_strategy_args
    add_strategy_args(p)
    add_tts_args(p)
    add_model_args(p)
    add_sampling_args(p, n=n, temperature=0.8, top_p=0.95)
    add_run_args(p)


def add_tts_args(p, code: bool = True) -> None:
    """Flags shared by the TTS scripts (selection, greedy reference, model tests, SSD rule)."""
    g = p.add_argument_group("test-time selection")
    if code:
        g.add_argument("--rerank", default="behaviour_majority", choices=sorted(RERANK_CHOICES),
                       help="primary deployable selector (all are computed and shown): mean_logprob/"
                            "logprob, sum_logprob, behaviour_majority/behaviour/majority (largest cluster "
                            "of identical outputs), visible_filter/visible (pass the prompt's own examples, "
                            "then highest mean log-prob), codet (model-written tests, dual agreement) "
                            "(default behaviour_majority)")
    g.add_argument("--greedy-run", default=None,
                   help="reuse this scored greedy run directory (samples.jsonl with verdicts, same model, "
                        "protocol and tasks) instead of running greedy decoding here")
    g.add_argument("--no-greedy", action="store_true",
                   help="skip the greedy reference (the table then has no greedy row)")
    if code:
        g.add_argument("--test-samples", type=int, default=2,
                       help="model-written test generations per task for CodeT and behaviour inputs; "
                            "0 = none (codet is then not computed) (default 2)")
        g.add_argument("--test-temperature", type=float, default=0.8,
                       help="temperature of the test generations (default 0.8)")
        g.add_argument("--test-max-new-tokens", type=int, default=256, help="token budget of one test generation "
                       "(default 256)")
        g.add_argument("--max-tests", type=int, default=20,
                       help="at most this many distinct model tests per task, in generation order (default 20)")
        g.add_argument("--behaviour-inputs", default="both", choices=BEHAVIOUR_INPUTS,
                       help="inputs whose outputs define behaviour clusters: prompt (the docstring's "
                            "examples), model (the model tests' inputs) or both (default both)")
    g.add_argument("--ssd-k", type=int, default=None,
                   help="k of the SSD precondition gap pass@k − pass@1 (default: largest of 4, 8, 16 <= n)")
    g.add_argument("--ssd-threshold-pp", type=float, default=SSD_THRESHOLD_PP,
                   help=f"GO/NO-GO threshold of that gap in percentage points (default {SSD_THRESHOLD_PP:g})")


@dataclass(frozen=True)
class TTSSettings:
    """How a TTS run selects and what it reports beside the samples.

    ``primary``: the headline selector; ``selectors``: every selector computed; ``greedy_run``:
    a finished greedy run to reuse, else greedy decoding here unless ``run_greedy`` is False;
    ``ssd_k``/``ssd_threshold_pp``: the SSD precondition's k and threshold; code runs only:
    ``testgen`` (:class:`common.tts_code.TestGenConfig`, None = no model-written tests) and
    ``behaviour_inputs`` (which inputs define behaviour clusters)."""
    primary: str
    selectors: tuple[str, ...]
    greedy_run: str | None = None
    run_greedy: bool = True
    ssd_k: int | None = None
    ssd_threshold_pp: float = SSD_THRESHOLD_PP
    testgen: object = None
    behaviour_inputs: str = "both"

    @property
    def with_codet(self) -> bool:
        return self.testgen is not None and self.testgen.n > 0

    @classmethod
    def code(cls, primary: str = "behaviour_majority", testgen=None, **kw) -> "TTSSettings":
        """Settings of a code run; codet is computed only with model-written tests."""
        with_tests = testgen is not None and testgen.n > 0
        return cls(primary, tuple(s for s in CODE_SELECTORS if s != "codet" or with_tests), testgen=testgen, **kw)

    @classmethod
    def math(cls, **kw) -> "TTSSettings":
        """Settings of a math run: majority vote over the extracted answers is the headline."""
        return cls("majority_vote", MATH_SELECTORS, **kw)

    @classmethod
    def from_args(cls, args, params, code: bool = True) -> "TTSSettings":
        """From the flags of :func:`add_tts_args` and the run's sampling settings ``params``."""
        if params.n < 2:
            raise InputError(f"--n-samples must be at least 2 for test-time selection (got {params.n})")
        if params.temperature == 0:
            raise InputError("test-time sampling needs --temperature > 0")
        kw = dict(greedy_run=args.greedy_run, run_greedy=not args.no_greedy, ssd_k=args.ssd_k,
                  ssd_threshold_pp=args.ssd_threshold_pp)
        out = cls.code(resolve_rerank(args.rerank), _testgen_from_args(args), behaviour_inputs=args.behaviour_inputs,
                       **kw) if code else cls.math(**kw)
        if out.primary == "codet" and out.testgen is None:
            raise InputError("--rerank codet needs model-written tests: --test-samples > 0")
        if args.greedy_run and args.no_greedy:
            raise InputError("--greedy-run and --no-greedy contradict each other")
        if args.ssd_k is not None and not (2 <= args.ssd_k <= params.n):
            raise InputError(f"--ssd-k must be in 2..--n-samples ({params.n}), got {args.ssd_k}")
        return out


def resolve_rerank(name: str) -> str:
    if name not in RERANK_CHOICES:
        raise InputError(f"unknown --rerank {name!r}; choose from {', '.join(sorted(RERANK_CHOICES))}")
    return RERANK_CHOICES[name]


def _testgen_from_args(args):
    """The model-written test settings of the code flags (None for --test-samples 0)."""
    from common.tts_code import TestGenConfig
    if args.test_samples < 0 or args.max_tests < 1 or args.test_max_new_tokens < 1:
        raise InputError("--test-samples must be >= 0, --max-tests and --test-max-new-tokens >= 1")
    if args.test_samples == 0:
        return None
    testgen = TestGenConfig(n=args.test_samples, temperature=args.test_temperature,
                            max_new_tokens=args.test_max_new_tokens, max_tests=args.max_tests, seed=args.seed)
    testgen.params(True)  # validates (e.g. several greedy test generations)
    return testgen


def code_tts_from_args(args) -> tuple:
    """(prompt strategy, sampling params, :class:`TTSSettings`) of a code TTS script's flags."""
    from common.cli import sampling_from_args
    from common.strategies import strategy_from_args
    strategy = strategy_from_args(args)
    params = sampling_from_args(args, strategy, logprobs=True)
    return strategy, params, TTSSettings.from_args(args, params)


# --------------------------------------------------------------------------------------------
# The greedy reference
# --------------------------------------------------------------------------------------------


def greedy_params(params):
    """The greedy counterpart of sampling settings: one sample, temperature 0."""
    return dataclasses.replace(params, n=1, temperature=0.0, top_p=1.0, top_k=0)


def greedy_reference(settings: TTSSettings, job, evaluate: Callable, field: str = "passed",
                     record: dict | None = None) -> tuple[dict | None, dict | None]:
    """(task_id -> greedy verdict, where it comes from) beside the run ``job``
    (:class:`common.evaluation.EvalJob` whose run_dir is the TTS run's root): the finished run
    ``settings.greedy_run``, else ``evaluate(greedy job)`` into ``<run>/greedy/``, else (no
    greedy reference) (None, None). ``field``: the verdict field of the samples; ``record``:
    more keys for the ``greedy_source`` entry of a run decoded here."""
    ids = [t["task_id"] for t in job.tasks]
    if settings.greedy_run:
        return load_greedy_run(settings.greedy_run, ids, field=field, model_info=job.model.info, dataset=job.dataset)
    if not settings.run_greedy:
        return None, None
    from common.results import read_jsonl
    gjob = dataclasses.replace(job, run_dir=Path(job.run_dir) / "greedy", params=greedy_params(job.params))
    res = evaluate(gjob)
    greedy = {r["task_id"]: bool(r[field]) for r in read_jsonl(gjob.run_dir / "samples.jsonl")}
    return greedy, {"path": str(gjob.run_dir), **(record or {}), "sampling": gjob.params.to_dict(),
                    "pass@1": res["metrics"]["pass_at_k"]["pass@1"]["mean"]}


def _check_greedy_config(p: Path, cfg: dict, model_info: dict | None, dataset: dict | None) -> None:
    samp = cfg.get("sampling") or {}
    if samp and (samp.get("n") != 1 or samp.get("temperature") != 0):
        raise InputError(f"--greedy-run {p}: not a greedy run (n={samp.get('n')}, T={samp.get('temperature')})")
    if model_info and cfg.get("model"):
        a, b = cfg["model"].get("file_sha256"), model_info.get("file_sha256")
        if a and b and a != b or cfg["model"].get("adapter_sha256") != model_info.get("adapter_sha256"):
            raise InputError(f"--greedy-run {p} was made with another model or adapter than this run")
        from common.rundir import other_backend
        ours = model_info.get("backend")
        if theirs := other_backend(cfg["model"], ours):
            raise InputError(f"--greedy-run {p} was generated on the {theirs} backend, this run on {ours}; "
                             f"pass a greedy run of the {ours} backend, or --backend {theirs}")
    if dataset and cfg.get("dataset"):
        theirs, ours = cfg["dataset"], {k: dataset.get(k) for k in ("name", "sha256")}
        if theirs.get("name") != ours["name"] or (theirs.get("sha256") and ours["sha256"]
                                                   and theirs["sha256"] != ours["sha256"]):
            raise InputError(f"--greedy-run {p} was scored on {theirs.get('name')} ({str(theirs.get('sha256'))[:12]}), "
                             f"this run is {ours['name']} ({str(ours['sha256'])[:12]})")


def load_greedy_run(path: str | Path, task_ids: Sequence[str], *, field: str = "passed",
                    model_info: dict | None = None, dataset: dict | None = None) -> tuple[dict, dict]:
    """Verdicts of an existing greedy run directory (``samples.jsonl`` scored, plus its
    ``config.json``). Refused (InputError) when samples are missing or unscored, the run is not
    greedy, or it was made with another model (weights hash) than ``model_info`` or on another
    dataset (name and file hash) than ``dataset``."""
    from common.results import read_jsonl
    p = Path(path)
    rows = read_jsonl(p / "samples.jsonl", "greedy run samples")
    cfg = json.loads((p / "config.json").read_text()) if (p / "config.json").is_file() else {}
    _check_greedy_config(p, cfg, model_info, dataset)
    got = {}
    for r in rows:
        if r.get("sample_index", 0) == 0:
            if field not in r:
                raise InputError(f"--greedy-run {p}: samples are not scored yet (no {field!r} field)")
            got[r["task_id"]] = bool(r[field])
    missing = [t for t in task_ids if t not in got]
    if missing:
        raise InputError(f"--greedy-run {p} lacks {len(missing)} of the tasks, e.g. {missing[:3]}")
    return {t: got[t] for t in task_ids}, {"path": str(p), "protocol": cfg.get("protocol"),
                                           "model": (cfg.get("model") or {}).get("ref"),
                                           "sampling": cfg.get("sampling") or {}}


def read_tts_result(path: str | Path, flag: str) -> dict:
    """The result.json of the finished TTS run directory ``path`` given with ``flag``."""
    p = Path(path) / "result.json"
    if not p.is_file():
        raise InputError(f"{flag} {path}: no result.json there (not a finished TTS run)")
    try:
        return json.loads(p.read_text())
    except ValueError as e:
        raise InputError(f"{flag} {p}: not valid JSON ({e})") from None
