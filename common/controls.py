"""The controls' shared path (controls/corrupt_pairs_control.py, controls/format_only_control.py):
problems from an external source instead of the model's own mining, verified and decontaminated;
the control's own pairs built from them; then the recipe's train → evaluate → compare path.

* :class:`SourceConfig` and its flags (:func:`add_source_args`): our problems file
  (data/external_problems.jsonl by default) or MBPP;
* :func:`external_problems` loads them; :func:`verified_external` keeps those whose reference
  passes its own tests in the sandbox and that share no 13-gram with HumanEval (unless kept);
* :func:`run_control` is the whole run; a control script supplies only ``make_pairs``.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from common.results import InputError
from common.sandbox import MINING_TIMEOUT


@dataclass(frozen=True)
class SourceConfig:
    """Where the control's problems come from and how they are checked (``add_source_args``)."""
    problems: str | None = None
    mbpp: str | None = None
    mbpp_split: str = "train"
    limit_problems: int | None = None
    pairs_out: str | None = None
    keep_contaminated: bool = False
    mining_timeout: float = MINING_TIMEOUT

    def __post_init__(self):
        if self.limit_problems is not None and self.limit_problems < 1:
            raise InputError(f"--limit-problems must be >= 1, got {self.limit_problems}")

    @classmethod
    def from_args(cls, args) -> "SourceConfig":
        return cls(args.problems, args.mbpp, args.mbpp_split, args.limit_problems, args.pairs_out,
                   args.keep_contaminated, args.mining_timeout)


def add_source_args(p) -> None:
    g = p.add_argument_group("external problem source (not the model's own mining)")
    g.add_argument("--problems", default=None,
                   help="problems JSONL ({id, entry_point, signature, reference, tests}); default: the "
                        "repository's data/external_problems.jsonl (42 hand-written problems)")
    g.add_argument("--mbpp", default=None,
                   help="MBPP full file (google-research-datasets/mbpp schema) to use instead of --problems")
    g.add_argument("--mbpp-split", default="train", help="MBPP split for --mbpp (default train, as the paper)")
    g.add_argument("--limit-problems", type=int, default=None, help="use the first N problems only")
    g.add_argument("--pairs-out", default=None, help="pairs file to write (default results/<run>/pairs.jsonl)")
    g.add_argument("--keep-contaminated", action="store_true",
                   help="keep problems that share a 13-gram with HumanEval (always reported)")
    g.add_argument("--mining-timeout", type=float, default=MINING_TIMEOUT,
                   help=f"sandbox limit per program while building pairs, seconds (default {MINING_TIMEOUT:g})")


def default_external_problems() -> Path:
    from common.results import REPO_ROOT
    return REPO_ROOT / "data" / "external_problems.jsonl"


def mbpp_problems(path: str, split: str) -> tuple[list[dict], dict]:
    """MBPP tasks as problems: reference code, the description as docstring (tasks that need
    setup code or have no parsable entry point are skipped and counted)."""
    from collections import Counter

    from common.benchmarks import load_tasks
    from common.problems import signature_from_code
    tasks, info = load_tasks("mbpp", path=path, split=split)
    probs, skipped = [], Counter()
    for t in tasks:
        code = str(t["code"]).replace("\r\n", "\n").strip("\n")
        if (t.get("test_setup_code") or "").strip():
            skipped["needs_setup_code"] += 1
            continue
        try:
            sig = signature_from_code(code, t["entry_point"], docstring=" ".join(str(t["text"]).split()))
        except (SyntaxError, ValueError):
            skipped["no_parsable_entry_point"] += 1
            continue
        probs.append({"id": t["task_id"], "entry_point": t["entry_point"], "signature": sig,
                      "docstring": t["text"], "reference": code, "tests": list(t["test_list"])})
    return probs, {**info, "kind": "mbpp", "skipped": dict(skipped)}


def external_problems(source: SourceConfig) -> tuple[list[dict], dict]:
    """Problems from ``--problems`` (our schema) or ``--mbpp``, and what was used."""
    from common.problems import load_problems
    from common.results import file_sha256
    if source.mbpp:
        probs, info = mbpp_problems(source.mbpp, source.mbpp_split)
    else:
        path = Path(source.problems) if source.problems else default_external_problems()
        probs = load_problems(path)
        info = {"kind": "problems-file", "path": str(path), "sha256": file_sha256(path), "n_total": len(probs)}
    if source.limit_problems is not None:
        probs = probs[:source.limit_problems]
    info["n_used"] = len(probs)
    return probs, info


def verified_external(problems: list[dict], pool, timeout: float, keep_contaminated: bool) -> tuple[list[dict], dict]:
    """Decontaminate against HumanEval and keep problems whose reference passes its tests."""
    from common.decontam import decontamination_report, humaneval_index
    from common.problems import problem_text
    from common.sandbox import Job
    report = decontamination_report({p["id"]: problem_text(p) for p in problems}, humaneval_index())
    flagged = set(report["flagged_ids"])
    cand = [p for p in problems if keep_contaminated or p["id"] not in flagged]
    res = pool.run_many([Job.asserts(p["reference"], p["tests"], timeout=timeout) for p in cand])
    ok = [p for p, r in zip(cand, res) if r.passed]
    return ok, {"problems": len(problems), "contaminated": len(flagged), "reference_failed": len(cand) - len(ok),
                "failed_ids": [p["id"] for p, r in zip(cand, res) if not r.passed][:50], "usable": len(ok),
                "decontamination": report}


def run_control(setup, source: SourceConfig, kind: str, make_pairs, control_args: dict) -> dict:
    """External problems -> verified -> ``make_pairs(problems, pool) -> (pairs, counts)`` ->
    train and evaluate exactly as the recipe does (``setup``: a common.compare.TrainEvalSetup).
    Writes results/<run>/result.json (pairs in results/<run>/pairs.jsonl unless --pairs-out)."""
    from common.compare import ModelSlot, train_and_evaluate
    from common.mining import write_pairs_file
    from common.models import resolve_model
    from common.results import slug, write_json_atomic
    from common.rundir import prepare_run_dir
    from common.sandbox import SandboxPool
    problems, src = external_problems(source)
    resolved = resolve_model(setup.model.model)
    run_dir = setup.run_dir(f"{kind}_{slug(setup.model.model)}_{src['kind']}_s{setup.train.seed}")
    config = {"control": kind, "model": {"ref": resolved.ref, "file_sha256": resolved.file_sha256},
              "source": {k: src.get(k) for k in ("kind", "path", "sha256", "n_used")},
              "training": setup.train.to_dict(), "control_args": control_args, "eval": setup.ev.spec.to_config()}
    prepare_run_dir(run_dir, config, setup.overwrite)
    t0 = time.time()
    with SandboxPool(workers=setup.ev.options.workers, timeout=source.mining_timeout) as pool:
        usable, vcounts = verified_external(problems, pool, source.mining_timeout, source.keep_contaminated)
        pairs, pcounts = make_pairs(usable, pool)
    if not pairs:
        raise InputError(f"{kind}: no pairs could be built from {src.get('path') or src.get('name')}")
    info = write_pairs_file(Path(source.pairs_out) if source.pairs_out else run_dir / "pairs.jsonl", pairs)
    build_s = time.time() - t0
    out = train_and_evaluate(ModelSlot(resolved, setup.model), pairs, info, setup.train, run_dir, "adapter",
                             setup.ev, train_extra={"control": kind})
    result = {**setup.ev.invocation.provenance(), "control": kind, "config": json.loads(json.dumps(config)),
              "model": resolved.provenance(), "source": src, "problems": vcounts, "pairs_build": pcounts,
              "pairs": info, **out, "timings": {"build_pairs_s": round(build_s, 1),
                                                "total_s_this_invocation": round(time.time() - t0, 1)}}
    write_json_atomic(run_dir / "result.json", result)
    return {**result, "run_dir": str(run_dir)}
