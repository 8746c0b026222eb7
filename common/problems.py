"""Self-generated problems: the prompts that ask for them, ``ast`` parsing of the model's text
into a :class:`Problem`, the solver-facing signature, problem files and the no-leak check.

Prompts
-------
* :data:`PROBLEM_PROMPT` / :data:`HARD_PROBLEM_PROMPT` — ask for one small problem in one block;
  :func:`variant_prompt` — the curriculum's harder/easier variant request.
* :func:`solver_prompt` — signature + docstring + tests only (our wording; PAPER.md gives none).

Problem parsing (:func:`parse_problem`) uses ``ast``; the solver-facing ``signature`` is rebuilt
from the function node with its body replaced by the docstring alone, so the reference body can
never reach the solver, whatever the docstring's length (PAPER.md §4 defect 1).

Fallbacks (named here, counted by callers): :func:`parse_problem` concatenates all python blocks
when no single block holds a function and two asserts, and reads unfenced text when there is no
fence at all.
"""
from __future__ import annotations

import ast
import copy
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from common.pycode import docstring_node, parse_error, read_valid_jsonl

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
# Prompts
# --------------------------------------------------------------------------------------------


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


def _trivial_body(fn) -> bool:
    """No real implementation: only pass / ... / raise, or a single return of a constant or argument."""
    body = fn.body[1:] if docstring_node(fn) else fn.body
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
    own = docstring_node(fn)
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
            body = n.body[1:] if docstring_node(n) else n.body
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
            if not isinstance(s, str) or parse_error(s) is not None or not s.strip().startswith("assert"):
                out.append(f"tests[{i}] is not a parsable assert statement")
    elif "tests" in row:
        out.append("'tests' must be a list of assert strings")
    if not out:
        if (why := parse_error(row["reference"])) is not None:
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
    malformed line (a repeated id included) is named in one InputError."""
    ids = set()

    def problems_of(row) -> list[str]:
        found = validate_problem(row)
        if not found and row["id"] in ids:
            return [f"duplicate id {row['id']!r}"]
        if not found:
            ids.add(row["id"])
        return found

    return read_valid_jsonl(path, problems_of, "problems file")
