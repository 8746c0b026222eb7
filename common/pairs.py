"""Repair pairs and self-generated problems: schema, validation, prompts, parsing, dedup, decontamination.

Pure functions only (no model, no sandbox, no files except :func:`validate_pairs_file`).

The pair schema (one JSON object per line of a pairs file)
-----------------------------------------------------------
Required, each non-empty:

=============  =======================================================================
``signature``  what the solver was asked to implement: imports + ``def`` line(s) + docstring
``tests``      list of assert statements (strings, each parses as Python)
``broken``     the failing attempt (code as the model wrote it)
``error``      the sandbox's error for ``broken`` (short traceback)
``fixed``      a passing attempt; must parse as Python
=============  =======================================================================

Optional provenance (type-checked when present): ``problem_id`` (str), ``broken_index`` and
``fixed_index`` (int attempt indices; None/-1 when the code did not come from an attempt list),
``source`` (str: "self-mined", "self-repair", "corrupt-control", ...), ``model`` (str), ``seed``
(int). Extra fields are kept and ignored.

Prompts
-------
* :func:`repair_prompt` — the user turn of every training example, exactly PAPER.md §3;
  :func:`repair_answer` — the assistant turn ("```python\\n{fixed}\\n```").
* :func:`raw_markdown_text` — the fast-path plain-text format (repair prompt, blank line, answer).
* :data:`PROBLEM_PROMPT` / :data:`HARD_PROBLEM_PROMPT` — ask for one small problem in one block;
  :func:`variant_prompt` — the curriculum's harder/easier variant request.
* :func:`solver_prompt` — signature + docstring + tests only (our wording; PAPER.md gives none).

Problem parsing (:func:`parse_problem`) uses ``ast``; the solver-facing ``signature`` is rebuilt
from the function node with its body replaced by the docstring alone, so the reference body can
never reach the solver, whatever the docstring's length (PAPER.md §4 defect 1).

Fallbacks (named here, counted by callers): :func:`normalize_code` collapses whitespace when the
code does not parse; :func:`parse_problem` concatenates all python blocks when no single block
holds a function and two asserts, and reads unfenced text when there is no fence at all.
"""
from __future__ import annotations

import ast
import copy
import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from common.results import file_sha256

PAIR_FIELDS = ("signature", "tests", "broken", "error", "fixed")
PROVENANCE_FIELDS = ("problem_id", "broken_index", "fixed_index", "source", "model", "seed")

REPAIR_TEMPLATE = ("Implement: {signature}\n\nTests:\n{tests}\n\nMy attempt:\n```python\n{broken}\n```\n\n"
                   "Error:\n{error}\n\nFix and output the corrected code only.")
ANSWER_TEMPLATE = "```python\n{fixed}\n```"
SOLVER_TEMPLATE = "Implement: {signature}\n\nTests:\n{tests}\n\nOutput the complete function in a ```python block."

PROBLEM_PROMPT = (
    "Write one small, self-contained Python programming problem. Give a single function with a "
    "one-line docstring saying what it does, its implementation, and exactly 3 assert statements "
    "that call the function and check its results. Put everything in one ```python block and "
    "write nothing else.")
HARD_PROBLEM_PROMPT = (
    "Write one self-contained Python programming problem that needs a non-trivial algorithm "
    "(for example dynamic programming, recursion, graph search, two pointers, interval merging or "
    "parsing), not a one-liner. Give a single function with a one-line docstring saying what it "
    "does, its implementation, and exactly 3 assert statements that call the function and check "
    "its results. Put everything in one ```python block and write nothing else.")
VARIANT_TEMPLATE = (
    "Here is a Python programming problem with its solution and tests:\n```python\n{code}\n```\n\n"
    "Write a new problem that is a {direction} variant of it: {how}. Give a single function with a "
    "one-line docstring, its implementation, and exactly 3 assert statements that call the "
    "function. Put everything in one ```python block and write nothing else.")
_VARIANT_HOW = {
    "harder": "it should need more reasoning or a less obvious algorithm",
    "easier": "it should be simpler, with a shorter and more direct solution",
}


# --------------------------------------------------------------------------------------------
# Pair schema and validation
# --------------------------------------------------------------------------------------------


def make_pair(*, signature: str, tests, broken: str, error: str, fixed: str, problem_id: str | None = None,
              broken_index: int | None = None, fixed_index: int | None = None, source: str | None = None,
              model: str | None = None, seed: int | None = None, **extra) -> dict:
    """A pair dict in schema order; code and error have surrounding blank lines stripped."""
    pair = {"signature": signature.strip("\n"), "tests": [t.strip() for t in tests],
            "broken": broken.strip("\n"), "error": error.strip("\n"), "fixed": fixed.strip("\n"),
            "problem_id": problem_id, "broken_index": broken_index, "fixed_index": fixed_index,
            "source": source, "model": model, "seed": seed}
    pair.update(extra)
    return pair


def _parses(code: str) -> str | None:
    """None when ``code`` parses, else a short reason."""
    try:
        ast.parse(code)
        return None
    except SyntaxError as e:
        return f"{e.msg} (line {e.lineno})"
    except ValueError as e:  # null bytes
        return str(e)


_OPTIONAL_TYPES = {"problem_id": (str,), "broken_index": (int,), "fixed_index": (int,),
                   "source": (str,), "model": (str,), "seed": (int,)}


def validate_pair(row) -> list[str]:
    """Every problem with one pair record (empty list when it is well formed)."""
    if not isinstance(row, dict):
        return [f"expected a JSON object, got {type(row).__name__}"]
    problems = []
    for f in PAIR_FIELDS:
        if f not in row:
            problems.append(f"missing field {f!r}")
    for f in ("signature", "broken", "error", "fixed"):
        if f not in row:
            continue
        v = row[f]
        if not isinstance(v, str):
            problems.append(f"{f!r} must be a string, got {type(v).__name__}")
        elif not v.strip():
            problems.append(f"{f!r} is empty")
    if "tests" in row:
        t = row["tests"]
        if not isinstance(t, list):
            problems.append(f"'tests' must be a list of assert strings, got {type(t).__name__}")
        elif not t:
            problems.append("'tests' is empty")
        else:
            for i, s in enumerate(t):
                if not isinstance(s, str) or not s.strip():
                    problems.append(f"tests[{i}] must be a non-empty string")
                elif (why := _parses(s)) is not None:
                    problems.append(f"tests[{i}] does not parse: {why}")
                elif not any(isinstance(n, ast.Assert) for n in ast.walk(ast.parse(s))):
                    problems.append(f"tests[{i}] is not an assert statement")
    if isinstance(row.get("fixed"), str) and row["fixed"].strip():
        if (why := _parses(row["fixed"])) is not None:
            problems.append(f"'fixed' does not parse: {why}")
    for f, types in _OPTIONAL_TYPES.items():
        v = row.get(f)
        if v is not None and (not isinstance(v, types) or isinstance(v, bool)):
            problems.append(f"{f!r} must be {types[0].__name__} or null, got {type(v).__name__}")
    return problems


def validate_pairs_file(path: str | Path) -> tuple[list[dict], list[tuple[int, str]]]:
    """Read a pairs JSONL file; returns (pairs, [(line number, problem), ...]).

    Every malformed line is reported (not only the first): invalid JSON, a non-object, missing
    or empty fields, wrong types, tests that are not asserts, a ``fixed`` that does not parse.
    Blank lines are skipped. A missing file or a file without any pair is reported as line 0.
    """
    path = Path(path)
    if not path.is_file():
        return [], [(0, f"no such file: {path}")]
    pairs, bad = [], []
    with open(path, encoding="utf-8", errors="replace") as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                bad.append((i, f"not valid JSON ({e.msg})"))
                continue
            problems = validate_pair(row)
            if problems:
                bad.append((i, "; ".join(problems)))
            else:
                pairs.append(row)
    if not pairs and not bad:
        bad.append((0, "the file holds no pairs"))
    return pairs, bad


def format_bad_lines(path, bad: list[tuple[int, str]]) -> str:
    """One line naming every bad line of a pairs file."""
    parts = [(f"line {n}: {msg}" if n else msg) for n, msg in bad]
    return f"pairs file {path}: {len(bad)} malformed line(s), nothing used: " + " | ".join(parts)


def load_pairs(path: str | Path) -> list[dict]:
    """Validated pairs of a file; raises InputError naming every malformed line."""
    from common.results import InputError
    pairs, bad = validate_pairs_file(path)
    if bad:
        raise InputError(format_bad_lines(path, bad))
    return pairs


def pairs_provenance(path: str | Path, pairs: list[dict]) -> dict:
    """What a result records about a pairs file: path, sha256, count, sources and models."""
    from collections import Counter
    return {"path": str(path), "sha256": file_sha256(path), "count": len(pairs),
            "sources": dict(Counter(str(p.get("source")) for p in pairs)),
            "models": dict(Counter(str(p.get("model")) for p in pairs))}


# --------------------------------------------------------------------------------------------
# Prompts
# --------------------------------------------------------------------------------------------


def repair_prompt(pair: dict) -> str:
    """The user turn of a training example (PAPER.md §3), tests one per line."""
    return REPAIR_TEMPLATE.format(signature=pair["signature"], tests="\n".join(pair["tests"]),
                                  broken=pair["broken"], error=pair["error"])


def repair_answer(fixed: str) -> str:
    """The assistant turn of a training example."""
    return ANSWER_TEMPLATE.format(fixed=fixed)


def repair_messages(pair: dict, system: str | None = None) -> list[dict]:
    """The pair as a chat conversation: [system], user = repair prompt, assistant = fixed code."""
    from common.prompts import PAPER_SYSTEM
    system = PAPER_SYSTEM if system is None else system
    msgs = [{"role": "system", "content": system}] if system else []
    return msgs + [{"role": "user", "content": repair_prompt(pair)},
                   {"role": "assistant", "content": repair_answer(pair["fixed"])}]


def raw_markdown_text(pair: dict) -> str:
    """The fast-path format: the whole pair as plain markdown text, no chat template."""
    return repair_prompt(pair) + "\n\n" + repair_answer(pair["fixed"]) + "\n"


def solver_prompt(problem) -> str:
    """What the solver sees: signature + docstring + tests, never the reference body."""
    p = problem if isinstance(problem, dict) else problem.to_dict()
    return SOLVER_TEMPLATE.format(signature=p["signature"], tests="\n".join(p["tests"]))


def problem_prompt(hard: bool = False) -> str:
    return HARD_PROBLEM_PROMPT if hard else PROBLEM_PROMPT


def variant_prompt(problem, direction: str) -> str:
    """Ask for a harder or easier variant of a problem (shown in full: reference and tests)."""
    if direction not in _VARIANT_HOW:
        raise ValueError(f"direction must be 'harder' or 'easier', got {direction!r}")
    p = problem if isinstance(problem, dict) else problem.to_dict()
    code = p["reference"].rstrip("\n") + "\n\n" + "\n".join(p["tests"])
    return VARIANT_TEMPLATE.format(code=code, direction=direction, how=_VARIANT_HOW[direction])


# --------------------------------------------------------------------------------------------
# Problem parsing
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """A parsed self-generated problem. ``signature`` is safe to show; ``reference`` is not."""
    entry_point: str
    signature: str          # imports + def line(s) + docstring, body never included
    docstring: str          # cleaned docstring ("" when the model wrote none)
    reference: str          # imports + top-level definitions, as the model wrote them
    tests: tuple[str, ...]  # assert statements calling the entry point, one line each

    def to_dict(self) -> dict:
        d = asdict(self)
        d["tests"] = list(self.tests)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Problem":
        return cls(entry_point=d["entry_point"], signature=d["signature"], docstring=d.get("docstring", ""),
                   reference=d["reference"], tests=tuple(d["tests"]))


PARSE_REASONS = ("ok", "no_code", "syntax_error", "no_function", "few_tests", "trivial")


def _is_main_guard(node) -> bool:
    return (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
            and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__")


def _candidate_code(text: str) -> list[str]:
    """Code candidates in order: each python/unlabelled block, then all blocks joined, then raw text."""
    from common.prompts import fenced_blocks
    blocks = [b for lang, b in fenced_blocks(text) if lang in ("python", "py", "python3", "")]
    cands = list(blocks)
    if len(blocks) > 1:
        cands.append("\n\n".join(blocks))
    if not blocks:
        cands.append(text)
    return [c for c in cands if c.strip()]


def _node_source(lines: list[str], node) -> str:
    start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    return "\n".join(lines[start - 1:node.end_lineno])


def _called_names(node) -> set[str]:
    return {n.func.id for n in ast.walk(node) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}


def _docstring_node(fn):
    if fn.body and isinstance(fn.body[0], ast.Expr) and isinstance(fn.body[0].value, ast.Constant) \
            and isinstance(fn.body[0].value.value, str):
        return fn.body[0]
    return None


def _trivial_body(fn) -> bool:
    """No real implementation: only pass / ... / raise, or a single return of a constant or argument."""
    body = fn.body[1:] if _docstring_node(fn) else fn.body
    real = [s for s in body if not (isinstance(s, ast.Pass) or (isinstance(s, ast.Expr)
                                                               and isinstance(s.value, ast.Constant)))]
    if not real or all(isinstance(s, ast.Raise) for s in real):
        return True
    if len(real) == 1 and isinstance(real[0], ast.Return):
        v = real[0].value
        args = {a.arg for a in fn.args.args + fn.args.kwonlyargs + fn.args.posonlyargs}
        return v is None or isinstance(v, ast.Constant) or (isinstance(v, ast.Name) and v.id in args)
    return False


def function_signature(fn: ast.FunctionDef, imports: list[str] = (), docstring: str | None = "__own__") -> str:
    """Imports + ``def`` header + docstring of a function node, rebuilt with ``ast`` (no body).

    ``docstring="__own__"`` keeps the function's own docstring; a string replaces it; None drops it.
    """
    node = copy.deepcopy(fn)
    own = _docstring_node(fn)
    if docstring == "__own__":
        doc_stmt = own
    elif docstring:
        doc_stmt = ast.Expr(ast.Constant(docstring))
    else:
        doc_stmt = None
    if doc_stmt is not None:
        node.body = [copy.deepcopy(doc_stmt)]
        text = ast.unparse(node)
    else:
        node.body = [ast.Pass()]
        text = ast.unparse(node).rsplit("\n", 1)[0]
    head = "\n".join(imports)
    return (head + "\n\n" + text) if head else text


def signature_from_code(code: str, entry_point: str, docstring: str | None = "__own__") -> str:
    """The solver-facing signature of ``entry_point`` in ``code`` (imports kept, body dropped)."""
    tree = ast.parse(code)
    lines = code.splitlines()
    imports = [_node_source(lines, n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    for n in tree.body:
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == entry_point:
            return function_signature(n, imports, docstring)
    raise ValueError(f"{entry_point!r} is not defined at top level")


def _parse_one(code: str) -> tuple[Problem | None, str]:
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return None, "syntax_error"
    lines = code.splitlines()
    funcs = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    if not funcs:
        return None, "no_function"
    asserts = [n for n in tree.body if isinstance(n, ast.Assert)]
    for n in tree.body:
        if _is_main_guard(n):
            asserts += [s for s in n.body if isinstance(s, ast.Assert)]
    # the entry point: the defined function called by the most asserts (ties: defined first)
    order = list(funcs)
    counts = {name: sum(name in _called_names(a) for a in asserts) for name in order}
    entry = max(order, key=lambda name: (counts[name], -order.index(name)))
    tests = [ast.unparse(a) for a in asserts if entry in _called_names(a)]
    if len(tests) < 2:
        return None, "few_tests"
    fn = funcs[entry]
    if _trivial_body(fn):
        return None, "trivial"
    imports = [_node_source(lines, n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    reference = _reference_source(tree, lines)
    doc = ast.get_docstring(fn) or ""
    return Problem(entry_point=entry, signature=function_signature(fn, imports), docstring=doc,
                   reference=reference, tests=tuple(tests)), "ok"


_REFERENCE_NODES = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef,
                    ast.Assign, ast.AnnAssign)


def _reference_source(tree, lines: list[str]) -> str:
    """The source without the tests: top-level statements other than imports, definitions and
    assignments (asserts, prints, ``if __name__`` blocks) are cut out by line range."""
    drop = set()
    for n in tree.body:
        if not isinstance(n, _REFERENCE_NODES):
            drop.update(range(n.lineno - 1, n.end_lineno))
    kept = [l for i, l in enumerate(lines) if i not in drop]
    return re.sub(r"\n{3,}", "\n\n\n", "\n".join(kept)).strip("\n")


def parse_problem(text: str) -> tuple[Problem | None, str]:
    """Model text -> (Problem, "ok") or (None, reason), reason in :data:`PARSE_REASONS`.

    Kept only with >= 2 asserts calling the entry point and a non-trivial implementation. The
    entry point is the top-level function called by the most asserts; asserts at top level or
    under ``if __name__ == "__main__":`` count. When several candidates fail, the reason of the
    most advanced one is returned (few_tests/trivial over no_function over syntax_error).
    """
    cands = _candidate_code(text)
    if not cands:
        return None, "no_code"
    rank = {"syntax_error": 0, "no_function": 1, "few_tests": 2, "trivial": 3}
    best = "syntax_error"
    for c in cands:
        prob, why = _parse_one(c)
        if prob is not None:
            return prob, "ok"
        if rank[why] > rank[best]:
            best = why
    return None, best


def problem_text(problem) -> str:
    """Everything a problem holds, for decontamination and hashing."""
    p = problem if isinstance(problem, dict) else problem.to_dict()
    return p["signature"] + "\n" + p["reference"] + "\n" + "\n".join(p["tests"])


# --------------------------------------------------------------------------------------------
# Normalised-hash dedup
# --------------------------------------------------------------------------------------------


class _StripDocstrings(ast.NodeTransformer):
    def _strip(self, node):
        self.generic_visit(node)
        if node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant) \
                and isinstance(node.body[0].value.value, str):
            node.body = node.body[1:] or [ast.Pass()]
        return node

    visit_Module = visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _strip


def normalize_code(code: str) -> tuple[str, str]:
    """(normal form, how): ``ast.unparse`` of the tree without docstrings ("ast") — comments,
    blank lines, quoting, spacing and redundant parentheses vanish; FALLBACK when the code does
    not parse: every whitespace run collapsed to one space ("text")."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return " ".join(code.split()), "text"
    tree = _StripDocstrings().visit(tree)
    return ast.unparse(tree), "ast"


def code_hash(code: str) -> str:
    """16-hex-digit hash of :func:`normalize_code`'s normal form."""
    return hashlib.sha256(normalize_code(code)[0].encode()).hexdigest()[:16]


def dedup_indices(codes: list[str]) -> tuple[list[int], int]:
    """Indices of the first occurrence of each distinct normal form, and how many were dropped."""
    seen, keep = set(), []
    for i, c in enumerate(codes):
        h = code_hash(c)
        if h not in seen:
            seen.add(h)
            keep.append(i)
    return keep, len(codes) - len(keep)


# --------------------------------------------------------------------------------------------
# n-gram decontamination
# --------------------------------------------------------------------------------------------

DECON_NGRAM = 13
_WORD_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+")


def decon_tokens(text: str) -> list[str]:
    """Lower-cased identifiers, keywords and numbers; punctuation and layout are ignored."""
    return [t.lower() for t in _WORD_RE.findall(text)]


def ngrams(tokens: list[str], n: int = DECON_NGRAM) -> set[tuple[str, ...]]:
    return {tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)}


def benchmark_index(tasks: list[dict], n: int = DECON_NGRAM,
                    fields: tuple[str, ...] = ("prompt", "canonical_solution")) -> dict:
    """n-gram -> set of task ids, over each task's prompt + canonical solution."""
    index: dict[tuple, set] = {}
    for t in tasks:
        text = "\n".join(str(t.get(f) or "") for f in fields)
        for g in ngrams(decon_tokens(text), n):
            index.setdefault(g, set()).add(t["task_id"])
    return {"n": n, "fields": list(fields), "index": index, "n_tasks": len(tasks)}


def overlap(text: str, bindex: dict) -> dict:
    """Shared n-grams of ``text`` with the benchmark: count, fraction of the text's n-grams that
    occur anywhere in the benchmark, and the task sharing the most."""
    grams = ngrams(decon_tokens(text), bindex["n"])
    if not grams:
        return {"shared": 0, "fraction": 0.0, "task_id": None, "n_ngrams": 0}
    per_task: dict[str, int] = {}
    shared = 0
    for g in grams:
        tids = bindex["index"].get(g)
        if tids:
            shared += 1
            for t in tids:
                per_task[t] = per_task.get(t, 0) + 1
    top = max(sorted(per_task), key=per_task.get) if per_task else None
    return {"shared": shared, "fraction": shared / len(grams), "task_id": top, "n_ngrams": len(grams)}


def decontamination_report(items: dict[str, str], bindex: dict, min_shared: int = 1,
                           max_fraction: float = 0.0) -> dict:
    """Flag items sharing >= ``min_shared`` n-grams with the benchmark AND whose overlap fraction
    exceeds ``max_fraction`` (defaults: any shared 13-gram flags). Returns counts, the flagged
    ids with their closest task, and the largest overlap fraction seen."""
    flagged, worst = [], 0.0
    for iid, text in items.items():
        o = overlap(text, bindex)
        worst = max(worst, o["fraction"])
        if o["shared"] >= min_shared and o["fraction"] > max_fraction:
            flagged.append({"id": iid, "task_id": o["task_id"], "shared": o["shared"],
                            "fraction": round(o["fraction"], 4)})
    return {"ngram": bindex["n"], "benchmark_fields": bindex["fields"], "min_shared": min_shared,
            "max_fraction": max_fraction, "n_checked": len(items), "n_flagged": len(flagged),
            "flagged_ids": [f["id"] for f in flagged], "flagged": flagged,
            "max_overlap_fraction": round(worst, 4)}


def humaneval_index(n: int = DECON_NGRAM) -> dict:
    """The decontamination index over the offline HumanEval prompts + canonical solutions."""
    from common.benchmarks import load_humaneval
    return benchmark_index(load_humaneval(), n)


# --------------------------------------------------------------------------------------------
# Mining (pure: attempts already scored by the sandbox)
# --------------------------------------------------------------------------------------------

_STATUS_TEXT = {"timeout": "Timeout: the program did not finish within the time limit",
                "memory": "MemoryError: the program exceeded the memory limit",
                "crashed": "the program crashed", "failed": "the tests failed"}


def error_text(status: str, error: str) -> str:
    """The pair's ``error`` for a failed attempt: the sandbox's message, or a line naming the status."""
    return error.strip() if error and error.strip() else _STATUS_TEXT.get(status, f"status: {status}")


def mine_pairs(problem: dict, attempts: list[dict], *, max_pairs: int = 1, problem_id: str | None = None,
               model: str | None = None, seed: int | None = None, source: str = "self-mined") -> tuple[list[dict], dict]:
    """Repair pairs of one problem from its scored attempts.

    ``attempts``: dicts with ``index``, ``code``, ``passed``, ``status``, ``error``. A pair needs a
    failing and a passing attempt. Failing attempts with empty code (format junk) and harness
    errors (not the model's fault) are never ``broken``. Distinct failing attempts (normalised
    hash) are taken in order, up to ``max_pairs``; pair k is fixed by passing attempt k mod #passing.
    Counts: n_failing, n_passing, n_junk, n_harness, n_duplicate_failing, n_pairs.
    """
    passing = [a for a in attempts if a["passed"]]
    harness = [a for a in attempts if a.get("status") == "harness_error"]
    failing_all = [a for a in attempts if not a["passed"] and a.get("status") != "harness_error"]
    junk = [a for a in failing_all if not a["code"].strip()]
    failing = [a for a in failing_all if a["code"].strip()]
    keep, n_dup = dedup_indices([a["code"] for a in failing])
    failing = [failing[i] for i in keep]
    pass_hashes = {code_hash(a["code"]) for a in passing}
    failing = [a for a in failing if code_hash(a["code"]) not in pass_hashes]  # flaky: same code both ways
    pairs = []
    if passing:
        for k, a in enumerate(failing[:max_pairs]):
            fix = passing[k % len(passing)]
            pairs.append(make_pair(signature=problem["signature"], tests=problem["tests"], broken=a["code"],
                                   error=error_text(a.get("status", "failed"), a.get("error", "")),
                                   fixed=fix["code"], problem_id=problem_id, broken_index=a["index"],
                                   fixed_index=fix["index"], source=source, model=model, seed=seed))
    counts = {"n_failing": len(failing_all), "n_passing": len(passing), "n_junk": len(junk),
              "n_harness": len(harness), "n_duplicate_failing": n_dup, "n_pairs": len(pairs)}
    return pairs, counts


def dedup_pairs(pairs: list[dict]) -> tuple[list[dict], int]:
    """Drop pairs whose (broken, fixed) normal forms repeat an earlier pair's; returns (kept, dropped)."""
    seen, out = set(), []
    for p in pairs:
        k = (code_hash(p["broken"]), code_hash(p["fixed"]))
        if k not in seen:
            seen.add(k)
            out.append(p)
    return out, len(pairs) - len(out)


def pair_text(pair: dict) -> str:
    """The text of a pair checked for contamination: signature, tests, broken and fixed code."""
    return "\n".join([pair["signature"], *pair["tests"], pair["broken"], pair["fixed"]])


# --------------------------------------------------------------------------------------------
# Problem files and the no-leak check
# --------------------------------------------------------------------------------------------

PROBLEM_FIELDS = ("id", "entry_point", "signature", "reference", "tests")


def body_lines(reference: str, entry_point: str, min_len: int = 8) -> list[str]:
    """The entry point's body lines (docstring excluded), stripped, comments and short lines
    (``else:``, ``pass``) left out."""
    tree = ast.parse(reference)
    lines = reference.splitlines()
    for n in tree.body:
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == entry_point:
            body = n.body[1:] if _docstring_node(n) else n.body
            if not body:
                return []
            out = [l.strip() for l in lines[body[0].lineno - 1:n.end_lineno]]
            return [l for l in out if len(l) >= min_len and not l.startswith("#")]
    raise ValueError(f"{entry_point!r} is not defined at top level of the reference")


def leaks_body(text: str, reference: str, entry_point: str) -> list[str]:
    """Reference body lines that appear as lines of ``text`` (empty list: no leak)."""
    seen = {l.strip() for l in text.splitlines()}
    return [l for l in body_lines(reference, entry_point) if l in seen]


def validate_problem(row) -> list[str]:
    if not isinstance(row, dict):
        return [f"expected a JSON object, got {type(row).__name__}"]
    out = [f"missing field {f!r}" for f in PROBLEM_FIELDS if f not in row]
    for f in ("id", "entry_point", "signature", "reference"):
        if f in row and (not isinstance(row[f], str) or not row[f].strip()):
            out.append(f"{f!r} must be a non-empty string")
    if isinstance(row.get("tests"), list):
        if len(row["tests"]) < 2:
            out.append("'tests' needs at least 2 asserts")
        for i, s in enumerate(row["tests"]):
            if not isinstance(s, str) or _parses(s) is not None or not s.strip().startswith("assert"):
                out.append(f"tests[{i}] is not a parsable assert statement")
    elif "tests" in row:
        out.append("'tests' must be a list of assert strings")
    if not out:
        if (why := _parses(row["reference"])) is not None:
            out.append(f"'reference' does not parse: {why}")
        else:
            try:
                leaked = leaks_body(row["signature"], row["reference"], row["entry_point"])
            except ValueError as e:
                out.append(str(e))
            else:
                if leaked:
                    out.append(f"'signature' shows the reference body ({leaked[0]!r})")
    return out


def load_problems(path: str | Path) -> list[dict]:
    """A problems JSONL file ({id, entry_point, signature, reference, tests[, docstring]}); every
    malformed line is named in one InputError."""
    from common.results import InputError
    path = Path(path)
    if not path.is_file():
        raise InputError(f"problems file {path}: no such file")
    rows, bad, ids = [], [], set()
    for i, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            bad.append(f"line {i}: not valid JSON ({e.msg})")
            continue
        problems = validate_problem(row)
        if not problems and row["id"] in ids:
            problems = [f"duplicate id {row['id']!r}"]
        if problems:
            bad.append(f"line {i}: " + "; ".join(problems))
        else:
            ids.add(row["id"])
            rows.append(row)
    if bad:
        raise InputError(f"problems file {path}: {len(bad)} malformed line(s): " + " | ".join(bad))
    if not rows:
        raise InputError(f"problems file {path}: holds no problems")
    return rows


# --------------------------------------------------------------------------------------------
# Mechanical corruptions (the corrupted-pairs control)
# --------------------------------------------------------------------------------------------

CORRUPTIONS = ("range_off_by_one", "index_off_by_one", "compare_swap", "arith_swap", "wrong_return",
               "drop_line", "bool_flip")
_CMP_SWAP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
             ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In}
_ARITH_SWAP = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.FloorDiv, ast.FloorDiv: ast.Mult}


def _sites(tree, kind: str) -> list:
    """Nodes of ``tree`` where corruption ``kind`` applies, in a stable (walk) order."""
    out = []
    for node in ast.walk(tree):
        if kind == "range_off_by_one" and isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id == "range" and node.args:
            out.append(node)
        elif kind == "index_off_by_one" and isinstance(node, ast.Subscript) and not isinstance(node.ctx, ast.Store):
            if not isinstance(node.slice, ast.Slice) or node.slice.upper is not None or node.slice.lower is not None:
                out.append(node)
        elif kind == "compare_swap" and isinstance(node, ast.Compare) and type(node.ops[0]) in _CMP_SWAP:
            out.append(node)
        elif kind == "arith_swap" and isinstance(node, (ast.BinOp, ast.AugAssign)) and type(node.op) in _ARITH_SWAP:
            out.append(node)
        elif kind == "wrong_return" and isinstance(node, ast.Return) and node.value is not None:
            out.append(node)
        elif kind == "drop_line" and isinstance(node, (ast.FunctionDef, ast.For, ast.While, ast.If, ast.With)):
            body = node.body[1:] if isinstance(node, ast.FunctionDef) and _docstring_node(node) else node.body
            if len(body) > 1:
                out += [(node, s) for s in body]
        elif kind == "bool_flip" and isinstance(node, ast.Constant) and isinstance(node.value, bool):
            out.append(node)
    return out


def _minus_one(e):
    return ast.BinOp(left=e, op=ast.Sub(), right=ast.Constant(1))


def _plus_one(e):
    return ast.BinOp(left=e, op=ast.Add(), right=ast.Constant(1))


def _apply(tree, kind: str, site, fn_args: list[str]) -> bool:
    """Mutate ``tree`` at ``site``; False when the site admits no change."""
    if kind == "range_off_by_one":
        i = 0 if len(site.args) == 1 else 1
        site.args[i] = _minus_one(site.args[i])
    elif kind == "index_off_by_one":
        if isinstance(site.slice, ast.Slice):
            if site.slice.upper is not None:
                site.slice.upper = _minus_one(site.slice.upper)
            else:
                site.slice.lower = _plus_one(site.slice.lower)
        else:
            site.slice = _plus_one(site.slice)
    elif kind == "compare_swap":
        site.ops[0] = _CMP_SWAP[type(site.ops[0])]()
    elif kind == "arith_swap":
        site.op = _ARITH_SWAP[type(site.op)]()
    elif kind == "wrong_return":
        other = next((a for a in fn_args if not (isinstance(site.value, ast.Name) and site.value.id == a)), None)
        site.value = ast.Name(other, ast.Load()) if other else ast.Constant(None)
    elif kind == "drop_line":
        parent, stmt = site
        parent.body = [s for s in parent.body if s is not stmt]
    elif kind == "bool_flip":
        site.value = not site.value
    return True


def corruptions(code: str, entry_point: str) -> list[tuple[str, int, str]]:
    """Every single-site mechanical corruption of ``code``: (kind, site index, corrupted code).

    Kinds (:data:`CORRUPTIONS`): off-by-one in a ``range`` stop or an index/slice bound, a
    swapped comparison (< and <=, == and !=, in and not in), a swapped arithmetic operator, a
    return of the wrong variable (the first other parameter, else None), a dropped statement,
    a flipped boolean constant. Only the entry point's function is corrupted; results whose
    normal form equals the original's are left out. Whether a corruption really fails the
    tests is for the sandbox to say.
    """
    base_tree = ast.parse(code)
    base_norm = normalize_code(code)[0]
    fn_index = next((i for i, n in enumerate(base_tree.body)
                     if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == entry_point), None)
    if fn_index is None:
        raise ValueError(f"{entry_point!r} is not defined at top level")
    out = []
    for kind in CORRUPTIONS:
        n_sites = len(_sites(base_tree.body[fn_index], kind))
        for k in range(n_sites):
            tree = ast.parse(code)
            fn = tree.body[fn_index]
            site = _sites(fn, kind)[k]
            args = [a.arg for a in fn.args.posonlyargs + fn.args.args]
            _apply(tree, kind, site, args)
            ast.fix_missing_locations(tree)
            try:
                new = ast.unparse(tree)
                ast.parse(new)
            except (SyntaxError, ValueError, AttributeError, TypeError):
                continue
            if normalize_code(new)[0] != base_norm:
                out.append((kind, k, new))
    return out
