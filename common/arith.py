"""A bounded evaluator for arithmetic expressions: exact (Fractions), no ``eval``, bounded cost.

Checking a math problem by evaluating its arithmetic (the procedural problems' steps, the
EXPRESSION a model writes beside its ANSWER in the math recipes) must not run the text as Python
(PAPER.md §4 defect 11: the original ``eval``-ed it in-process, without a time limit). Here the
text is parsed with :mod:`ast` (``mode="eval"``) and only this grammar is evaluated:

    numbers (``12``, ``3.5``, ``1,234`` with proper thousands groups), names bound in ``env``,
    ``+ - * / // %``, ``**`` (``^`` is read as ``**``; ``×``/``÷`` as ``*``/``/``),
    unary ``+``/``-``, parentheses.

Bounds, each an :class:`ExpressionError` when exceeded: the text's length, the number of AST
nodes, an exponent that is not an integer of at most :data:`MAX_EXPONENT` in size, and any
intermediate value whose numerator or denominator has more than :data:`MAX_DIGITS` digits.
Division by zero is an ExpressionError too. So the cost of one call is bounded by the text's
length, whatever the text.
"""
from __future__ import annotations

import ast
import operator
import re
from fractions import Fraction

MAX_CHARS = 2000
MAX_NODES = 400
MAX_EXPONENT = 64
MAX_DIGITS = 200


class ExpressionError(ValueError):
    """The text is not a bounded arithmetic expression of the grammar above."""


_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod}
_THOUSANDS = re.compile(r"(?<![\d.])\d{1,3}(?:,\d{3})+(?![\d,])")


def _bounded(x: Fraction) -> Fraction:
    if max(abs(x.numerator), x.denominator).bit_length() > MAX_DIGITS * 3.33:
        raise ExpressionError(f"an intermediate value has more than {MAX_DIGITS} digits")
    return x


def _pow(base: Fraction, exp: Fraction) -> Fraction:
    if exp.denominator != 1 or abs(exp) > MAX_EXPONENT:
        raise ExpressionError(f"exponent {exp} is not an integer of at most {MAX_EXPONENT} in size")
    if base == 0 and exp < 0:
        raise ExpressionError("zero to a negative power")
    return _bounded(base ** int(exp))


def _eval(node: ast.AST, env: dict) -> Fraction:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return _bounded(Fraction(str(node.value)))
    if isinstance(node, ast.Name):
        if node.id not in env:
            raise ExpressionError(f"unknown name {node.id!r}")
        return Fraction(env[node.id])
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        v = _eval(node.operand, env)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp):
        a, b = _eval(node.left, env), _eval(node.right, env)
        if isinstance(node.op, ast.Pow):
            return _pow(a, b)
        if type(node.op) not in _BINARY:
            raise ExpressionError(f"operator {type(node.op).__name__} is not arithmetic")
        if b == 0 and isinstance(node.op, (ast.Div, ast.FloorDiv, ast.Mod)):
            raise ExpressionError("division by zero")
        return _bounded(Fraction(_BINARY[type(node.op)](a, b)))
    raise ExpressionError(f"{type(node).__name__} is not part of an arithmetic expression")


def evaluate(text: str, env: dict | None = None) -> Fraction:
    """The exact value of the arithmetic expression ``text`` (names looked up in ``env``, a dict
    of numbers). Raises :class:`ExpressionError` for anything outside the grammar or the bounds
    of the module docstring; never evaluates Python."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("empty expression")
    if len(text) > MAX_CHARS:
        raise ExpressionError(f"expression longer than {MAX_CHARS} characters")
    src = _THOUSANDS.sub(lambda m: m.group(0).replace(",", ""), text.strip())
    src = src.replace("^", "**").replace("×", "*").replace("÷", "/").replace("\u2212", "-")
    try:
        tree = ast.parse(src, mode="eval")
    except (SyntaxError, ValueError, RecursionError):
        raise ExpressionError(f"not an arithmetic expression: {text[:80]!r}") from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise ExpressionError(f"expression has more than {MAX_NODES} parts")
    return _eval(tree.body, env or {})


def evaluate_steps(steps: list[str]) -> dict[str, Fraction]:
    """Evaluate ``name = expression`` lines in order, each seeing the names before it; returns
    every name's value. A line without ``=`` or with a bad name raises ExpressionError."""
    env: dict[str, Fraction] = {}
    for line in steps:
        name, sep, expr = line.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise ExpressionError(f"not a 'name = expression' line: {line!r}")
        env[name] = evaluate(expr, env)
    return env
