"""Prompt strategies for code generation (seed 000 §8.3): each is a render + post-process pair
that plugs into :func:`common.evaluation.evaluate_code` through the ``render``,
``to_completion`` and ``post_generate`` hooks of its :class:`common.evaluation.EvalHooks`, on
top of a prompt protocol (:func:`strategy_job` applies one to an evaluation). Sampling settings
come from :func:`common.cli.sampling_from_args` with the strategy in the protocol's place (its
``stop`` and ``max_new_tokens``).

=============  ==============================================================================
strategy       what the model sees / what happens to its answer
=============  ==============================================================================
``standard``   the protocol unchanged (baseline)
``scot``       structured chain-of-thought (Li et al. 2023): first a plan written only with
               sequence, branch and loop structures, then the function in one fenced block
``few-shot``   3 solved exemplars before the task (``data/prompt_exemplars.jsonl``: small
               original problems written for this repository, disjoint from HumanEval/MBPP);
               chat protocols get them as earlier user/assistant turns, ``raw`` as code
``cgo``        goal-oriented decomposition (after "Chain of Grounded Objectives"): first the
               objectives the function must meet (return value, input conditions, edge
               cases), one line each, then the function
``reflexion``  generate as ``standard``; run the prompt's visible examples on the answer in the
               sandbox; when one fails, show the failures and ask the model to reflect and
               regenerate (one round, same sampling settings, a fresh seed stream)
=============  ==============================================================================

Aliases (seed 000): default -> standard, structured-cot -> scot, fewshot -> few-shot,
code-gen-opt -> cgo, reflect -> reflexion.

Only ``standard`` and ``few-shot`` work with the non-chat ``raw`` protocol; the others need a
chat protocol and raise :class:`common.results.InputError` otherwise. ``scot``/``cgo``/
``reflexion`` answers are taken with :func:`common.prompts.program_completion` (the fenced block
that defines the entry point, prompt kept) and generate without the protocol's stop strings
(a plan may contain fences of its own), with 768 new tokens unless ``--max-new-tokens`` says
otherwise. Fallbacks in ``reflexion`` (named in each sample's ``reflexion`` field and counted):
``no_examples`` (the prompt has no parseable example: the first answer is kept) and
``kept_passed`` (the first answer already satisfies every visible example).
"""
from __future__ import annotations

import collections
import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

from common.results import REPO_ROOT, InputError

log = logging.getLogger(__name__)

STRATEGIES = ("standard", "scot", "few-shot", "cgo", "reflexion")
ALIASES = {"default": "standard", "structured-cot": "scot", "fewshot": "few-shot",
           "code-gen-opt": "cgo", "reflect": "reflexion"}
CHAT_ONLY = ("scot", "cgo", "reflexion")
PLAN_MAX_NEW_TOKENS = 768
DEFAULT_EXEMPLARS = REPO_ROOT / "data" / "prompt_exemplars.jsonl"
EXEMPLAR_FIELDS = ("id", "entry_point", "prompt", "solution")

SCOT_TEMPLATE = (
    "```python\n{prompt}\n```\n\n"
    "Before writing code, write a structured plan for this function using only three program "
    "structures:\n"
    "- sequence: steps done one after another\n"
    "- branch: each if/else decision and its condition\n"
    "- loop: what is iterated over and what each iteration does\n"
    "Start the plan with the input and the output. Then write the complete Python function in "
    "one ```python block.")
CGO_TEMPLATE = (
    "```python\n{prompt}\n```\n\n"
    "First list the objectives this function must meet, one short line each: what it returns, "
    "the conditions on each input, and the edge cases (empty input, zero, negative numbers, "
    "ties, duplicates). Then write the complete Python function that meets every objective, in "
    "one ```python block.")
REFLECT_TEMPLATE = (
    "Running the examples from the docstring on your code failed:\n{feedback}\n\n"
    "Reflect in two or three sentences on what is wrong, then write the corrected complete "
    "function in one ```python block.")
MAX_FEEDBACK_LINES = 4


def resolve_strategy_name(name: str) -> str:
    key = ALIASES.get(name, name)
    if key not in STRATEGIES:
        raise InputError(f"unknown prompt strategy {name!r}; choose from {', '.join(STRATEGIES)} "
                         f"(aliases: {', '.join(ALIASES)})")
    return key


def load_exemplars(path: str | Path | None = None) -> tuple[dict, ...]:
    """Few-shot exemplars: JSONL rows with id, entry_point, prompt (signature + docstring) and
    solution (the body). A missing field raises InputError naming the row."""
    from common.results import read_jsonl
    p = Path(path) if path else DEFAULT_EXEMPLARS
    rows = read_jsonl(p, "exemplars file")
    if not rows:
        raise InputError(f"exemplars file {p} is empty")
    for i, r in enumerate(rows, 1):
        missing = [k for k in EXEMPLAR_FIELDS if not isinstance(r.get(k), str)]
        if missing:
            raise InputError(f"exemplars file {p}, row {i}: missing field(s) {', '.join(missing)}")
    return tuple(rows)


@dataclass(frozen=True)
class Strategy:
    """A prompt strategy on top of a protocol. ``render(task, llm)`` and
    ``to_completion(task, text)`` have evaluate_code's hook signatures."""
    name: str
    protocol: object                      # common.prompts.Protocol
    exemplars: tuple = ()
    exemplars_path: str | None = None

    def __post_init__(self):
        if self.name not in STRATEGIES:
            raise InputError(f"unknown prompt strategy {self.name!r}")
        if self.name in CHAT_ONLY and not self.protocol.chat:
            raise InputError(f"prompt strategy {self.name!r} needs a chat protocol; "
                             f"{self.protocol.name!r} is plain completion (use standard or few-shot)")

    # -- naming and sampling ---------------------------------------------------------------
    @property
    def protocol_name(self) -> str:
        """What results record as the protocol: ``qwen-official`` or ``qwen-official+scot``."""
        return self.protocol.name if self.name == "standard" else f"{self.protocol.name}+{self.name}"

    @property
    def stop(self) -> tuple[str, ...]:
        return () if self.name in ("scot", "cgo") else tuple(self.protocol.stop)

    @property
    def max_new_tokens(self) -> int:
        return max(self.protocol.max_new_tokens, PLAN_MAX_NEW_TOKENS) \
            if self.name in ("scot", "cgo") else self.protocol.max_new_tokens

    def to_dict(self) -> dict:
        d = {"name": self.name, "protocol": self.protocol.name, "stop": list(self.stop)}
        if self.name == "few-shot":
            d["exemplars"] = [e["id"] for e in self.exemplars]
            d["exemplars_path"] = self.exemplars_path
        if self.name in ("scot", "cgo"):
            d["template"] = SCOT_TEMPLATE if self.name == "scot" else CGO_TEMPLATE
        if self.name == "reflexion":
            d["reflect_template"] = REFLECT_TEMPLATE
        return d

    # -- render ----------------------------------------------------------------------------
    def messages(self, task: dict) -> list[dict]:
        """Chat messages for a task (chat protocols only)."""
        proto = self.protocol
        system = [{"role": "system", "content": proto.system}] if proto.system else []
        if self.name == "scot":
            return system + [{"role": "user", "content": SCOT_TEMPLATE.format(prompt=task["prompt"].rstrip())}]
        if self.name == "cgo":
            return system + [{"role": "user", "content": CGO_TEMPLATE.format(prompt=task["prompt"].rstrip())}]
        if self.name == "few-shot":
            turns = []
            for ex in self.exemplars:
                user = [m for m in proto.messages({"prompt": ex["prompt"]}) if m["role"] == "user"]
                code = (ex["prompt"] + ex["solution"]).strip("\n")
                turns += user + [{"role": "assistant", "content": f"```python\n{code}\n```"}]
            return system + turns + [m for m in proto.messages(task) if m["role"] == "user"]
        return proto.messages(task)

    def render(self, task: dict, llm) -> str:
        proto = self.protocol
        if self.name in ("standard", "reflexion"):
            return proto.render(task, llm)
        if self.name == "few-shot" and not proto.chat:
            shots = "\n\n\n".join((ex["prompt"] + ex["solution"]).strip("\n") for ex in self.exemplars)
            return shots + "\n\n\n" + task["prompt"]
        prefill = proto.prefill if self.name == "few-shot" else ""
        return llm.chat_prompt(self.messages(task), prefill)

    # -- post-process ----------------------------------------------------------------------
    def to_completion(self, task: dict, text: str) -> tuple[str, str]:
        from common.prompts import program_completion
        if self.name in ("scot", "cgo"):
            return program_completion(task, text, task["entry_point"])
        return self.protocol.to_completion(task, text)

    def post_generate(self, job):
        """The ``post_generate`` hook of the evaluation ``job`` (:class:`common.evaluation.EvalJob`;
        reflexion only, else None)."""
        return Reflexion(self, job) if self.name == "reflexion" else None


def get_strategy(name: str, protocol, exemplars_path: str | None = None) -> Strategy:
    """The strategy called ``name`` (aliases accepted) on ``protocol``."""
    key = resolve_strategy_name(name)
    exemplars = load_exemplars(exemplars_path) if key == "few-shot" else ()
    return Strategy(key, protocol, exemplars,
                    str(exemplars_path or DEFAULT_EXEMPLARS) if key == "few-shot" else None)


def strategy_from_args(args) -> Strategy:
    """The strategy of ``--prompt-strategy``/``--exemplars`` on ``--protocol``."""
    from common.prompts import get_protocol
    return get_strategy(args.prompt_strategy, get_protocol(args.protocol), args.exemplars)


def add_strategy_args(p) -> None:
    """``--prompt-strategy`` and ``--exemplars`` (one definition for every script)."""
    g = p.add_argument_group("prompt strategy")
    g.add_argument("--prompt-strategy", default="standard",
                   help="how the task is put to the model: standard (the protocol as is), scot "
                        "(structured chain-of-thought plan, then code), few-shot (3 original "
                        "solved exemplars first), cgo (objectives first, then code), reflexion "
                        "(run the prompt's examples, reflect on failures, regenerate once); "
                        "aliases " + ", ".join(f"{a}={b}" for a, b in ALIASES.items())
                        + " (default standard)")
    g.add_argument("--exemplars", default=None,
                   help=f"few-shot exemplars JSONL (fields {', '.join(EXEMPLAR_FIELDS)}; default "
                        f"data/prompt_exemplars.jsonl)")


# --------------------------------------------------------------------------------------------
# Reflexion: visible-example feedback and one regeneration round
# --------------------------------------------------------------------------------------------


def example_feedback(entry_point: str, examples, status: str, outputs, error: str = "") -> list[str]:
    """Lines describing which visible examples failed (empty list = all hold). Pure."""
    from common.selection import example_holds
    if status != "passed" or outputs is None:
        last = error.strip().splitlines()[-1] if error.strip() else status
        return [f"the code did not run ({status}): {last}"]
    lines = []
    for ex, out in zip(examples, outputs):
        if example_holds(out, ex):
            continue
        call = f"{entry_point}{ex.args if ex.args.startswith('(') else '(' + ex.args + ')'}"
        if call.endswith(",)"):
            call = call[:-2] + ")"
        want = "a true value" if ex.check == "truthy" else "a false value" if ex.check == "falsy" \
            else repr(ex.expected)
        got = ("raised " + out[len("!raise "):]) if out.startswith("!raise ") else \
            ("stopped: " + out[1:]) if out.startswith("!") else f"returned {out}"
        lines.append(f"{call} {got}, expected {want}")
    return lines


@dataclass
class Reflexion:
    """evaluate_code ``post_generate`` hook: check each answer on the prompt's visible examples,
    regenerate the failing ones once. Resumable: decisions and second answers are appended to
    ``<job.run_dir>/reflexion.jsonl`` and reused on a rerun; the second answers are generated
    with :func:`common.generate.generate_missing`, seeded by their place among all the answers
    that needed one."""
    strategy: Strategy
    job: object                     # common.evaluation.EvalJob: model, sampling, run dir, sandbox
    counts: dict = dataclasses.field(default_factory=dict)

    def _first_code(self, row: dict, task: dict) -> str:
        from common.prompts import extract_code
        proto = self.strategy.protocol
        text = proto.prefill + (row.get("raw") or "") + ("\n```" if proto.prefill else "")
        code, _ = extract_code(text, task["entry_point"])
        return code or (row.get("completion") or "").strip("\n")

    def __call__(self, rows: list[dict], tasks_by_id: dict) -> list[dict]:
        from common.results import JsonlLog
        with JsonlLog(Path(self.job.run_dir) / "reflexion.jsonl") as lg:
            done = {_key(r): r for r in lg.rows}
            failing = self._check([r for r in rows if _key(r) not in done], tasks_by_id, lg)
            regen = [r for r in rows if _key(r) in failing or done.get(_key(r), {}).get("reflexion") == "regenerated"]
            self._regenerate([{"task_id": r["task_id"], "sample_index": r["sample_index"], "row": r,
                               "task": tasks_by_id[r["task_id"]], "feedback": failing.get(_key(r))} for r in regen], lg)
            done = {_key(r): r for r in lg.rows}
        self.counts = dict(collections.Counter(done[_key(r)]["reflexion"] for r in rows))
        return [_merged(r, done[_key(r)]) for r in rows]

    def _check(self, todo: list[dict], tasks_by_id: dict, lg) -> dict:
        """Run the answers in ``todo`` on their prompt's visible examples; log the ones kept
        (``no_examples``, ``kept_passed``) and return (task_id, sample_index) -> feedback lines
        of the failing ones."""
        from common.sandbox import Job, SandboxPool
        from common.selection import parse_prompt_examples
        checks, jobs = [], []
        for r in todo:
            task = tasks_by_id[r["task_id"]]
            exs = parse_prompt_examples(task["prompt"], task["entry_point"])
            if not exs:
                lg.append({"task_id": r["task_id"], "sample_index": r["sample_index"], "reflexion": "no_examples"})
                continue
            checks.append((r, task, exs))
            jobs.append(Job.outputs(task["prompt"] + (r.get("completion") or ""), task["entry_point"],
                                    [e.args for e in exs]))
        failing = {}
        if jobs:
            opts = self.job.options
            with SandboxPool(workers=opts.workers, **({"timeout": opts.timeout} if opts.timeout else {})) as pool:
                results = pool.run_many(jobs, progress=opts.progress, desc="reflexion: visible examples")
            for (r, task, exs), res in zip(checks, results):
                fb = example_feedback(task["entry_point"], exs, res.status, res.outputs, res.error)
                if fb:
                    failing[_key(r)] = fb[:MAX_FEEDBACK_LINES]
                else:
                    lg.append({"task_id": r["task_id"], "sample_index": r["sample_index"], "reflexion": "kept_passed"})
        return failing

    def _regenerate(self, items: list[dict], lg) -> None:
        """Second answers for ``items`` (one per failing answer) that ``lg`` does not hold yet."""
        from common.generate import GenerationPlan, completion_fields, generate_missing
        from common.prompts import program_completion
        proto = self.strategy.protocol

        def prompt(it, llm):
            return llm.chat_prompt(proto.messages(it["task"]) + [
                {"role": "assistant", "content": f"```python\n{self._first_code(it['row'], it['task'])}\n```"},
                {"role": "user", "content": REFLECT_TEMPLATE.format(feedback="\n".join(it["feedback"]))}])

        def rows(it, comps):
            r, c = it["row"], comps[0]
            completion, how = program_completion(it["task"], c.text, it["task"]["entry_point"])
            yield {"task_id": r["task_id"], "sample_index": r["sample_index"], "reflexion": "regenerated",
                   "feedback": it["feedback"], "first_completion": r.get("completion"), "first_raw": r.get("raw"),
                   "first_mean_logprob": r.get("mean_logprob"), "raw": c.text, "completion": completion,
                   "extraction": how, **completion_fields(c), "sum_logprob": c.sum_logprob,
                   "mean_logprob": c.mean_logprob}

        p = self.job.params
        params = dataclasses.replace(p, n=1, stop=(), seed=p.seed + 1,
                                     max_new_tokens=max(p.max_new_tokens, PLAN_MAX_NEW_TOKENS))
        plan = GenerationPlan(field=("task_id", "sample_index"), prompt=prompt, rows=rows, rows_per_item=1,
                              desc="reflexion: regenerate")
        generate_missing(lg, items, self.job.model.get_llm, params, plan, self.job.options.progress)

    def summary(self) -> dict:
        return {"strategy": "reflexion", "counts": dict(self.counts)}


REGENERATED_FIELDS = ("first_completion", "first_raw", "first_mean_logprob", "feedback", "completion", "raw",
                      "extraction", "finish_reason", "n_tokens", "sum_logprob", "mean_logprob")


def _key(row: dict) -> tuple:
    return row["task_id"], row["sample_index"]


def _merged(row: dict, rec: dict) -> dict:
    """A sample row with its reflexion decision (and second answer, when regenerated)."""
    r = dict(row, reflexion=rec["reflexion"])
    if rec["reflexion"] == "regenerated":
        r.update({k: rec[k] for k in REGENERATED_FIELDS})
    return r


def strategy_hooks(strategy: Strategy, job):
    """The :class:`common.evaluation.EvalHooks` that apply ``strategy`` to the evaluation ``job``."""
    from common.evaluation import EvalHooks
    own = strategy.name in ("scot", "cgo", "few-shot")  # standard/reflexion first rounds: the protocol's own
    return EvalHooks(render=strategy.render if own else None, to_completion=strategy.to_completion if own else None,
                     protocol_name=strategy.protocol_name, post_generate=strategy.post_generate(job))


def strategy_job(strategy: Strategy, job):
    """``job`` (an :class:`common.evaluation.EvalJob`) evaluated with ``strategy``: its protocol,
    its hooks, and the strategy recorded in result.json as ``prompt_strategy``."""
    job = dataclasses.replace(job, protocol=strategy.protocol, extra={"prompt_strategy": strategy.to_dict()})
    return dataclasses.replace(job, hooks=strategy_hooks(strategy, job))
