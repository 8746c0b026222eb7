"""What the math recipes share (PAPER.md §2 "math variants", STaR, self-correction, seeded
mining): settings and flags, training pools disjoint from every evaluation set, model-written
problems verified by their arithmetic, graded attempts, the training records, and train →
evaluate → compare.

Used by recipe/curriculum_math.py, recipe/math_bootstrap.py, experiments/star_baseline_gsm8k.py,
experiments/self_correction_math.py and experiments/math500_seeded_mining.py.

* :class:`MathMiningConfig` (PAPER.md §3 sampling constants) and :class:`MathSetup` (model,
  mining, training, evaluation, run place, built once from a script's flags:
  :func:`add_math_recipe_args`);
* pools: :func:`procedural_pool` (common/mathgen.py problems with a seed other than the
  evaluation set's 0), :func:`decontaminate` (exact text and 13-gram overlap against every
  evaluation set, :func:`evaluation_sets`; a report goes into each result.json);
* model-written problems: :func:`problem_prompt` asks for PROBLEM / EXPRESSION / ANSWER at a
  difficulty level, :func:`parse_problem` reads it and keeps it only when the bounded evaluator
  (common/arith.py, never ``eval``) gives the expression the stated integer answer (PAPER.md §4
  defect 11: this checks the problem's self-consistency, not that its text means the expression);
* :func:`solve_and_grade` samples attempts with the evaluation's own instruction and grades
  each with math-verify against the problem's answer (common.math_benchmarks.grade_sample);
* records (conversation records ``{"messages": [user, assistant]}``, loss on the assistant turn):
  :func:`solution_record`, :func:`repair_record` (wrong attempt shown, correct solution
  trained), :func:`correction_record` (wrong attempt + :data:`RECONSIDER` + correct solution);
* :func:`train_and_compare` trains with common.lora.train_adapter and compares base and adapter
  greedily on the evaluation benchmark (common.math_eval).
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

from common.results import InputError

RECONSIDER = "\n\nWait, that answer is wrong. Let me reconsider the problem.\n\n"
DECON_MAX_FRACTION = 0.5
LEVEL_WORDS = {1: ("2", "20"), 2: ("3", "50"), 3: ("4", "100"), 4: ("5", "500"), 5: ("6", "1000")}


@dataclass(frozen=True)
class MathMiningConfig:
    """Sampling constants of problem writing and solving (PAPER.md §3)."""
    gen_temperature: float = 0.9
    solve_temperature: float = 0.8
    top_p: float = 0.95
    max_new_tokens: int = 400
    attempts: int = 4
    seed: int = 0

    def __post_init__(self):
        if self.attempts < 1 or self.max_new_tokens < 1:
            raise InputError(f"--attempts and --max-new-tokens must be >= 1, got {self.attempts}, {self.max_new_tokens}")
        if min(self.gen_temperature, self.solve_temperature) <= 0 or not 0 < self.top_p <= 1:
            raise InputError("generation and solving temperatures must be > 0 and --top-p in (0, 1]")

    def params(self, temperature: float, n: int = 1, seed: int = 0):
        from common.sampling import SamplingParams
        return SamplingParams(n=n, temperature=temperature, top_p=self.top_p if temperature > 0 else 1.0,
                              max_new_tokens=self.max_new_tokens, seed=self.seed + seed)


def add_math_recipe_args(p, attempts: int = 4, pool: bool = False) -> None:
    """Model, mining, LoRA, evaluation and run flags of a math recipe; ``pool``: the procedural
    training pool's flags (--pool-seed, --pool-per-level)."""
    from common.cli import add_model_args, add_run_args
    from common.flags import add_config_flags
    from common.lora import add_lora_args
    from common.math_eval import add_math_eval_args
    add_model_args(p, adapter=False)
    d = MathMiningConfig(attempts=attempts)
    g = p.add_argument_group("problem writing and solving (defaults: PAPER.md §3)")
    add_config_flags(g, d, {"gen_temperature": "temperature of problem writing",
                            "solve_temperature": "temperature of solving attempts", "top_p": "nucleus truncation",
                            "max_new_tokens": "token budget of each problem and attempt",
                            "attempts": "solving attempts sampled per problem", "seed": "sampling seed"})
    if pool:
        g.add_argument("--pool-seed", type=int, default=1,
                       help="seed of the procedural training pool (common/mathgen.py); the evaluation set uses 0, "
                            "which is refused (default 1)")
        g.add_argument("--pool-per-level", type=int, default=20,
                       help="training problems per difficulty level 1-5 (default 20: 100 problems)")
        g.add_argument("--train-data", default=None,
                       help="training problems from a GSM8K-schema file (question, answer ending '#### n', e.g. GSM8K "
                            "train) instead of the procedural pool")
        g.add_argument("--limit-pool", type=int, default=None, help="only the first N training problems (quick runs)")
    add_lora_args(p, system_flag=False)
    p.set_defaults(system="")
    add_math_eval_args(p)
    add_run_args(p)


@dataclass(frozen=True)
class MathSetup:
    """A math recipe's configuration, built once from its flags."""
    model: object            # common.runtime.ModelConfig
    mining: MathMiningConfig
    train: object            # common.lora.TrainConfig
    spec: object             # common.math_eval.MathEvalSpec
    invocation: object       # common.evaluation.Invocation
    options: object          # common.cli.RunOptions (overwrite is the run's own)
    run_dir: Path
    resolved: object         # common.models.ResolvedModel

    @classmethod
    def from_args(cls, script: str, argv, args, default_name: str) -> "MathSetup":
        from common.cli import RunOptions
        from common.evaluation import Invocation
        from common.lora import TrainConfig
        from common.math_eval import MathEvalSpec
        from common.models import resolve_model
        from common.results import results_root
        from common.runtime import ModelConfig
        kw = {f.name: getattr(args, f.name) for f in dataclasses.fields(MathMiningConfig)}
        spec = MathEvalSpec.from_args(args)
        spec.tasks()                                     # a missing or bad evaluation file stops here
        return cls(ModelConfig.from_args(args), MathMiningConfig(**kw), TrainConfig.from_args(args),
                   spec, Invocation(script, argv, vars(args)),
                   dataclasses.replace(RunOptions.from_args(args), overwrite=False),
                   Path(args.out_dir or results_root()) / (args.run_name or default_name), resolve_model(args.model))

    def config(self, more: dict) -> dict:
        """The run's config.json (what must not change between invocations): model, mining,
        training, evaluation and the script's own settings ``more``."""
        import json
        return json.loads(json.dumps({"model": {"ref": self.resolved.ref, "file_sha256": self.resolved.file_sha256},
                                      "mining": dataclasses.asdict(self.mining), "training": self.train.to_dict(),
                                      "eval": self.spec.to_config(), **more}))


@dataclass
class MathRun:
    """What the stages of one math recipe run share: its directory, stage book, model slot
    (the base model mines), settings and progress flag."""
    dir: Path
    book: object
    slot: object
    setup: MathSetup

    @classmethod
    def open(cls, setup: MathSetup, config: dict, overwrite: bool) -> "MathRun":
        from common.compare import ModelSlot
        from common.rundir import StageBook, prepare_run_dir
        prepare_run_dir(setup.run_dir, config, overwrite)
        return cls(setup.run_dir, StageBook(setup.run_dir), ModelSlot(setup.resolved, setup.model), setup)

    def get(self):
        return self.slot.get(None)

    @property
    def progress(self) -> bool:
        return self.setup.options.progress


# --------------------------------------------------------------------------------------------
# Pools and decontamination
# --------------------------------------------------------------------------------------------


def procedural_pool(seed: int, per_level: int) -> list[dict]:
    """Training problems from common/mathgen.py with ``seed`` (never the evaluation set's),
    ids ``pool-s<seed>/L<level>/<i>``."""
    from common.mathgen import DEFAULT_SEED, generate
    if seed == DEFAULT_SEED:
        raise InputError(f"--pool-seed {seed} is the seed of the evaluation set data/procedural_math.jsonl; "
                         f"choose another")
    if per_level < 1:
        raise InputError(f"--pool-per-level must be >= 1, got {per_level}")
    return [{**t, "task_id": t["task_id"].replace("procedural/", f"pool-s{seed}/"), "golds": [t["answer"]],
             "answer_kind": "integer"} for t in generate(seed, per_level)]


def evaluation_sets(spec, skip: tuple[str, ...] = ()) -> dict[str, list[dict]]:
    """Every evaluation set a training pool must stay clear of: the procedural set and CHAMP
    (offline, always) and the run's evaluation benchmark (all of its tasks, not only the
    evaluated ones); ``skip``: sources left out (a mining source may not be checked against
    itself; see :func:`decontaminate`'s ``extra``)."""
    from common.math_benchmarks import load_math_tasks
    family = {"champ_int": "champ"}
    skipped = {family.get(s, s) for s in skip}
    out = {}
    for name, path in (("procedural", None), ("champ", None), (spec.bench, spec.data_path)):
        if family.get(name, name) not in skipped and family.get(name, name) not in out:
            out[name] = load_math_tasks(name, path=path)[0]
    return out


def _norm(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def decontaminate(items: list[dict], against: dict[str, list[dict]], max_fraction: float = DECON_MAX_FRACTION
                  ) -> tuple[list[dict], dict]:
    """(items kept, report): an item (``problem``) is dropped when its normalised text equals an
    evaluation problem's, or when more than ``max_fraction`` of its 13-grams occur in one
    evaluation set (procedural problems share template phrases, so any single shared 13-gram
    is reported but not dropped). The report counts, per evaluation set, exact matches, items
    sharing any 13-gram, items dropped and the largest overlap fraction."""
    from common.decontam import benchmark_index, decontamination_report
    texts = {it["task_id"]: it["problem"] for it in items}
    drop, per_set = set(), {}
    for name, tasks in against.items():
        exact = {_norm(t["problem"]) for t in tasks}
        hits = sorted(i for i, x in texts.items() if _norm(x) in exact)
        idx = benchmark_index([{"task_id": t["task_id"], "problem": t["problem"]} for t in tasks], fields=("problem",))
        any_ = decontamination_report(texts, idx)
        over = decontamination_report(texts, idx, max_fraction=max_fraction)
        per_set[name] = {"n_eval_tasks": len(tasks), "exact": len(hits), "any_13gram": any_["n_flagged"],
                         "over_fraction": over["n_flagged"], "max_overlap_fraction": any_["max_overlap_fraction"],
                         "dropped_ids": sorted(set(hits) | set(over["flagged_ids"]))}
        drop |= set(per_set[name]["dropped_ids"])
    kept = [it for it in items if it["task_id"] not in drop]
    return kept, {"rule": f"drop exact text matches and items with > {max_fraction:g} of their 13-grams in one "
                          f"evaluation set", "n_checked": len(items), "n_dropped": len(drop), "n_kept": len(kept),
                  "against": per_set}


@dataclass(frozen=True)
class PoolSpec:
    """The procedural training pool (``seed`` never the evaluation set's), or a GSM8K-schema file
    (``train_data``), its first ``limit`` problems; checked before anything is written."""
    seed: int = 1
    per_level: int = 20
    train_data: str | None = None
    limit: int | None = None

    def __post_init__(self):
        from common.mathgen import DEFAULT_SEED
        if self.seed == DEFAULT_SEED and not self.train_data:
            raise InputError(f"--pool-seed {self.seed} is the seed of the evaluation set data/procedural_math.jsonl; "
                             f"choose another")
        if self.per_level < 1 or (self.limit is not None and self.limit < 1):
            raise InputError("--pool-per-level and --limit-pool must be >= 1")
        self.items()                                     # a missing or bad --train-data stops here

    @classmethod
    def from_args(cls, args) -> "PoolSpec":
        return cls(args.pool_seed, args.pool_per_level, args.train_data, args.limit_pool)

    def items(self) -> list[dict]:
        """The pool's problems before decontamination."""
        if self.train_data:
            from common.math_benchmarks import load_math_tasks
            items = [{**t, "task_id": "train/" + t["task_id"]} for t in load_math_tasks("gsm8k", path=self.train_data)[0]]
        else:
            items = procedural_pool(self.seed, self.per_level)
        return items[:self.limit] if self.limit is not None else items

    def source(self) -> str:
        return self.train_data or f"common/mathgen.py seed {self.seed}"


def training_pool(run: MathRun, pool: PoolSpec) -> tuple[list[dict], dict]:
    """Stage ``pool`` (pool.jsonl): ``pool``'s problems decontaminated against every evaluation
    set; (problems, decontamination report)."""
    def make():
        kept, report = disjoint_pool(pool.items(), run.setup.spec)
        return kept, {"source": pool.source(), "problems": len(kept),
                      "decontamination": report}
    rows = run.book.run("pool", run.dir / "pool.jsonl", make)
    return rows, run.book.done("pool")["counts"]["decontamination"]


def disjoint_pool(items: list[dict], spec, skip: tuple[str, ...] = ()) -> tuple[list[dict], dict]:
    """:func:`decontaminate` against :func:`evaluation_sets`; an empty result is an InputError."""
    kept, report = decontaminate(items, evaluation_sets(spec, skip))
    if items and not kept:
        raise InputError("no training problem is left after decontamination against the evaluation sets; "
                         "use another source or evaluation benchmark")
    return kept, report


# --------------------------------------------------------------------------------------------
# Model-written problems
# --------------------------------------------------------------------------------------------


def problem_prompt(level: int | None = None) -> str:
    """The request for one new problem (``level`` 1-5: steps and number size; None: any)."""
    size = ""
    if level is not None:
        steps, top = LEVEL_WORDS[level]
        size = f" It should take {steps} steps of arithmetic to solve and use whole numbers up to {top}."
    return ("Write one new math word problem with a whole-number answer." + size +
            " Reply in exactly this format and nothing else:\nPROBLEM: <the problem>\n"
            "EXPRESSION: <one arithmetic expression with + - * / and parentheses that computes the answer>\n"
            "ANSWER: <the integer answer>")


_FIELD = re.compile(r"^\W*(PROBLEM|EXPRESSION|ANSWER)\W*:\s*(.*)$", re.I)


def parse_problem(text: str) -> tuple[dict | None, str]:
    """(problem, reason) of a model reply: ``{"problem", "expression", "answer"}`` when the three
    fields are there, the answer is an integer and the bounded evaluator gives the expression
    exactly that value; else (None, why not)."""
    from common.answers import clean_number_text
    from common.arith import ExpressionError, evaluate
    fields, cur = {}, None
    for line in text.splitlines():
        m = _FIELD.match(line)
        if m:
            cur = m.group(1).lower()
            if cur in fields:
                break
            fields[cur] = m.group(2).strip().strip("*").strip()
        elif cur == "problem" and line.strip() and "expression" not in fields:
            fields[cur] += " " + line.strip()
    if not all(fields.get(k) for k in ("problem", "expression", "answer")):
        return None, "format"
    ans = clean_number_text(fields["answer"].split()[0])
    if not re.fullmatch(r"-?\d+", ans):
        return None, "answer_not_integer"
    try:
        value = evaluate(fields["expression"].rstrip("."))
    except ExpressionError:
        return None, "expression_unreadable"
    if value != int(ans):
        return None, "expression_mismatch"
    if len(fields["problem"]) < 20:
        return None, "too_short"
    return {"problem": fields["problem"], "expression": fields["expression"], "answer": str(int(ans))}, "ok"


def write_problems(run: MathRun, key: str, n: int, level: int | None, seed: int) -> tuple[list[dict], dict]:
    """Stage: ``n`` problems written by the model at ``level`` (T=gen_temperature), parsed,
    verified by their arithmetic, deduplicated and decontaminated; (problems, counts)."""
    from collections import Counter
    from common.mining import chat, generate_into
    cfg = run.setup.mining
    items = [{"key": f"{key}-p{i}", "level": level, "messages": chat(None, problem_prompt(level))} for i in range(n)]
    rows = generate_into(run.dir / key / "written.jsonl", run.get, items, cfg.params(cfg.gen_temperature, seed=seed),
                         desc="problems", progress=run.progress)
    reasons, problems, seen = Counter(), [], set()
    for r in rows:
        p, why = parse_problem(r["samples"][0]["text"])
        if p and _norm(p["problem"]) in seen:
            p, why = None, "duplicate"
        reasons[why] += 1
        if p:
            seen.add(_norm(p["problem"]))
            problems.append({"task_id": r["key"], "level": level, **p, "golds": [p["answer"]], "answer_kind": "integer"})
    kept, report = decontaminate(problems, evaluation_sets(run.setup.spec))
    return kept, {"requested": n, **{f"parse_{k}": v for k, v in reasons.items()}, "verified": len(problems),
                  "kept": len(kept), "decontamination": report}


# --------------------------------------------------------------------------------------------
# Solving, grading, records
# --------------------------------------------------------------------------------------------


def solve_and_grade(run: MathRun, path: Path, problems: list[dict], bench: str = "procedural",
                    greedy: bool = False) -> list[dict]:
    """``attempts`` sampled solutions per problem (plus a greedy one first when ``greedy``)
    under ``bench``'s instruction, each graded against the problem's gold answer; one row per
    problem: ``{task_id, attempts: [{text, answer, passed, strict_passed, finish_reason}], n_pass}``."""
    from common.answer_check import default_checker
    from common.math_benchmarks import MATH_BENCHMARKS, grade_sample
    from common.mining import chat, generate_into
    from common.tts_math import math_bench
    cfg, template = run.setup.mining, math_bench(bench).template
    items = [{"key": p["task_id"], "messages": chat(None, template.format(problem=p["problem"]))} for p in problems]
    rows = []
    if greedy:
        rows.append(generate_into(path.with_name(path.stem + "_greedy.jsonl"), run.get, items, cfg.params(0.0),
                                  desc="greedy", progress=run.progress))
    rows.append(generate_into(path, run.get, items, cfg.params(cfg.solve_temperature, n=cfg.attempts, seed=11),
                              desc="attempts", progress=run.progress))
    out = []
    for i, p in enumerate(problems):
        samples = [s for r in rows for s in r[i]["samples"]]
        graded = [grade_sample(s["text"], p, MATH_BENCHMARKS[bench].style, default_checker(),
                               finish_reason=s.get("finish_reason")) for s in samples]
        atts = [{"text": s["text"], "answer": g["answer"], "passed": g["passed"], "strict_passed": g["strict_passed"],
                 "finish_reason": s.get("finish_reason")} for s, g in zip(samples, graded)]
        out.append({"task_id": p["task_id"], "attempts": atts, "n_pass": sum(a["passed"] for a in atts)})
    return out


def solve_stage(run: MathRun, problems: list[dict], bench: str = "procedural") -> list[dict]:
    """Stage ``solve`` (attempts.jsonl; raw samples in samples.jsonl): :func:`solve_and_grade`."""
    def solve():
        rows = solve_and_grade(run, run.dir / "samples.jsonl", problems, bench)
        return rows, {"problems": len(rows), "solved": sum(r["n_pass"] > 0 for r in rows),
                      "all_correct": sum(r["n_pass"] == len(r["attempts"]) for r in rows),
                      "correct_attempts": sum(r["n_pass"] for r in rows)}
    return run.book.run("solve", run.dir / "attempts.jsonl", solve)


def user_turn(problem: dict, bench: str = "procedural") -> dict:
    from common.tts_math import math_bench
    return {"role": "user", "content": math_bench(bench).template.format(problem=problem["problem"])}


def solution_record(problem: dict, text: str, bench: str = "procedural", **meta) -> dict:
    """The problem under the evaluation's instruction, answered by a correct solution."""
    return {"messages": [user_turn(problem, bench), {"role": "assistant", "content": text.strip()}],
            "task_id": problem["task_id"], "kind": "solution", **meta}


def repair_record(problem: dict, wrong: dict, right: str, bench: str = "procedural", **meta) -> dict:
    """The math repair pair: the wrong attempt and its answer shown, the correct solution trained."""
    user = user_turn(problem, bench)["content"] + (f"\n\nMy attempt:\n{wrong['text'].strip()}\n\nMy final answer "
                                                   f"{wrong['answer']} is wrong. Solve the problem again.")
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": right.strip()}],
            "task_id": problem["task_id"], "kind": "repair", **meta}


def correction_record(problem: dict, wrong: str, right: str, bench: str = "procedural", **meta) -> dict:
    """Self-correction trace: wrong attempt + :data:`RECONSIDER` + correct solution, one turn."""
    return {"messages": [user_turn(problem, bench),
                         {"role": "assistant", "content": wrong.strip() + RECONSIDER + right.strip()}],
            "task_id": problem["task_id"], "kind": "correction", **meta}


def first_correct(row: dict) -> dict | None:
    """The first attempt with the right final answer that ended on its own (a chain cut by the
    token budget is never a training target)."""
    return next((a for a in row["attempts"] if a["passed"] and a.get("finish_reason") != "length"), None)


def solution_records(problems: list[dict], solved: list[dict]) -> list[dict]:
    """The first usable correct attempt of each problem (:func:`first_correct`) as a record."""
    by_id = {p["task_id"]: p for p in problems}
    return [solution_record(by_id[r["task_id"]], first_correct(r)["text"]) for r in solved if first_correct(r)]


def first_wrong(row: dict) -> dict | None:
    return next((a for a in row["attempts"] if not a["passed"]), None)


# --------------------------------------------------------------------------------------------
# Train, evaluate, compare, record
# --------------------------------------------------------------------------------------------


def records_info(path: Path, records: list[dict]) -> dict:
    """What a result records about a training file: path, sha256, count, kinds."""
    from collections import Counter
    from common.results import file_sha256, write_jsonl_atomic
    write_jsonl_atomic(path, records)
    return {"path": str(path), "sha256": file_sha256(path), "count": len(records),
            "kinds": dict(Counter(r.get("kind") for r in records))}


def train_and_compare(run: MathRun, records: list[dict], name: str, extra: dict | None = None) -> dict:
    """Train ``run.dir/adapter`` on ``records`` (skipped when already trained; nothing to train
    on: no adapter), then evaluate base and adapter greedily on the evaluation benchmark and
    compare them per task. Returns {"records", "training", "evaluation"}."""
    from common.compare import summarize_training
    from common.lora import train_adapter
    from common.math_eval import evaluate_and_compare_math
    s = run.setup
    info = records_info(run.dir / "train.jsonl", records)
    if not records:
        return {"records": info, "training": {"skipped": True, "reason": "no training records"}, "evaluation": {}}
    run.slot.release()
    tres = train_adapter(run.slot.resolved, records, info, s.train, run.dir / "adapter", s.invocation, s.options,
                         extra=extra)
    evaluation = evaluate_and_compare_math(run.slot, {name: str(run.dir / "adapter")}, run.dir / "eval", s.spec, s)
    return {"records": info, "training": summarize_training(tres), "evaluation": evaluation}


def write_result(run: MathRun, config: dict, body: dict, t_start: float) -> dict:
    """results/<run>/result.json: provenance, config, model, stages, ``body``, timings."""
    import time
    from common.results import write_json_atomic
    result = {**run.setup.invocation.provenance(), "run_dir": str(run.dir), "config": config,
              "model": run.slot.resolved.provenance(),
              "stages": run.book.data, **body, "timings": {"total_s_this_invocation": round(time.time() - t_start, 1)}}
    write_json_atomic(run.dir / "result.json", result)
    return result


def print_result(title: str, res: dict) -> None:
    from common.math_eval import print_math_comparison
    print(f"\n{title} · {res['model']['ref']} · {res['run_dir']}")
    print(f"  training records: {res['records']['count']} {res['records'].get('kinds', {})}")
    if res.get("evaluation"):
        print_math_comparison("evaluation (greedy, paired per task)", res["evaluation"])
    else:
        print("  nothing to train on: no adapter, no comparison")
