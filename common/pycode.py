"""Small pure helpers on model-written Python and the JSONL files that hold it: whether code
parses, a function's docstring node, the normal form and hash that dedup compares, and the lines
of a JSONL file with the reason each one is not JSON.

Dedup (:func:`normalize_code`): ``ast.unparse`` of the tree without docstrings, so comments,
blank lines, quoting, spacing and redundant parentheses vanish; FALLBACK when the code does not
parse: every whitespace run collapsed to one space (named ``"text"``, counted by callers).
"""
from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path
from typing import Iterator


def parse_error(code: str) -> str | None:
    """None when ``code`` parses, else a short reason."""
    try:
        ast.parse(code)
        return None
    except SyntaxError as e:
        return f"{e.msg} (line {e.lineno})"
    except ValueError as e:  # null bytes
        return str(e)


def docstring_node(fn):
    """The docstring statement of a function node, or None."""
    if fn.body and isinstance(fn.body[0], ast.Expr) and isinstance(fn.body[0].value, ast.Constant) \
            and isinstance(fn.body[0].value.value, str):
        return fn.body[0]
    return None


def json_lines(path: str | Path) -> Iterator[tuple[int, object, str | None]]:
    """Each non-blank line of a JSONL file: (line number, parsed value or None, None or why the
    line is not valid JSON). Undecodable bytes are replaced, never fatal."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    for i, line in enumerate(text.split("\n"), 1):
        if line.strip():
            yield (i, *_loads(line))


def validated_lines(path: str | Path, validate) -> tuple[list[dict], list[tuple[int, str]]]:
    """(rows ``validate`` accepts, [(line number, its problems joined), ...] for the others);
    ``validate(row)`` returns the row's list of problems, empty when it is fine."""
    rows, bad = [], []
    for i, row, not_json in json_lines(path):
        problems = [not_json] if not_json else validate(row)
        if problems:
            bad.append((i, "; ".join(problems)))
        else:
            rows.append(row)
    return rows, bad


def read_valid_jsonl(path: str | Path, validate, what: str) -> list[dict]:
    """The rows of a JSONL file, each accepted by ``validate(row)`` (-> list of its problems).

    A missing file, a file without rows, or any malformed line (not JSON, or problems found)
    raises one InputError that names every bad line: ``"<what> PATH: N malformed line(s),
    nothing used: line i: ... | line j: ..."``."""
    from common.results import InputError
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} {path}: no such file")
    rows, bad = validated_lines(path, validate)
    if bad:
        raise InputError(f"{what} {path}: {len(bad)} malformed line(s), nothing used: "
                         + " | ".join(f"line {i}: {msg}" for i, msg in bad))
    if not rows:
        raise InputError(f"{what} {path}: the file holds no records")
    return rows


def _loads(line: str) -> tuple[object, str | None]:
    try:
        return json.loads(line), None
    except json.JSONDecodeError as e:
        return None, f"not valid JSON ({e.msg})"


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
