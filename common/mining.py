"""The self-bootstrap recipe's mining stages (PAPER.md §2, stages 1–5), shared by
recipe/bootstrap.py, recipe/multi_pair.py and recipe/curriculum_code.py.

Settings: :class:`MiningConfig` (PAPER.md §3 constants; the multi-pair variant overrides some) and
its flag group :func:`add_mining_args`. Stages (each a function; the scripts decide the order and
where files go, one :meth:`common.rundir.StageBook.run` block per stage):

* :func:`generate_into` — sample chat completions for keyed items into a JSONL log (resumable:
  items already in the log are not generated again); :func:`generate_problems` asks for problems;
* :func:`verify_problems` — parse (``common.pairs.parse_problem``), drop HumanEval-contaminated
  and duplicate problems, run each reference against its own tests in the sandbox;
* :func:`solve_items` / :func:`check_attempts` — the solver's requests (signature, docstring and
  tests only), then every sampled attempt's extracted code run against the tests;
* :func:`repair_items` / :func:`check_repairs` — one repair attempt for problems every attempt failed;
* :func:`mine_all` / :func:`finalize_pairs` — repair pairs from scored attempts
  (``common.pairs.mine_pairs``), global dedup, decontamination.

Every execution goes through ``common.sandbox`` (``Job.asserts``, mining timeout 8 s).
:class:`MiningRun` is what the stages of one staged run share (directory, stage book, model slot,
sandbox pool, settings, the references seen and the pairs kept so far).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from common.flags import add_config_flags
from common.prompts import PAPER_SYSTEM
from common.results import InputError, JsonlLog, write_jsonl_atomic
from common.rundir import StageBook, prepare_run_dir
from common.sandbox import MINING_TIMEOUT

PROBLEM_STYLES = ("plain", "hard", "mixed")
PROBLEM_KEYS = ("entry_point", "signature", "docstring", "reference", "tests")


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

    @classmethod
    def from_args(cls, args, **overrides) -> "MiningConfig":
        """From parsed :func:`add_mining_args` flags; fields without a flag keep their default."""
        kw = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}
        return cls(**{**kw, **overrides})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def params(self, temperature: float, n: int = 1, seed: int = 0):
        """SamplingParams of one mining call (top-p applies when sampling; greedy ignores it)."""
        from common.sampling import SamplingParams
        return SamplingParams(n=n, temperature=temperature, top_p=self.top_p if temperature > 0 else 1.0,
                              max_new_tokens=self.max_new_tokens, seed=seed)


def add_mining_args(p, **overrides) -> None:
    """Flags of :class:`MiningConfig`; ``overrides`` change defaults (multi-pair: attempts=8 ...)."""
    d = dataclasses.replace(MiningConfig(), **overrides)
    g = p.add_argument_group("problem generation, solving and mining (defaults: PAPER.md §3)")
    g.add_argument("--problem-style", default=d.problem_style, choices=PROBLEM_STYLES,
                   help=f"plain problems, 'hard' ones (non-trivial algorithms, T={d.hard_temperature}) or "
                        f"alternating (default {d.problem_style})")
    add_config_flags(g, d, {
        "gen_temperature": "problem generation temperature",
        "hard_temperature": "temperature of hard problem generation",
        "solve_temperature": "temperature of solving and repair attempts",
        "top_p": "nucleus truncation everywhere",
        "max_new_tokens": "token budget of problem generation and of each attempt",
        "attempts": "solving attempts sampled per problem",
        "max_pairs_per_problem": "distinct failing attempts paired per problem"})
    if d.repair_all_fail:
        g.add_argument("--no-repair", dest="repair_all_fail", action="store_false",
                       help="skip the repair attempt for problems where every attempt failed")
    else:
        g.set_defaults(repair_all_fail=False)
    add_config_flags(g, d, {"mining_timeout": "sandbox wall-clock limit per program while mining, seconds"})
    g.add_argument("--system", default=d.system,
                   help=f"system prompt while mining and training (default {d.system!r})")
    g.add_argument("--seed", type=int, default=d.seed, help=f"sampling seed (default {d.seed})")
    g.add_argument("--keep-contaminated", action="store_true",
                   help="keep problems/pairs that share a 13-gram with HumanEval (they are always reported)")


# --------------------------------------------------------------------------------------------
# Stages
# --------------------------------------------------------------------------------------------


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
    from common.problems import problem_prompt
    groups: dict[str, list[dict]] = {"plain": [], "hard": []}
    for i in range(n):
        hard = cfg.problem_style == "hard" or (cfg.problem_style == "mixed" and i % 2 == 1)
        style = "hard" if hard else "plain"
        groups[style].append({"key": f"{prefix}-p{i}", "style": style,
                              "messages": chat(cfg.system, problem_prompt(hard))})
    return groups


def generate_problems(path: Path, get_llm, prefix: str, n: int, cfg: MiningConfig, seed: int,
                      progress: bool = True) -> list[dict]:
    """``n`` problems written by the model into ``path`` (plain and/or hard ones, as
    ``cfg.problem_style`` says; hard ones sampled at their own temperature), in key order."""
    rows = []
    for style, items in problem_items(prefix, n, cfg).items():
        if items:
            temp = cfg.hard_temperature if style == "hard" else cfg.gen_temperature
            rows += generate_into(path, get_llm, items, cfg.params(temp, seed=seed + (style == "hard")),
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

    from common.decontam import decontamination_report
    from common.problems import parse_problem, problem_text
    from common.pycode import code_hash
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
    """The solver's request per verified problem: signature, docstring and tests, never the reference body."""
    from common.problems import solver_prompt
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
    from common.decontam import decontamination_report
    from common.pairs import pair_text
    from common.pycode import code_hash
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


def seed_candidates(problems: list[dict]) -> list[dict]:
    """Verification candidates from a problems file (``--seed-problems``): already parsed."""
    return [{"key": f"seed-{p['id']}", "origin": "seed-file", "problem": {k: p.get(k, "") for k in PROBLEM_KEYS}}
            for p in problems]


def write_pairs_file(path: Path, pairs: list[dict]) -> dict:
    """Write pairs JSONL atomically and return its provenance (path, sha256, count, sources)."""
    from common.pairs import pairs_provenance
    write_jsonl_atomic(Path(path), pairs)
    return pairs_provenance(path, pairs)


# --------------------------------------------------------------------------------------------
# One staged run
# --------------------------------------------------------------------------------------------


@dataclass
class MiningRun:
    """What the stages of one staged mining run share; ``with MiningRun.open(...) as run:``
    closes the sandbox pool and releases the model at the end.

    ``slot`` is a :class:`common.compare.ModelSlot`; ``seen``: normalised hashes of every
    reference verified so far (a later stage's duplicates are dropped); ``pairs``: the pairs
    kept so far (a later stage's repeats are dropped)."""
    dir: Path
    book: StageBook
    slot: object
    pool: object
    cfg: MiningConfig
    bindex: dict
    progress: bool = True
    seen: set = field(default_factory=set)
    pairs: list = field(default_factory=list)

    @classmethod
    def open(cls, run_dir: Path, config: dict, overwrite: bool, slot, cfg: MiningConfig, options) -> "MiningRun":
        """Lock and check (or, with ``overwrite``, wipe) the run directory, load its stage book
        and the HumanEval 13-gram index, and start the sandbox pool (``options``: a
        common.cli.RunOptions giving the workers and progress)."""
        from common.decontam import humaneval_index
        from common.sandbox import SandboxPool
        prepare_run_dir(run_dir, config, overwrite)
        book, bindex = StageBook(run_dir), humaneval_index()
        pool = SandboxPool(workers=options.workers, timeout=cfg.mining_timeout)
        return cls(Path(run_dir), book, slot, pool, cfg, bindex, options.progress)

    def __enter__(self) -> "MiningRun":
        return self

    def __exit__(self, *exc) -> None:
        self.pool.close()
        self.slot.release()

    def verified(self, recs: list[dict]) -> list[dict]:
        """The verified problems of a verify stage's records (their references now count as seen)."""
        from common.pycode import code_hash
        self.seen.update(code_hash(r["problem"]["reference"]) for r in recs if "verify_status" in r)
        return [r for r in recs if r["verified"]]

    def verify(self, key: str, path: Path, candidates) -> list[dict]:
        """Stage: parse, decontaminate, dedup and self-verify the rows ``candidates()`` returns
        (called only when the stage runs); the verified problems."""
        return self.verified(self.book.run(key, path, lambda: verify_problems(candidates(), self.pool, self.cfg,
                                                                              self.bindex, self.seen)))

    def check(self, key: str, path: Path, problems: list[dict], solved: list[dict]) -> list[dict]:
        """Stage: run every attempt of ``solved`` against its problem's tests; the scored rows."""
        return self.book.run(key, path, lambda: check_attempts(problems, solved, self.pool, self.cfg, self.progress))

    def mine(self, problems: list[dict], checked: list[dict], more: list[dict] = ()) -> tuple[list[dict], dict]:
        """Pairs of the problems with failing and passing attempts, plus ``more`` (repair pairs),
        minus repeats of the pairs kept so far and, unless kept, contaminated ones."""
        mined, mcounts = mine_all(problems, checked, self.cfg, self.slot.resolved.ref, self.cfg.seed)
        final, fcounts = finalize_pairs(mined + list(more), self.bindex, self.cfg.keep_contaminated, prior=self.pairs)
        return final, {**mcounts, **fcounts}
