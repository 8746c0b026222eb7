"""The self-bootstrap recipe's stages and its train → evaluate → compare path, shared by the
scripts under recipe/, controls/, experiments/ and evals/confirm.py (PAPER.md §2).

Stages (each a function; the scripts decide the order and where files go):

* :func:`generate_into` — sample chat completions for keyed items into a JSONL log (resumable:
  items already in the log are not generated again);
* :func:`verify_problems` — parse (``common.pairs.parse_problem``), drop HumanEval-contaminated
  and duplicate problems, run each reference against its own tests in the sandbox;
* :func:`check_attempts` — extract the code of every sampled attempt and run it against the tests;
* :func:`repair_items` / :func:`check_repairs` — one repair attempt for problems every attempt failed;
* :func:`mine_all` — repair pairs from scored attempts (``common.pairs.mine_pairs``), global
  dedup, decontamination.

Every execution goes through ``common.sandbox`` (``Job.asserts``, mining timeout 8 s).

Evaluation: :func:`evaluate_model` runs ``common.evaluation.evaluate_code`` (resumable) for one
(model, adapter, protocol); :func:`task_outcomes` reads its per-task results and
:func:`compare` pairs two runs with ``common.metrics.paired_delta`` (McNemar exact p and a
paired bootstrap CI). :func:`train_and_evaluate` chains ``common.lora.train_adapter`` with the
base and adapter evaluations — the path every control and sweep uses.

Model loading: :class:`ModelSlot` holds at most one loaded model (base or with one adapter) and
is released before training, so no two models sit in memory at once.
"""
from __future__ import annotations

import dataclasses
import gc
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from common.prompts import PAPER_MULTI_SYSTEM, PAPER_SYSTEM
from common.results import InputError, JsonlLog, slug, write_json_atomic, write_jsonl_atomic
from common.rundir import StageBook, prepare_run_dir, read_rows
from common.sandbox import MINING_TIMEOUT

log = logging.getLogger(__name__)

EVAL_PROTOCOLS = ("he-chat", "qwen-official", "he-chat-multi", "he-chat-faithful", "raw")
PROBLEM_STYLES = ("plain", "hard", "mixed")


@dataclass(frozen=True)
class MiningConfig:
    """Sampling and mining constants (PAPER.md §3; the multi-pair variant overrides some)."""
    gen_temperature: float = 0.9
    hard_temperature: float = 0.95
    solve_temperature: float = 0.8
    top_p: float = 0.95
    max_new_tokens: int = 400
    attempts: int = 4
    max_pairs_per_problem: int = 1
    repair_all_fail: bool = True
    mining_timeout: float = MINING_TIMEOUT
    system: str = PAPER_SYSTEM
    problem_style: str = "plain"
    seed: int = 0
    keep_contaminated: bool = False

    def __post_init__(self):
        for ok, msg in [
            (self.attempts >= 1, f"--attempts must be >= 1, got {self.attempts}"),
            (self.max_pairs_per_problem >= 1, f"--max-pairs-per-problem must be >= 1, got {self.max_pairs_per_problem}"),
            (self.max_new_tokens >= 1, f"--max-new-tokens must be >= 1, got {self.max_new_tokens}"),
            (self.mining_timeout > 0, f"--mining-timeout must be > 0, got {self.mining_timeout}"),
            (self.problem_style in PROBLEM_STYLES, f"--problem-style must be one of {PROBLEM_STYLES}"),
            (0 < self.top_p <= 1, f"--top-p must be in (0, 1], got {self.top_p}"),
            (min(self.gen_temperature, self.hard_temperature, self.solve_temperature) > 0,
             "generation and solving temperatures must be > 0 (several distinct samples are needed)"),
        ]:
            if not ok:
                raise InputError(msg)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def add_mining_args(p, **overrides) -> None:
    """Flags of :class:`MiningConfig`; ``overrides`` change defaults (multi-pair: attempts=8 ...)."""
    d = dataclasses.replace(MiningConfig(), **overrides)
    g = p.add_argument_group("problem generation, solving and mining (defaults: PAPER.md §3)")
    g.add_argument("--problem-style", default=d.problem_style, choices=PROBLEM_STYLES,
                   help=f"plain problems, 'hard' ones (non-trivial algorithms, T={d.hard_temperature}) or "
                        f"alternating (default {d.problem_style})")
    g.add_argument("--gen-temperature", type=float, default=d.gen_temperature,
                   help=f"problem generation temperature (default {d.gen_temperature})")
    g.add_argument("--hard-temperature", type=float, default=d.hard_temperature,
                   help=f"temperature of hard problem generation (default {d.hard_temperature})")
    g.add_argument("--solve-temperature", type=float, default=d.solve_temperature,
                   help=f"temperature of solving and repair attempts (default {d.solve_temperature})")
    g.add_argument("--top-p", type=float, default=d.top_p, help=f"nucleus truncation everywhere (default {d.top_p})")
    g.add_argument("--max-new-tokens", type=int, default=d.max_new_tokens,
                   help=f"token budget of problem generation and of each attempt (default {d.max_new_tokens})")
    g.add_argument("--attempts", type=int, default=d.attempts,
                   help=f"solving attempts sampled per problem (default {d.attempts})")
    g.add_argument("--max-pairs-per-problem", type=int, default=d.max_pairs_per_problem,
                   help=f"distinct failing attempts paired per problem (default {d.max_pairs_per_problem})")
    if d.repair_all_fail:
        g.add_argument("--no-repair", dest="repair_all_fail", action="store_false",
                       help="skip the repair attempt for problems where every attempt failed")
    else:
        g.set_defaults(repair_all_fail=False)
    g.add_argument("--mining-timeout", type=float, default=d.mining_timeout,
                   help=f"sandbox wall-clock limit per program while mining, seconds (default {d.mining_timeout:g})")
    g.add_argument("--system", default=d.system,
                   help=f"system prompt while mining and training (default {d.system!r})")
    g.add_argument("--seed", type=int, default=d.seed, help=f"sampling seed (default {d.seed})")
    g.add_argument("--keep-contaminated", action="store_true",
                   help="keep problems/pairs that share a 13-gram with HumanEval (they are always reported)")


def mining_from_args(args, **overrides) -> MiningConfig:
    kw = {f.name: getattr(args, f.name) for f in dataclasses.fields(MiningConfig) if hasattr(args, f.name)}
    kw.update(overrides)
    return MiningConfig(**kw)


# --------------------------------------------------------------------------------------------
# Evaluation flags
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvalSpec:
    protocols: tuple[str, ...] = ("he-chat", "qwen-official")
    bench: str = "humaneval"
    data_path: str | None = None
    limit: int | None = None
    max_new_tokens: int | None = None
    workers: int | None = None
    timeout: float | None = None
    base_runs: tuple[tuple[str, str], ...] = ()  # (protocol, finished eval run dir) reused as the base side


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


def eval_spec_from_args(args) -> EvalSpec:
    protos = tuple(x.strip() for x in (args.eval_protocols or "").split(",") if x.strip())
    bad = [x for x in protos if x not in EVAL_PROTOCOLS]
    if bad:
        raise InputError(f"--eval-protocols: unknown {bad}; choose from {', '.join(EVAL_PROTOCOLS)}")
    if getattr(args, "limit", None) is not None and args.limit < 1:
        raise InputError(f"--limit must be >= 1, got {args.limit}")
    base_runs = []
    for item in (getattr(args, "base_runs", None) or "").split(","):
        if not item.strip():
            continue
        proto, sep, run_dir = item.partition("=")
        proto, run_dir = proto.strip(), run_dir.strip()
        if not sep or not run_dir:
            raise InputError(f"--base-runs: expected PROTOCOL=RUN_DIR, got {item.strip()!r}")
        if proto not in protos:
            raise InputError(f"--base-runs: protocol {proto!r} is not in --eval-protocols ({', '.join(protos)})")
        if not (Path(run_dir) / "result.json").is_file() or not (Path(run_dir) / "samples.jsonl").is_file():
            raise InputError(f"--base-runs: {run_dir} is not a finished evaluation run "
                             f"(result.json and samples.jsonl expected)")
        base_runs.append((proto, run_dir))
    return EvalSpec(protocols=protos, bench=args.eval_bench, data_path=args.eval_data_path,
                    limit=getattr(args, "limit", None), max_new_tokens=args.eval_max_new_tokens,
                    workers=getattr(args, "workers", None), timeout=getattr(args, "timeout", None),
                    base_runs=tuple(base_runs))


def check_base_run(run_dir: str | Path, *, protocol_name: str, model_sha256: str | None, tasks,
                   max_new_tokens: int | None) -> dict:
    """Validate a finished eval run reused as the greedy base side; returns its pass@1 entry.

    The run must be greedy (n=1, T=0), under the same protocol name (and token budget when one
    is given), on the same model file (sha256) with no adapter, and have a scored sample for
    every evaluation task. Anything else is an InputError naming the mismatch."""
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
    """At most one loaded model at a time: ``get(adapter)`` reloads when the adapter changes."""

    def __init__(self, resolved, args):
        self.resolved = resolved
        self.args = args
        self._key = None
        self._llm = None

    def get(self, adapter: str | None = None):
        key = str(adapter) if adapter else None
        if self._llm is None or self._key != key:
            self.release()
            from common.sampling import LLM
            a = self.args
            self._llm = LLM(self.resolved, backend=a.backend, dtype=a.dtype, adapter=key, max_batch=a.max_batch,
                            tensor_parallel_size=getattr(a, "tensor_parallel_size", 1),
                            spec_max=getattr(a, "spec_max", 8))
            self._key = key
        return self._llm

    def release(self) -> None:
        self._llm = None
        self._key = None
        gc.collect()


def model_args_info(resolved, args, adapter: str | None) -> dict:
    """common.runtime.model_info for a given adapter."""
    import types

    from common.runtime import model_info
    ns = types.SimpleNamespace(adapter=str(adapter) if adapter else None, dtype=args.dtype, backend=args.backend)
    return model_info(resolved, ns)


# --------------------------------------------------------------------------------------------
# Stage bookkeeping
# --------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------
# Stages
# --------------------------------------------------------------------------------------------


def sampling(temperature: float, cfg: MiningConfig, n: int = 1, seed: int = 0, max_new_tokens: int | None = None):
    from common.sampling import SamplingParams
    return SamplingParams(n=n, temperature=temperature, top_p=cfg.top_p if temperature > 0 else 1.0,
                          max_new_tokens=max_new_tokens or cfg.max_new_tokens, seed=seed)


def chat(system: str | None, user: str) -> list[dict]:
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]


def generate_into(path: Path, get_llm, items: list[dict], params, desc: str, progress: bool = True) -> list[dict]:
    """Sample ``params.n`` completions per item into ``path`` (one JSONL row per item).

    ``items``: dicts with a unique ``key`` and ``messages``; every other field is copied to the
    row, which gains ``samples`` = [{text, finish_reason, n_tokens}]. Items already in the file
    are skipped (resume: each item's samples are seeded by its position in ``items``, as in an
    uninterrupted call). Returns the rows of ``items``, in order.
    """
    from common.generate import GenerationPlan, completion_fields, generate_missing

    def rows(it, comps):
        return [{**{k: v for k, v in it.items() if k != "messages"},
                 "samples": [{"text": c.text, **completion_fields(c)} for c in comps]}]
    plan = GenerationPlan(field="key", prompt=lambda it, llm: llm.chat_prompt(it["messages"]), rows=rows,
                          rows_per_item=1, desc=desc)
    with JsonlLog(path) as lg:
        generate_missing(lg, items, get_llm, params, plan, progress)
        by_key = {r["key"]: r for r in lg.rows}
    return [by_key[it["key"]] for it in items if it["key"] in by_key]


def problem_items(prefix: str, n: int, cfg: MiningConfig) -> dict[str, list[dict]]:
    """Problem-generation items grouped by style ("plain"/"hard"), keys ``<prefix>-p<i>``."""
    from common.pairs import problem_prompt
    groups: dict[str, list[dict]] = {"plain": [], "hard": []}
    for i in range(n):
        hard = cfg.problem_style == "hard" or (cfg.problem_style == "mixed" and i % 2 == 1)
        style = "hard" if hard else "plain"
        groups[style].append({"key": f"{prefix}-p{i}", "style": style,
                              "messages": chat(cfg.system, problem_prompt(hard))})
    return groups


def generate_problems(path: Path, get_llm, prefix: str, n: int, cfg: MiningConfig, seed: int,
                      progress: bool = True) -> list[dict]:
    rows = []
    for style, items in problem_items(prefix, n, cfg).items():
        if items:
            temp = cfg.hard_temperature if style == "hard" else cfg.gen_temperature
            rows += generate_into(path, get_llm, items, sampling(temp, cfg, seed=seed + (style == "hard")),
                                  desc=f"problems ({style})", progress=progress)
    order = {f"{prefix}-p{i}": i for i in range(n)}
    return sorted(rows, key=lambda r: order.get(r["key"], 0))


def verify_problems(candidates: list[dict], pool, cfg: MiningConfig, bindex: dict | None,
                    seen_hashes: set | None = None) -> tuple[list[dict], dict]:
    """Parse, decontaminate, dedup and self-verify problems.

    ``candidates``: rows with ``key`` and either ``text`` (model output to parse) or ``problem``
    (an already parsed problem dict, e.g. from a problems file). Returns (one record per
    candidate with its verdicts, counts). A record's ``verified`` is True only when the
    reference passes its own tests in the sandbox.
    """
    from collections import Counter

    from common.pairs import code_hash, decontamination_report, parse_problem, problem_text
    from common.sandbox import Job
    seen_hashes = set() if seen_hashes is None else seen_hashes
    recs, reasons = [], Counter()
    for c in candidates:
        if c.get("problem") is not None:
            prob, why = dict(c["problem"]), "ok"
        else:
            p, why = parse_problem(c.get("text", ""))
            prob = p.to_dict() if p else None
        reasons[why] += 1
        recs.append({"problem_id": c["key"], "origin": c.get("origin", "generated"), "parse": why, "problem": prob,
                     "contaminated": False, "duplicate": False, "verified": False})
    parsed = [r for r in recs if r["problem"] is not None]
    decon = None
    if bindex is not None and parsed:
        decon = decontamination_report({r["problem_id"]: problem_text(r["problem"]) for r in parsed}, bindex)
        flagged = set(decon["flagged_ids"])
        for r in parsed:
            r["contaminated"] = r["problem_id"] in flagged
    todo = []
    for r in parsed:
        if r["contaminated"] and not cfg.keep_contaminated:
            continue
        h = code_hash(r["problem"]["reference"])
        if h in seen_hashes:
            r["duplicate"] = True
            continue
        seen_hashes.add(h)
        todo.append(r)
    results = pool.run_many([Job.asserts(r["problem"]["reference"], r["problem"]["tests"], timeout=cfg.mining_timeout)
                             for r in todo]) if todo else []
    for r, res in zip(todo, results):
        r["verify_status"], r["verify_error"] = res.status, res.error
        r["verified"] = res.passed
    counts = {"candidates": len(recs), "origins": dict(Counter(r["origin"] for r in recs)), "parsed": len(parsed),
              "parse_reasons": dict(reasons),
              "contaminated": sum(r["contaminated"] for r in recs),
              "duplicates": sum(r["duplicate"] for r in recs), "sandboxed": len(todo),
              "verified": sum(r["verified"] for r in recs),
              "verify_statuses": dict(Counter(r.get("verify_status") for r in todo)),
              "decontamination": decon}
    return recs, counts


def solve_items(problems: list[dict], system: str | None) -> list[dict]:
    from common.pairs import solver_prompt
    return [{"key": r["problem_id"], "messages": chat(system, solver_prompt(r["problem"]))} for r in problems]


def check_attempts(problems: list[dict], solved: list[dict], pool, cfg: MiningConfig,
                   progress: bool = False) -> tuple[list[dict], dict]:
    """Extract and run every attempt; returns (one row per problem with scored attempts, counts)."""
    from collections import Counter

    from common.prompts import extract_code
    from common.sandbox import Job
    by_id = {r["problem_id"]: r["problem"] for r in problems}
    jobs, where = [], []
    rows = []
    for s in solved:
        prob = by_id[s["key"]]
        atts = []
        for i, smp in enumerate(s["samples"]):
            code, how = extract_code(smp["text"], prob["entry_point"])
            atts.append({"index": i, "code": code, "extraction": how, "finish_reason": smp["finish_reason"],
                         "n_tokens": smp["n_tokens"], "raw": smp["text"]})
            jobs.append(Job.asserts(code, prob["tests"], timeout=cfg.mining_timeout))
            where.append((len(rows), i))
        rows.append({"problem_id": s["key"], "attempts": atts})
    results = pool.run_many(jobs, progress=progress, desc="attempts") if jobs else []
    for (ri, ai), res in zip(where, results):
        a = rows[ri]["attempts"][ai]
        a.update(status=res.status, error=res.error, passed=res.passed)
    for r in rows:
        r["n_pass"] = sum(a["passed"] for a in r["attempts"])
    n_att = sum(len(r["attempts"]) for r in rows)
    counts = {"problems": len(rows), "attempts": n_att, "passes": sum(r["n_pass"] for r in rows),
              "all_pass": sum(r["n_pass"] == len(r["attempts"]) for r in rows),
              "all_fail": sum(r["n_pass"] == 0 for r in rows),
              "mixed": sum(0 < r["n_pass"] < len(r["attempts"]) for r in rows),
              "statuses": dict(Counter(a["status"] for r in rows for a in r["attempts"])),
              "extraction": dict(Counter(a["extraction"] for r in rows for a in r["attempts"]))}
    return rows, counts


def first_failing(attempts: list[dict]) -> dict | None:
    for a in attempts:
        if not a["passed"] and a["code"].strip() and a.get("status") != "harness_error":
            return a
    return None


def repair_items(problems: list[dict], checked: list[dict], system: str | None) -> list[dict]:
    """One repair request per all-fail problem with a non-empty failing attempt."""
    from common.pairs import error_text, make_pair, repair_prompt
    by_id = {r["problem_id"]: r["problem"] for r in problems}
    items = []
    for r in checked:
        if r["n_pass"]:
            continue
        a = first_failing(r["attempts"])
        if a is None:
            continue
        prob = by_id[r["problem_id"]]
        stub = make_pair(signature=prob["signature"], tests=prob["tests"], broken=a["code"],
                         error=error_text(a["status"], a["error"]), fixed="pass")
        items.append({"key": r["problem_id"], "broken_index": a["index"],
                      "messages": chat(system, repair_prompt(stub))})
    return items


def check_repairs(problems: list[dict], checked: list[dict], repaired: list[dict], pool, cfg: MiningConfig,
                  model: str | None, seed: int) -> tuple[list[dict], dict]:
    """Run each repair; a passing one becomes a pair (source "self-repair", fixed_index -1)."""
    from common.pairs import error_text, make_pair
    from common.prompts import extract_code
    from common.sandbox import Job
    by_id = {r["problem_id"]: r["problem"] for r in problems}
    att_by_id = {r["problem_id"]: r["attempts"] for r in checked}
    codes = []
    for r in repaired:
        code, how = extract_code(r["samples"][0]["text"], by_id[r["key"]]["entry_point"])
        codes.append((code, how))
    results = pool.run_many([Job.asserts(c, by_id[r["key"]]["tests"], timeout=cfg.mining_timeout)
                             for (c, _), r in zip(codes, repaired)]) if repaired else []
    pairs, recs = [], []
    for r, (code, how), res in zip(repaired, codes, results):
        recs.append({"problem_id": r["key"], "broken_index": r["broken_index"], "code": code, "extraction": how,
                     "status": res.status, "error": res.error, "passed": res.passed})
        if res.passed:
            prob = by_id[r["key"]]
            b = att_by_id[r["key"]][r["broken_index"]]
            pairs.append(make_pair(signature=prob["signature"], tests=prob["tests"], broken=b["code"],
                                   error=error_text(b["status"], b["error"]), fixed=code, problem_id=r["key"],
                                   broken_index=b["index"], fixed_index=-1, source="self-repair", model=model,
                                   seed=seed))
    return pairs, {"repair_attempts": len(repaired), "repairs_passed": len(pairs)}


def mine_all(problems: list[dict], checked: list[dict], cfg: MiningConfig, model: str | None,
             seed: int) -> tuple[list[dict], dict]:
    """Pairs from every problem with both failing and passing attempts (common.pairs.mine_pairs)."""
    from collections import Counter

    from common.pairs import mine_pairs
    by_id = {r["problem_id"]: r["problem"] for r in problems}
    pairs, tot = [], Counter()
    for r in checked:
        ps, c = mine_pairs(by_id[r["problem_id"]], r["attempts"], max_pairs=cfg.max_pairs_per_problem,
                           problem_id=r["problem_id"], model=model, seed=seed)
        pairs += ps
        tot.update(c)
    return pairs, dict(tot)


def finalize_pairs(pairs: list[dict], bindex: dict | None, keep_contaminated: bool,
                   prior: list[dict] = ()) -> tuple[list[dict], dict]:
    """Drop pairs repeating an earlier one (also across ``prior`` pairs) and, unless kept,
    pairs sharing a 13-gram with the benchmark; returns (pairs, counts with the report)."""
    from common.pairs import code_hash, decontamination_report, pair_text
    seen = {(code_hash(p["broken"]), code_hash(p["fixed"])) for p in prior}
    kept, dup = [], 0
    for p in pairs:
        k = (code_hash(p["broken"]), code_hash(p["fixed"]))
        if k in seen:
            dup += 1
            continue
        seen.add(k)
        kept.append(p)
    report = None
    if bindex is not None and kept:
        report = decontamination_report({str(i): pair_text(p) for i, p in enumerate(kept)}, bindex)
        if not keep_contaminated:
            bad = set(report["flagged_ids"])
            kept = [p for i, p in enumerate(kept) if str(i) not in bad]
    return kept, {"pairs_in": len(pairs), "duplicates_dropped": dup,
                  "contaminated": report["n_flagged"] if report else 0,
                  "pairs_out": len(kept), "decontamination": report}


# --------------------------------------------------------------------------------------------
# Evaluation and comparison
# --------------------------------------------------------------------------------------------


def load_eval_tasks(spec: EvalSpec):
    from common.benchmarks import load_tasks
    return load_tasks(spec.bench, limit=spec.limit, path=spec.data_path)


def evaluate_model(*, slot: ModelSlot, adapter: str | None, protocol_name: str, tasks, dataset, run_dir: Path,
                   spec: EvalSpec, script: str, argv, args: dict, progress: bool = True) -> dict:
    """Greedy evaluation of the base model or an adapter (resumable: a finished run is reused)."""
    from common.cli import sampling_from_args
    from common.evaluation import evaluate_code
    import types
    protocol, recorded = eval_protocol(protocol_name)
    ns = types.SimpleNamespace(n_samples=1, temperature=0.0, top_p=1.0, top_k=0, seed=0,
                               max_new_tokens=spec.max_new_tokens)
    params = sampling_from_args(ns, protocol, logprobs=True)
    info = model_args_info(slot.resolved, slot.args, adapter)
    res = evaluate_code(script=script, argv=argv, args=args, run_dir=Path(run_dir), tasks=tasks, dataset=dataset,
                        protocol=protocol, params=params, model_info=info, get_llm=lambda: slot.get(adapter),
                        workers=spec.workers, timeout=spec.timeout, progress=progress, protocol_name=recorded)
    return res


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


def evaluate_and_compare(*, slot: ModelSlot, adapters: dict[str, str], spec: EvalSpec, eval_root: Path,
                         script: str, argv, args: dict, progress: bool = True) -> dict:
    """Evaluate the base model and each named adapter under every protocol of ``spec``;
    returns {protocol: {"base": metrics, name: {"metrics", "comparison"}}}. Base runs live in
    ``eval_root/base_<protocol>``, adapters in ``eval_root/<name>_<protocol>``."""
    out = {}
    if not spec.protocols:
        return out
    tasks, dataset = load_eval_tasks(spec)
    for proto in spec.protocols:
        entry = {}
        reused = dict(spec.base_runs).get(proto)
        if reused:
            bdir = Path(reused)
            pass1 = check_base_run(bdir, protocol_name=eval_protocol(proto)[1] or proto,
                                   model_sha256=model_args_info(slot.resolved, slot.args, None).get("file_sha256"),
                                   tasks=tasks, max_new_tokens=spec.max_new_tokens)
            log.info("base [%s]: reusing %s", proto, bdir)
        else:
            bdir = Path(eval_root) / f"base_{proto}"
            bres = evaluate_model(slot=slot, adapter=None, protocol_name=proto, tasks=tasks, dataset=dataset,
                                  run_dir=bdir, spec=spec, script=script, argv=argv, args=args, progress=progress)
            pass1 = bres["metrics"]["pass_at_k"]["pass@1"]
        tids = {t["task_id"] for t in tasks}
        all_out = task_outcomes(bdir)
        base_out = {t: v for t, v in all_out.items() if t in tids}
        if reused and len(base_out) != len(all_out):  # a reused run on more tasks: its own pass@1 is not ours
            pass1 = {"k": 1, "mean": sum(base_out.values()) / len(base_out), "n_tasks": len(base_out),
                     "note": f"recomputed on the {len(base_out)} evaluation tasks of the reused run"}
        entry["base"] = {"run_dir": str(bdir), "pass@1": pass1, "reused": bool(reused)}
        for name, adapter in adapters.items():
            adir = Path(eval_root) / f"{name}_{proto}"
            ares = evaluate_model(slot=slot, adapter=adapter, protocol_name=proto, tasks=tasks, dataset=dataset,
                                  run_dir=adir, spec=spec, script=script, argv=argv, args=args, progress=progress)
            cmp_ = compare(base_out, task_outcomes(adir), "base", name)
            entry[name] = {"run_dir": str(adir), "adapter": str(adapter),
                           "pass@1": ares["metrics"]["pass_at_k"]["pass@1"], "comparison": cmp_}
            log.info("%s [%s]: %s", name, proto, cmp_["headline"])
        out[proto] = entry
    slot.release()
    return out


def train_and_evaluate(*, slot: ModelSlot, pairs: list[dict], pairs_info: dict, cfg, adapter_dir: Path,
                       name: str, spec: EvalSpec, eval_root: Path, script: str, argv, args: dict,
                       overwrite: bool = False, progress: bool = True, train_extra: dict | None = None) -> dict:
    """The path every control and sweep shares: train (common.lora.train_adapter, skipped when
    already done), then evaluate base and adapter and compare them per protocol."""
    from common.lora import train_adapter
    slot.release()
    tres = train_adapter(resolved=slot.resolved, pairs=pairs, pairs_info=pairs_info, cfg=cfg, out_dir=adapter_dir,
                         script=script, argv=argv, args=args, overwrite=overwrite, progress=progress,
                         extra=train_extra)
    ev = evaluate_and_compare(slot=slot, adapters={name: str(adapter_dir)}, spec=spec, eval_root=eval_root,
                              script=script, argv=argv, args=args, progress=progress)
    return {"adapter": str(adapter_dir), "training": summarize_training(tres), "evaluation": ev}


def summarize_training(tres: dict) -> dict:
    return {"skipped": bool(tres.get("skipped")), "pairs": tres.get("pairs"), "data": tres.get("data"),
            "stats": tres.get("stats"), "train_config": tres.get("train_config")}


def write_pairs_file(path: Path, pairs: list[dict]) -> dict:
    """Write pairs JSONL atomically and return its provenance (path, sha256, count, sources)."""
    from common.pairs import pairs_provenance
    write_jsonl_atomic(Path(path), pairs)
    return pairs_provenance(path, pairs)


# --------------------------------------------------------------------------------------------
# The bootstrap loop (recipe/bootstrap.py and recipe/multi_pair.py share it)
# --------------------------------------------------------------------------------------------

VARIANTS = {
    # plain bootstrap: PAPER.md §2 stages 1-5, repair attempt for all-fail problems
    "plain": {"mining": {}, "lora": {}, "problems": 100, "protocols": "he-chat,qwen-official"},
    # multi-pair: 8 attempts, 500 tokens, up to 4 distinct failing attempts, r32/α64, no repair
    "multi": {"mining": {"attempts": 8, "max_new_tokens": 500, "max_pairs_per_problem": 4,
                         "repair_all_fail": False, "system": PAPER_MULTI_SYSTEM},
              "lora": {"lora_rank": 32, "lora_alpha": 64},
              "problems": 200, "protocols": "he-chat-multi,he-chat,qwen-official"},
}


def build_bootstrap_parser(doc: str, variant: str):
    """The parser of recipe/bootstrap.py (``plain``) and recipe/multi_pair.py (``multi``)."""
    import argparse

    from common.cli import add_model_args, add_run_args
    from common.lora import add_lora_args
    v = VARIANTS[variant]
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=doc)
    add_model_args(p, adapter=False)
    g = p.add_argument_group("loop")
    g.add_argument("--iterations", type=int, default=1,
                   help="mine -> train rounds; later rounds mine with the latest adapter and retrain from the "
                        "base model on all pairs so far (default 1)")
    g.add_argument("--problems-per-iter", type=int, default=v["problems"],
                   help=f"problems generated per iteration (default {v['problems']})")
    g.add_argument("--train-every", type=int, default=1,
                   help="train after every k-th iteration (and always after the last; default 1)")
    g.add_argument("--eval-every", type=int, default=1,
                   help="evaluate every k-th trained adapter (and always the last; 0 = never; default 1)")
    g.add_argument("--seed-problems", default=None,
                   help="problems JSONL ({id, entry_point, signature, reference, tests}) added to iteration 1's "
                        "generated problems; they are verified and solved like the others")
    g.add_argument("--warmup-pairs" if variant == "multi" else "--extra-pairs", dest="extra_pairs", default=None,
                   help="pairs JSONL added to every training set (not to the output pairs file); its path, sha256, "
                        "count and source models are recorded")
    g.add_argument("--pairs-out", default=None,
                   help="where the mined pairs go (default data/pairs_<run-name>.jsonl in the repository)")
    g.add_argument("--mine-with-base", action="store_true",
                   help="later iterations mine with the base model instead of the latest adapter")
    g.add_argument("--mine-only", action="store_true",
                   help="stop after mining (one iteration): write the pairs file and result.json, train and "
                        "evaluate nothing; then train with recipe/train_on_pairs.py and evaluate with "
                        "evals/eval_raw.py --adapter / evals/confirm.py")
    add_mining_args(p, **v["mining"])
    add_lora_args(p, system_flag=False, **v["lora"])
    add_eval_args(p, protocols=v["protocols"])
    add_run_args(p)
    return p


def run_bootstrap(args, *, script: str, argv, variant: str) -> dict:
    """Generate -> verify -> solve -> mine [-> repair] -> train -> evaluate, per iteration, resumable."""
    from collections import Counter

    from common.lora import config_from_args, train_adapter
    from common.models import resolve_model
    from common.pairs import code_hash, humaneval_index, load_pairs, load_problems, pairs_provenance
    from common.results import REPO_ROOT, provenance, results_root
    from common.sandbox import SandboxPool

    for name, lo in (("iterations", 1), ("problems_per_iter", 0), ("train_every", 1), ("eval_every", 0)):
        if getattr(args, name) < lo:
            raise InputError(f"--{name.replace('_', '-')} must be >= {lo}, got {getattr(args, name)}")
    if getattr(args, "mine_only", False) and args.iterations != 1:
        raise InputError("--mine-only mines one iteration (later iterations would mine with an adapter)")
    mcfg = mining_from_args(args)
    tcfg = config_from_args(args)
    spec = eval_spec_from_args(args)
    seed_problems = load_problems(args.seed_problems) if args.seed_problems else []
    if not args.problems_per_iter and not seed_problems:
        raise InputError("--problems-per-iter 0 needs --seed-problems (there would be nothing to mine)")
    extra_pairs = load_pairs(args.extra_pairs) if args.extra_pairs else []
    extra_info = pairs_provenance(args.extra_pairs, extra_pairs) if args.extra_pairs else None
    resolved = resolve_model(args.model)
    run_name = args.run_name or f"{variant}_bootstrap_{slug(args.model)}_s{mcfg.seed}"
    run_dir = Path(args.out_dir or results_root()) / run_name
    pairs_out = Path(args.pairs_out) if args.pairs_out else REPO_ROOT / "data" / f"pairs_{run_name}.jsonl"
    config = {"variant": variant, "model": {"ref": resolved.ref, "file_sha256": resolved.file_sha256},
              "mining": mcfg.to_dict(), "training": tcfg.to_dict(), "iterations": args.iterations,
              "problems_per_iter": args.problems_per_iter, "train_every": args.train_every,
              "eval_every": args.eval_every, "mine_with_base": args.mine_with_base,
              "seed_problems": pairs_provenance(args.seed_problems, seed_problems) if seed_problems else None,
              "extra_pairs": extra_info,
              "eval": {"protocols": list(spec.protocols), "bench": spec.bench, "limit": spec.limit,
                       "max_new_tokens": spec.max_new_tokens}}
    prepare_run_dir(run_dir, config, args.overwrite)
    book = StageBook(run_dir)
    slot = ModelSlot(resolved, args)
    progress = not args.quiet
    argv = list(argv) if argv is not None else []
    argd = vars(args)
    t_start = time.time()
    bindex = humaneval_index()
    all_pairs: list[dict] = []
    seen: set = set()
    adapter = None
    trainings, evaluations = {}, {}
    n_trained = 0
    pool = SandboxPool(workers=args.workers, timeout=mcfg.mining_timeout)
    try:
        for it in range(1, args.iterations + 1):
            idir = run_dir / f"iter{it}"
            seed_it = mcfg.seed + 1000 * (it - 1)
            mine_adapter = None if args.mine_with_base else adapter
            get = (lambda a=mine_adapter: slot.get(a))

            key = f"iter{it}/generate"
            if not book.done(key):
                t0 = time.time()
                rows = generate_problems(idir / "generated.jsonl", get, f"it{it}", args.problems_per_iter, mcfg,
                                         seed_it, progress) if args.problems_per_iter else []
                book.mark(key, {"generated": len(rows),
                                "finish_reasons": dict(Counter(r["samples"][0]["finish_reason"] for r in rows))},
                          time.time() - t0)
            gen_rows = read_rows(idir / "generated.jsonl")

            key = f"iter{it}/verify"
            if not book.done(key):
                t0 = time.time()
                cands = [{"key": r["key"], "text": r["samples"][0]["text"], "origin": "generated"} for r in gen_rows]
                if it == 1:
                    cands += [{"key": f"seed-{p['id']}", "origin": "seed-file",
                               "problem": {k: p.get(k, "") for k in ("entry_point", "signature", "docstring",
                                                                     "reference", "tests")}}
                              for p in seed_problems]
                recs, counts = verify_problems(cands, pool, mcfg, bindex, seen)
                write_jsonl_atomic(idir / "problems.jsonl", recs)
                book.mark(key, counts, time.time() - t0)
            recs = read_rows(idir / "problems.jsonl")
            seen.update(code_hash(r["problem"]["reference"]) for r in recs if "verify_status" in r)
            problems = [r for r in recs if r["verified"]]

            key = f"iter{it}/solve"
            if not book.done(key):
                t0 = time.time()
                solved = generate_into(idir / "solutions.jsonl", get, solve_items(problems, mcfg.system),
                                       sampling(mcfg.solve_temperature, mcfg, n=mcfg.attempts, seed=seed_it + 11),
                                       desc="solve", progress=progress) if problems else []
                book.mark(key, {"problems": len(problems), "attempts": sum(len(s["samples"]) for s in solved)},
                          time.time() - t0)
            solved = read_rows(idir / "solutions.jsonl")

            key = f"iter{it}/check"
            if not book.done(key):
                t0 = time.time()
                checked, counts = check_attempts(problems, solved, pool, mcfg, progress=progress)
                write_jsonl_atomic(idir / "attempts.jsonl", checked)
                book.mark(key, counts, time.time() - t0)
            checked = read_rows(idir / "attempts.jsonl")

            repair_pairs = []
            if mcfg.repair_all_fail:
                key = f"iter{it}/repair"
                if not book.done(key):
                    t0 = time.time()
                    items = repair_items(problems, checked, mcfg.system)
                    repaired = generate_into(idir / "repairs_raw.jsonl", get, items,
                                             sampling(mcfg.solve_temperature, mcfg, seed=seed_it + 23),
                                             desc="repair", progress=progress) if items else []
                    rp, counts = check_repairs(problems, checked, repaired, pool, mcfg, resolved.ref, mcfg.seed)
                    write_jsonl_atomic(idir / "repair_pairs.jsonl", rp)
                    book.mark(key, counts, time.time() - t0)
                repair_pairs = read_rows(idir / "repair_pairs.jsonl")

            key = f"iter{it}/mine"
            if not book.done(key):
                t0 = time.time()
                mined, mcounts = mine_all(problems, checked, mcfg, resolved.ref, mcfg.seed)
                final, fcounts = finalize_pairs(mined + repair_pairs, bindex, mcfg.keep_contaminated, prior=all_pairs)
                write_jsonl_atomic(idir / "pairs.jsonl", final)
                book.mark(key, {**mcounts, "repair_pairs": len(repair_pairs), **fcounts}, time.time() - t0)
            all_pairs += read_rows(idir / "pairs.jsonl")

            if args.mine_only or (it % args.train_every and it != args.iterations):
                continue
            train_pairs = extra_pairs + all_pairs
            if not train_pairs:
                log.warning("iteration %d: no pairs to train on; training skipped", it)
                trainings[f"iter{it}"] = {"skipped": True, "reason": "no pairs"}
                continue
            slot.release()
            info = write_pairs_file(idir / "train_pairs.jsonl", train_pairs)
            info.update(mined=len(all_pairs), extra=len(extra_pairs))
            tres = train_adapter(resolved=resolved, pairs=train_pairs, pairs_info=info, cfg=tcfg,
                                 out_dir=idir / "adapter", script=script, argv=argv, args=argd,
                                 progress=progress, extra={"extra_pairs": extra_info})
            trainings[f"iter{it}"] = summarize_training(tres)
            adapter = str(idir / "adapter")
            n_trained += 1
            if args.eval_every and (n_trained % args.eval_every == 0 or it == args.iterations):
                evaluations[f"iter{it}"] = evaluate_and_compare(
                    slot=slot, adapters={f"iter{it}": adapter}, spec=spec, eval_root=run_dir / "eval",
                    script=script, argv=argv, args=argd, progress=progress)
    finally:
        pool.close()
        slot.release()

    out_info = write_pairs_file(pairs_out, all_pairs)
    result = {
        **provenance(script, argv, argd),
        "variant": variant,
        "config": json.loads(json.dumps(config)),
        "model": resolved.provenance(),
        "stages": book.data,
        "totals": _totals(book.data),
        "pairs_out": out_info,
        "extra_pairs": extra_info,
        "training": trainings,
        "evaluation": evaluations,
        "timings": {"total_s_this_invocation": round(time.time() - t_start, 1)},
    }
    write_json_atomic(run_dir / "result.json", result)
    return {**result, "run_dir": str(run_dir)}


def _totals(stages: dict) -> dict:
    """Sums over iterations of the counts every report needs."""
    from collections import Counter
    tot = Counter()
    wanted = {"generate": ("generated",), "verify": ("parsed", "contaminated", "duplicates", "verified"),
              "check": ("problems", "attempts", "passes", "all_pass", "all_fail", "mixed"),
              "repair": ("repair_attempts", "repairs_passed"),
              "mine": ("n_pairs", "repair_pairs", "n_duplicate_failing", "n_junk", "duplicates_dropped",
                       "pairs_out")}
    for key, v in stages.items():
        stage = key.split("/", 1)[1]
        for f in wanted.get(stage, ()):
            c = v["counts"].get(f)
            if isinstance(c, (int, float)):
                tot[f"{stage}.{f}"] += c
    return dict(tot)


def print_summary(res: dict) -> None:
    t = res["totals"]
    print(f"\n{res['variant']} bootstrap · {res['model']['ref']} · {res['run_dir']}")
    seeded = sum(v["counts"].get("origins", {}).get("seed-file", 0) for k, v in res["stages"].items()
                 if k.endswith("/verify"))
    print(f"  problems: generated {t.get('generate.generated', 0)}" + (f" (+{seeded} from --seed-problems)" if seeded else "")
          + f", parsed {t.get('verify.parsed', 0)}, "
          f"verified {t.get('verify.verified', 0)} (contaminated {t.get('verify.contaminated', 0)}, "
          f"duplicates {t.get('verify.duplicates', 0)})")
    print(f"  attempts: {t.get('check.attempts', 0)}, passes {t.get('check.passes', 0)}; problems all-pass "
          f"{t.get('check.all_pass', 0)}, mixed {t.get('check.mixed', 0)}, all-fail {t.get('check.all_fail', 0)}")
    print(f"  pairs: {res['pairs_out']['count']} -> {res['pairs_out']['path']}")
    for it, ev in res["evaluation"].items():
        for proto, entry in ev.items():
            for name, v in entry.items():
                if name != "base":
                    print(f"  [{proto}] {v['comparison']['headline']}")


# --------------------------------------------------------------------------------------------
# Controls: pairs from an external problem source, then the same train -> evaluate path
# --------------------------------------------------------------------------------------------


def default_external_problems() -> Path:
    from common.results import REPO_ROOT
    return REPO_ROOT / "data" / "external_problems.jsonl"


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


def external_problems(args) -> tuple[list[dict], dict]:
    """Problems from --problems (our schema) or --mbpp (reference code, description as docstring)."""
    from collections import Counter

    from common.pairs import load_problems, signature_from_code
    from common.results import file_sha256
    if args.mbpp:
        from common.benchmarks import load_tasks
        tasks, info = load_tasks("mbpp", path=args.mbpp, split=args.mbpp_split)
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
        info = {**info, "kind": "mbpp", "skipped": dict(skipped)}
    else:
        path = Path(args.problems) if args.problems else default_external_problems()
        probs = load_problems(path)
        info = {"kind": "problems-file", "path": str(path), "sha256": file_sha256(path), "n_total": len(probs)}
    if args.limit_problems is not None:
        if args.limit_problems < 1:
            raise InputError(f"--limit-problems must be >= 1, got {args.limit_problems}")
        probs = probs[:args.limit_problems]
    info["n_used"] = len(probs)
    return probs, info


def verified_external(problems: list[dict], pool, timeout: float, keep_contaminated: bool) -> tuple[list[dict], dict]:
    """Decontaminate against HumanEval and keep problems whose reference passes its tests."""
    from common.pairs import decontamination_report, humaneval_index, problem_text
    from common.sandbox import Job
    report = decontamination_report({p["id"]: problem_text(p) for p in problems}, humaneval_index())
    flagged = set(report["flagged_ids"])
    cand = [p for p in problems if keep_contaminated or p["id"] not in flagged]
    res = pool.run_many([Job.asserts(p["reference"], p["tests"], timeout=timeout) for p in cand])
    ok = [p for p, r in zip(cand, res) if r.passed]
    return ok, {"problems": len(problems), "contaminated": len(flagged), "reference_failed": len(cand) - len(ok),
                "failed_ids": [p["id"] for p, r in zip(cand, res) if not r.passed][:50], "usable": len(ok),
                "decontamination": report}


def add_training_path_args(p, lora_overrides: dict | None = None, seed_flag: str = "--train-seed") -> None:
    """Model, LoRA, evaluation and run flags: what every control and sweep needs."""
    from common.cli import add_model_args, add_run_args
    from common.lora import add_lora_args
    add_model_args(p, adapter=False)
    add_lora_args(p, seed_flag=seed_flag, **(lora_overrides or {}))
    add_eval_args(p)
    add_run_args(p)


def run_control(args, *, script: str, argv, kind: str, make_pairs, control_config: dict | None = None) -> dict:
    """Build control pairs with ``make_pairs(problems, pool, args) -> (pairs, counts)``, then
    train and evaluate exactly as the recipe does. Writes results/<run>/result.json."""
    from common.lora import config_from_args
    from common.models import resolve_model
    from common.results import provenance, results_root
    from common.sandbox import SandboxPool
    cfg = config_from_args(args)
    spec = eval_spec_from_args(args)
    problems, source = external_problems(args)
    resolved = resolve_model(args.model)
    run_name = args.run_name or f"{kind}_{slug(args.model)}_{source['kind']}_s{cfg.seed}"
    run_dir = Path(args.out_dir or results_root()) / run_name
    config = {"control": kind, "model": {"ref": resolved.ref, "file_sha256": resolved.file_sha256},
              "source": {k: source.get(k) for k in ("kind", "path", "sha256", "n_used")},
              "training": cfg.to_dict(), "control_args": control_config or {},
              "eval": {"protocols": list(spec.protocols), "bench": spec.bench, "limit": spec.limit,
                       "max_new_tokens": spec.max_new_tokens}}
    prepare_run_dir(run_dir, config, args.overwrite)
    t0 = time.time()
    with SandboxPool(workers=args.workers, timeout=args.mining_timeout) as pool:
        usable, vcounts = verified_external(problems, pool, args.mining_timeout, args.keep_contaminated)
        pairs, pcounts = make_pairs(usable, pool, args)
    if not pairs:
        raise InputError(f"{kind}: no pairs could be built from {source.get('path') or source.get('name')}")
    pairs_path = Path(args.pairs_out) if args.pairs_out else run_dir / "pairs.jsonl"
    info = write_pairs_file(pairs_path, pairs)
    build_s = time.time() - t0
    argv = list(argv) if argv is not None else []
    out = train_and_evaluate(slot=ModelSlot(resolved, args), pairs=pairs, pairs_info=info, cfg=cfg,
                             adapter_dir=run_dir / "adapter", name="adapter", spec=spec, eval_root=run_dir / "eval",
                             script=script, argv=argv, args=vars(args), progress=not args.quiet,
                             train_extra={"control": kind})
    result = {**provenance(script, argv, vars(args)), "control": kind, "config": json.loads(json.dumps(config)),
              "model": resolved.provenance(), "source": source, "problems": vcounts, "pairs_build": pcounts,
              "pairs": info, **out, "timings": {"build_pairs_s": round(build_s, 1),
                                                "total_s_this_invocation": round(time.time() - t0, 1)}}
    write_json_atomic(run_dir / "result.json", result)
    return {**result, "run_dir": str(run_dir)}


def print_comparisons(title: str, evaluation: dict) -> None:
    print(f"\n{title}")
    for proto, entry in evaluation.items():
        for name, v in entry.items():
            if name != "base":
                print(f"  [{proto}] {v['comparison']['headline']}")


# --------------------------------------------------------------------------------------------
# Sweeps: several adapters from one pairs file, each compared with the base model
# --------------------------------------------------------------------------------------------


def parse_int_list(text: str, flag: str, minimum: int = 0) -> list[int]:
    try:
        vals = [int(x) for x in str(text).split(",") if x.strip()]
    except ValueError:
        raise InputError(f"{flag} must be comma-separated integers, got {text!r}") from None
    if not vals or any(v < minimum for v in vals):
        raise InputError(f"{flag} needs integers >= {minimum}, got {text!r}")
    if len(set(vals)) != len(vals):
        raise InputError(f"{flag} repeats a value: {text!r}")
    return vals


def run_sweep(args, *, script: str, argv, kind: str, arms: list[tuple[str, list[dict], object]],
              pairs_info: dict, config_extra: dict) -> dict:
    """Train one adapter per arm ``(name, pairs, TrainConfig)`` (each skipped when already
    trained), evaluate the base model once and every adapter on the same tasks, and compare
    each with the base (paired). results/<run>/<name>/ holds each arm's pairs and adapter."""
    from common.lora import train_adapter
    from common.models import resolve_model
    from common.pairs import pairs_provenance
    from common.results import provenance, results_root
    spec = eval_spec_from_args(args)
    resolved = resolve_model(args.model)
    run_name = args.run_name or f"{kind}_{slug(args.model)}_{pairs_info['sha256'][:8]}"
    run_dir = Path(args.out_dir or results_root()) / run_name
    config = {"sweep": kind, "model": {"ref": resolved.ref, "file_sha256": resolved.file_sha256},
              "pairs": {k: pairs_info.get(k) for k in ("path", "sha256", "count")},
              "arms": [{"name": n, "n_pairs": len(ps), "training": c.to_dict()} for n, ps, c in arms],
              "eval": {"protocols": list(spec.protocols), "bench": spec.bench, "limit": spec.limit,
                       "max_new_tokens": spec.max_new_tokens}, **config_extra}
    prepare_run_dir(run_dir, config, args.overwrite)
    argv = list(argv) if argv is not None else []
    t0 = time.time()
    trainings, adapters = {}, {}
    for name, ps, cfg in arms:
        adir = run_dir / name
        ppath = adir / "pairs.jsonl"
        write_jsonl_atomic(ppath, ps)
        info = {**pairs_provenance(ppath, ps), "parent": {k: pairs_info.get(k) for k in ("path", "sha256", "count")}}
        tres = train_adapter(resolved=resolved, pairs=ps, pairs_info=info, cfg=cfg, out_dir=adir / "adapter",
                             script=script, argv=argv, args=vars(args), progress=not args.quiet,
                             extra={"sweep": kind, "arm": name})
        trainings[name] = summarize_training(tres)
        adapters[name] = str(adir / "adapter")
    slot = ModelSlot(resolved, args)
    ev = evaluate_and_compare(slot=slot, adapters=adapters, spec=spec, eval_root=run_dir / "eval", script=script,
                              argv=argv, args=vars(args), progress=not args.quiet)
    table = {proto: [{"arm": n, "pass@1": entry[n]["pass@1"]["mean"], "delta": entry[n]["comparison"]["delta"],
                      "ci": entry[n]["comparison"]["ci"], "mcnemar_p": entry[n]["comparison"]["mcnemar_p"],
                      "base_pass@1": entry["base"]["pass@1"]["mean"]} for n, _, _ in arms]
             for proto, entry in ev.items()}
    result = {**provenance(script, argv, vars(args)), "sweep": kind, "config": json.loads(json.dumps(config)),
              "model": resolved.provenance(), "pairs": pairs_info, "training": trainings, "evaluation": ev,
              "table": table, "timings": {"total_s_this_invocation": round(time.time() - t0, 1)}}
    write_json_atomic(run_dir / "result.json", result)
    return {**result, "run_dir": str(run_dir)}


def print_table(res: dict) -> None:
    print(f"\n{res['sweep']} · {res['model']['ref']} · {res['run_dir']}")
    for proto, rows in res["table"].items():
        print(f"  [{proto}] base pass@1 {100 * rows[0]['base_pass@1']:.1f}%" if rows else f"  [{proto}]")
        for r in rows:
            p = r["mcnemar_p"]
            print(f"    {r['arm']:>12}: {100 * r['pass@1']:.1f}%  delta {100 * r['delta']:+.1f} pp "
                  f"[{100 * r['ci'][0]:+.1f}, {100 * r['ci'][1]:+.1f}]" + (f"  p={p:.3g}" if p is not None else ""))
