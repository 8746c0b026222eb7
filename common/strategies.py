"""Prompt strategies for code generation (seed 000 §8.3): each is a render + post-process pair
that plugs into :func:`common.evaluation.evaluate_code` through its ``render``,
``to_completion`` and ``post_generate`` hooks, on top of a prompt protocol.

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

    def sampling(self, args, logprobs: bool = True):
        """SamplingParams from the shared sampling flags, with this strategy's stops/budget."""
        from common.sampling import SamplingParams
        return SamplingParams(n=args.n_samples, temperature=args.temperature, top_p=args.top_p,
                              top_k=args.top_k, max_new_tokens=args.max_new_tokens or self.max_new_tokens,
                              stop=self.stop, seed=args.seed, logprobs=logprobs)

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

    def post_generate(self, *, get_llm, params, run_dir, workers=None, timeout=None, progress=True):
        """The hook for evaluate_code's ``post_generate`` (reflexion only; else None)."""
        if self.name != "reflexion":
            return None
        return Reflexion(self, get_llm=get_llm, params=params, run_dir=Path(run_dir), workers=workers,
                         timeout=timeout, progress=progress)


def get_strategy(name: str, protocol, exemplars_path: str | None = None) -> Strategy:
    """The strategy called ``name`` (aliases accepted) on ``protocol``."""
    key = resolve_strategy_name(name)
    exemplars = load_exemplars(exemplars_path) if key == "few-shot" else ()
    return Strategy(key, protocol, exemplars,
                    str(exemplars_path or DEFAULT_EXEMPLARS) if key == "few-shot" else None)


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


class Reflexion:
    """evaluate_code ``post_generate`` hook: check each answer on the prompt's visible examples,
    regenerate the failing ones once. Resumable: decisions and second answers are appended to
    ``<run_dir>/reflexion.jsonl`` and reused on a rerun."""

    def __init__(self, strategy: Strategy, *, get_llm, params, run_dir: Path, workers=None,
                 timeout=None, progress=True):
        self.strategy = strategy
        self.get_llm = get_llm
        self.params = params
        self.run_dir = run_dir
        self.workers = workers
        self.timeout = timeout
        self.progress = progress
        self.counts: dict[str, int] = {}

    def _first_code(self, row: dict, task: dict) -> str:
        from common.prompts import extract_code
        proto = self.strategy.protocol
        text = proto.prefill + (row.get("raw") or "") + ("\n```" if proto.prefill else "")
        code, _ = extract_code(text, task["entry_point"])
        return code or (row.get("completion") or "").strip("\n")

    def __call__(self, rows: list[dict], tasks_by_id: dict) -> list[dict]:
        from common.results import JsonlLog
        from common.sandbox import Job, SandboxPool
        from common.selection import parse_prompt_examples
        path = self.run_dir / "reflexion.jsonl"
        with JsonlLog(path) as lg:
            done = {(r["task_id"], r["sample_index"]): r for r in lg.rows}
            todo = [r for r in rows if (r["task_id"], r["sample_index"]) not in done]
            checks, jobs = [], []
            for r in todo:
                task = tasks_by_id[r["task_id"]]
                exs = parse_prompt_examples(task["prompt"], task["entry_point"])
                if not exs:
                    rec = {"task_id": r["task_id"], "sample_index": r["sample_index"],
                           "reflexion": "no_examples"}
                    lg.append(rec)
                    done[(r["task_id"], r["sample_index"])] = rec
                    continue
                checks.append((r, task, exs))
                jobs.append(Job.outputs(task["prompt"] + (r.get("completion") or ""), task["entry_point"],
                                        [e.args for e in exs]))
            regen = []
            if jobs:
                with SandboxPool(workers=self.workers, **({"timeout": self.timeout} if self.timeout else {})) as pool:
                    results = pool.run_many(jobs, progress=self.progress, desc="reflexion: visible examples")
                for (r, task, exs), res in zip(checks, results):
                    fb = example_feedback(task["entry_point"], exs, res.status, res.outputs, res.error)
                    if not fb:
                        rec = {"task_id": r["task_id"], "sample_index": r["sample_index"],
                               "reflexion": "kept_passed"}
                        lg.append(rec)
                        done[(r["task_id"], r["sample_index"])] = rec
                    else:
                        regen.append((r, task, fb[:MAX_FEEDBACK_LINES]))
            if regen:
                self._regenerate(regen, lg, done)
        out = []
        self.counts = {}
        for r in rows:
            rec = done[(r["task_id"], r["sample_index"])]
            self.counts[rec["reflexion"]] = self.counts.get(rec["reflexion"], 0) + 1
            r = dict(r, reflexion=rec["reflexion"])
            if rec["reflexion"] == "regenerated":
                r.update(first_completion=rec["first_completion"], first_raw=rec["first_raw"],
                         first_mean_logprob=rec["first_mean_logprob"], feedback=rec["feedback"],
                         completion=rec["completion"], raw=rec["raw"], extraction=rec["extraction"],
                         finish_reason=rec["finish_reason"], n_tokens=rec["n_tokens"],
                         sum_logprob=rec["sum_logprob"], mean_logprob=rec["mean_logprob"])
            out.append(r)
        return out

    def _regenerate(self, regen, lg, done) -> None:
        from common.prompts import program_completion
        llm = self.get_llm()
        proto = self.strategy.protocol
        prompts = []
        for r, task, fb in regen:
            msgs = proto.messages(task) + [
                {"role": "assistant", "content": f"```python\n{self._first_code(r, task)}\n```"},
                {"role": "user", "content": REFLECT_TEMPLATE.format(feedback="\n".join(fb))}]
            prompts.append(llm.chat_prompt(msgs))
        params = dataclasses.replace(self.params, n=1, stop=(), seed=self.params.seed + 1,
                                     max_new_tokens=max(self.params.max_new_tokens, PLAN_MAX_NEW_TOKENS))

        def on_done(i, comps):
            r, task, fb = regen[i]
            c = comps[0]
            completion, how = program_completion(task, c.text, task["entry_point"])
            rec = {"task_id": r["task_id"], "sample_index": r["sample_index"], "reflexion": "regenerated",
                   "feedback": fb, "first_completion": r.get("completion"), "first_raw": r.get("raw"),
                   "first_mean_logprob": r.get("mean_logprob"), "raw": c.text, "completion": completion, "extraction": how,
                   "finish_reason": c.finish_reason, "n_tokens": c.n_tokens,
                   "sum_logprob": c.sum_logprob, "mean_logprob": c.mean_logprob}
            lg.append(rec)
            done[(r["task_id"], r["sample_index"])] = rec

        log.info("reflexion: regenerating %d answers that fail a visible example", len(prompts))
        llm.generate(prompts, params, on_done=on_done, progress=self.progress, desc="reflexion: regenerate")

    def summary(self) -> dict:
        return {"strategy": "reflexion", "counts": dict(self.counts)}


def strategy_hooks(strategy: Strategy, *, get_llm, params, run_dir, workers=None, timeout=None,
                   progress=True) -> dict:
    """Keyword arguments for :func:`common.evaluation.evaluate_code` that apply a strategy."""
    hooks = {"protocol_name": strategy.protocol_name}
    if strategy.name in ("scot", "cgo", "few-shot"):  # standard/reflexion first rounds: the protocol's own
        hooks.update(render=strategy.render, to_completion=strategy.to_completion)
    hook = strategy.post_generate(get_llm=get_llm, params=params, run_dir=run_dir, workers=workers,
                                  timeout=timeout, progress=progress)
    if hook is not None:
        hooks["post_generate"] = hook
    return hooks

