"""Math answer extraction, normalisation and checking (GSM8K, MATH-500, AIME). Pure functions.

Nothing here evaluates model text: no ``eval``, no sympy, no regex with catastrophic
backtracking. Numbers are parsed with :class:`fractions.Fraction` from strings that a strict
pattern has already accepted. Every extractor returns an :class:`Extraction` whose ``method``
names the rule that fired, so fallbacks can be counted in results:

=============  ================================================================
method         meaning
=============  ================================================================
``hash``       the last ``#### <number>`` line (GSM8K format)
``boxed``      the last complete ``\\boxed{...}`` (MATH format)
``fbox``       the last complete ``\\fbox{...}``
``last_number``FALLBACK: the last number anywhere in the text
``none``       nothing found (answer is None)
=============  ================================================================

Fixes the paper's defects (PAPER.md §4.11): the *last* ``####`` wins (the original took the
first), thousands separators no longer break numbers, gold answers come from the dataset, and
MATH equivalence never silently depends on an optional dependency.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from fractions import Fraction
from typing import Callable, NamedTuple, Sequence


class Extraction(NamedTuple):
    answer: str | None
    method: str          # hash | boxed | fbox | last_number | none


# --------------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------------

# An optional sign, then digits with proper thousands groups or plain digits, optional decimals;
# or a bare decimal ".5". Bounded repetition only (no nested quantifiers over the same text).
_NUM_RE = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+(?![\d.]))?|-?\.\d+")
_PLAIN_NUM_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_DEC = r"[+-]?(?:\d+(?:\.\d+)?|\.\d+)"
_FRAC_RE = re.compile(rf"([+-]?)\(?({_DEC})\)?/\(?({_DEC})\)?")
_MINUS_CHARS = str.maketrans({"\u2212": "-", "\u2013": "-", "\u2014": "-", "\u00a0": " "})


def clean_number_text(s: str) -> str:
    """Strip the decorations around a numeric answer: whitespace, ``$``/``\\$``, ``%``/``\\%``,
    markdown ``**``, thousands commas, trailing ``.``; unicode minus -> ``-``.
    ``"$1,234.50."`` -> ``"1234.50"``. Non-numeric text is returned stripped, not rejected."""
    s = s.translate(_MINUS_CHARS).strip()
    s = s.replace("\\$", "").replace("$", "").replace("\\%", "").replace("%", "")
    s = s.replace("**", "").strip()
    if re.fullmatch(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?\.?", s):
        s = s.replace(",", "")
    while s.endswith("."):
        s = s[:-1].rstrip()
    return s


def parse_number(s: str | None) -> Fraction | None:
    """Exact value of a plain number (``-12``, ``3.50``, ``.5``, ``1,234``) or a simple fraction
    (``3/4``, ``-(3)/(4)``) after :func:`clean_number_text`. Fallback: None for anything else
    (expressions, LaTeX, division by zero) -- never evaluated."""
    if s is None:
        return None
    s = clean_number_text(str(s)).replace(" ", "")
    if not s:
        return None
    if _PLAIN_NUM_RE.fullmatch(s):
        return Fraction(s.rstrip(".") if s.endswith(".") else s)
    m = _FRAC_RE.fullmatch(s)
    if m:
        sign, num, den = m.groups()
        den_f = Fraction(den)
        if den_f == 0:
            return None
        val = Fraction(num) / den_f
        return -val if sign == "-" else val
    return None


def numbers_equal(a: Fraction | float, b: Fraction | float, *, rel_tol: float = 1e-9,
                  abs_tol: float = 1e-9) -> bool:
    """Exact equality for two Fractions; otherwise ``math.isclose`` with the given tolerances."""
    if isinstance(a, Fraction) and isinstance(b, Fraction) and a == b:
        return True
    return math.isclose(float(a), float(b), rel_tol=rel_tol, abs_tol=abs_tol)


def _numbers_in(text: str) -> list[str]:
    """Numbers in text, in order; a ``-`` glued to a preceding word/digit is a hyphen, not a sign
    (``5-6`` -> ``5``, ``6``)."""
    text = text.translate(_MINUS_CHARS)
    out = []
    for m in _NUM_RE.finditer(text):
        tok = m.group(0)
        start = m.start()
        glued = start > 0 and (text[start - 1].isalnum() or text[start - 1] in "_)")
        if tok.startswith("-") and glued:
            tok = tok[1:]
        out.append(tok.replace(",", ""))
    return out


def last_number(text: str) -> str | None:
    """The last number in ``text`` with thousands commas removed, or None."""
    nums = _numbers_in(text)
    return nums[-1] if nums else None


# --------------------------------------------------------------------------------------------
# GSM8K
# --------------------------------------------------------------------------------------------


def gsm8k_gold(answer_field: str) -> str:
    """Gold answer from a GSM8K ``answer`` field: the rest of the line after the LAST
    ``####``, cleaned by :func:`clean_number_text` (``"#### 1,234"`` -> ``"1234"``).

    No fallback: a field without ``####`` or with nothing after it raises ValueError (the
    gold answer is never guessed)."""
    i = answer_field.rfind("####")
    if i < 0:
        raise ValueError(f"GSM8K answer has no '####' line: {answer_field[-80:]!r}")
    gold = clean_number_text(answer_field[i + 4:].split("\n", 1)[0])
    if not gold:
        raise ValueError(f"GSM8K answer has nothing after the last '####': {answer_field[-80:]!r}")
    return gold


def extract_gsm8k_answer(text: str) -> Extraction:
    """Model answer in GSM8K format.

    1. ``hash``: the first number on the line of the LAST ``####`` (``"#### $1,234."`` ->
       ``"1234"``; a simple fraction ``3/4`` counts as one number).
    2. ``last_number`` (FALLBACK): when there is no ``####`` or no number after the last one,
       the last number anywhere in the text.
    3. ``none``: no number at all -> answer None.
    """
    i = text.rfind("####")
    if i >= 0:
        line = text[i + 4:].split("\n", 1)[0]
        nums = _numbers_in(line)
        if nums:
            return Extraction(nums[0], "hash")
    n = last_number(text)
    return Extraction(n, "last_number") if n is not None else Extraction(None, "none")


def gsm8k_equal(pred: str | None, gold: str, *, rel_tol: float = 1e-6,
                abs_tol: float = 1e-6) -> bool:
    """Numeric equality of a predicted and a gold GSM8K answer (tolerances for decimals).
    Fallback: when either side is not a plain number, compares the cleaned strings; None is
    always wrong."""
    if pred is None:
        return False
    a, b = parse_number(pred), parse_number(gold)
    if a is not None and b is not None:
        return numbers_equal(a, b, rel_tol=rel_tol, abs_tol=abs_tol)
    return clean_number_text(pred) == clean_number_text(gold)


# --------------------------------------------------------------------------------------------
# MATH: \boxed extraction and LaTeX normalisation
# --------------------------------------------------------------------------------------------

_BOX_RE = re.compile(r"\\(boxed|fbox)(?![A-Za-z])")


def _brace_group(s: str, i: int) -> tuple[str, int] | None:
    """If ``s[i] == "{"``, return (content, index after the matching ``}``), honouring nesting
    and skipping escaped characters (``\\{``, ``\\}``); None when unbalanced."""
    if i >= len(s) or s[i] != "{":
        return None
    depth = 0
    j = i
    while j < len(s):
        ch = s[j]
        if ch == "\\":
            j += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return s[i + 1:j], j + 1
        j += 1
    return None


def _boxed_at(text: str, m: re.Match) -> str | None:
    j = m.end()
    while j < len(text) and text[j] == " ":
        j += 1
    if j < len(text) and text[j] == "{":
        g = _brace_group(text, j)
        return g[0] if g else None
    # "\boxed 5" form: one token up to whitespace or "$"
    tok = re.match(r"[^\s$]+", text[j:])
    return tok.group(0) if (tok and m.end() < j) else None


def extract_boxed(text: str) -> Extraction:
    """Content of the LAST complete ``\\boxed{...}`` or ``\\fbox{...}`` (nested braces kept),
    also ``\\boxed 5``. Fallback: if the last box is unclosed (truncated output), the previous
    complete one; ``none`` when there is no complete box."""
    for m in reversed(list(_BOX_RE.finditer(text))):
        content = _boxed_at(text, m)
        if content is not None:
            return Extraction(content.strip(), m.group(1))
    return Extraction(None, "none")


def extract_math_answer(text: str) -> Extraction:
    """MATH-style final answer: :func:`extract_boxed` (``boxed``/``fbox``); FALLBACK
    ``last_number``: the last number in the text; ``none`` otherwise."""
    ex = extract_boxed(text)
    if ex.answer is not None:
        return ex
    n = last_number(text)
    return Extraction(n, "last_number") if n is not None else Extraction(None, "none")


def _read_arg(s: str, i: int) -> tuple[str, int] | None:
    """A LaTeX macro argument at ``s[i:]``: a brace group, a ``\\command``, or one character
    (``\\frac12``). Leading spaces skipped. None if missing/unbalanced."""
    while i < len(s) and s[i] == " ":
        i += 1
    if i >= len(s):
        return None
    if s[i] == "{":
        return _brace_group(s, i)
    if s[i] == "\\":
        m = re.match(r"\\[A-Za-z]+", s[i:])
        if m:
            return m.group(0), i + m.end()
    return s[i], i + 1


_SIMPLE_OPERAND = re.compile(r"[A-Za-z0-9.]+|\\[A-Za-z]+|\\sqrt\{[A-Za-z0-9.]+\}")


def _convert_fracs(s: str) -> str:
    """``\\frac{a}{b}`` -> ``a/b`` for simple operands, else ``(a)/(b)``; recursive."""
    out = []
    i = 0
    while True:
        j = s.find("\\frac", i)
        if j < 0 or re.match(r"[A-Za-z]", s[j + 5:j + 6]):
            if j < 0:
                out.append(s[i:])
                return "".join(out)
            out.append(s[i:j + 5])
            i = j + 5
            continue
        num = _read_arg(s, j + 5)
        den = _read_arg(s, num[1]) if num else None
        if not (num and den):
            out.append(s[i:])
            return "".join(out)
        a, b = _convert_fracs(num[0].strip()), _convert_fracs(den[0].strip())
        a = a if _SIMPLE_OPERAND.fullmatch(a) else f"({a})"
        b = b if _SIMPLE_OPERAND.fullmatch(b) else f"({b})"
        out.append(s[i:j] + f"{a}/{b}")
        i = den[1]


def _unwrap_macro(s: str, names: str) -> str:
    r"""``\name{X}`` -> ``X`` for each macro in ``names`` (regex alternation), brace-aware."""
    pat = re.compile(r"\\(?:%s)\s*(?=\{)" % names)
    while True:
        m = pat.search(s)
        if not m:
            return s
        g = _brace_group(s, m.end())
        if g is None:
            return s[:m.start()] + s[m.end():]
        s = s[:m.start()] + g[0] + s[g[1]:]


_TEXT_MACROS = r"text|textbf|textit|textrm|mbox|mathrm|mathbf|mathit|operatorname"
_UNIT_WORD = re.compile(r"\s*[A-Za-z][A-Za-z .]*")
# left side of "x = 3" that may be dropped: a letter or \command, optional subscript, "(x)"
_LHS_VAR = re.compile(r"\s*(?:[A-Za-z]|\\[A-Za-z]+)(?:_\{?\w+\}?)?(?:\([A-Za-z]\))?\s*")


def normalize_math_answer(s: str | None) -> str | None:
    """Canonical string form of a (LaTeX) answer, for comparison.

    Applied in order: unwrap a surrounding ``\\boxed``/``\\fbox``; drop ``$``, ``\\( \\)``,
    ``\\[ \\]``; ``\\dfrac``/``\\tfrac`` -> ``\\frac``; drop ``\\left``/``\\right``,
    ``\\displaystyle``, spacing (``\\! \\, \\; \\: \\quad ~``); degrees (``^\\circ``,
    ``^{\\circ}``, ``°``), ``\\%``/``%``, ``\\$``; a trailing ``\\text{unit}`` after a number is
    dropped (``5\\text{ cm}`` -> ``5``), other ``\\text{X}``/``\\mathrm{X}``... -> ``X``;
    ``\\sqrt3`` -> ``\\sqrt{3}``; ``\\frac{a}{b}`` -> ``a/b`` (``(a)/(b)`` when not simple);
    ``x = 3`` -> ``3`` (one ``=`` with a variable-like left side); all whitespace removed;
    single-character super/subscripts unbraced (``x^{2}`` -> ``x^2``); a lone choice letter
    ``(C)`` -> ``C``;
    ``1{,}000``/``1,000`` -> ``1000`` when the whole answer is one number with thousands
    groups; ``.5`` -> ``0.5``; trailing ``.`` removed; one outer ``{...}`` removed.
    Fallback: None stays None; text it does not understand is kept as is (never rejected).
    """
    if s is None:
        return None
    s = str(s).translate(_MINUS_CHARS).strip()
    if _BOX_RE.search(s):
        inner = extract_boxed(s).answer
        if inner is not None:
            s = inner
    s = s.replace("\\(", "").replace("\\)", "").replace("\\[", "").replace("\\]", "")
    s = s.replace("\\$", "")
    s = s.strip().strip("$").strip()
    s = re.sub(r"\\[dt]frac(?![A-Za-z])", r"\\frac", s)
    s = re.sub(r"\\(left|right|displaystyle|quad|qquad)(?![A-Za-z])", "", s)
    s = re.sub(r"\\[!,;:]", "", s).replace("\\ ", " ").replace("~", " ")
    s = re.sub(r"\^\s*\{?\s*\\circ\s*\}?", "", s).replace("°", "").replace("\\degree", "")
    s = s.replace("\\%", "").replace("%", "")
    # trailing unit text after something containing a digit: "5\text{ cm}", "10 \mbox{inches}"
    m = re.search(r"\\(?:text|mbox|mathrm)\s*\{([^{}]*)\}\s*\.?\s*$", s)
    if m and _UNIT_WORD.fullmatch(m.group(1)) and re.search(r"\d", s[:m.start()]):
        s = s[:m.start()]
    s = _unwrap_macro(s, _TEXT_MACROS)
    s = re.sub(r"\\sqrt\s*([0-9A-Za-z])", r"\\sqrt{\1}", s)
    s = _convert_fracs(s)
    s = s.replace("{,}", ",")
    # "x = 3" -> "3" (one "=", variable-like left side; "\le", "<=" etc. untouched)
    if s.count("=") == 1 and not re.search(r"[<>!]=|=[<>]", s):
        lhs, rhs = s.split("=")
        if _LHS_VAR.fullmatch(lhs) and rhs.strip():
            s = rhs
    s = re.sub(r"\s+", "", s)
    s = re.sub(r"([\^_])\{(\w)\}", r"\1\2", s)
    s = re.sub(r"^\(([A-Ea-e])\)$", r"\1", s)
    if re.fullmatch(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?", s):
        s = s.replace(",", "")
    s = re.sub(r"(?<![\d}])\.(\d)", r"0.\1", s)
    while s.endswith(".") or s.endswith("\\"):
        s = s[:-1]
    while len(s) >= 2 and s[0] == "{" and _brace_group(s, 0) == (s[1:-1], len(s)):
        s = s[1:-1]
    return s


_BRACKETS = {"(": ")", "[": "]", "{": "}"}


def _split_top_level(s: str) -> list[str]:
    """Split on commas not nested in brackets/braces."""
    parts, depth, cur = [], 0, []
    for ch in s:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def _as_collection(s: str) -> tuple[str, list[str], bool] | None:
    """(bracket pair, elements, ordered?) for ``(a,b)``, ``[a,b)``, ``\\{a,b\\}`` or a bare
    ``a,b``; None for a single element."""
    if s.startswith("\\{") and s.endswith("\\}"):
        parts = _split_top_level(s[2:-2])
        return ("set", parts, False) if len(parts) > 1 else None
    if len(s) >= 2 and s[0] in "([" and s[-1] in ")]":
        inner = s[1:-1]
        if not _balanced(inner):  # "(1)/(2)" is not a tuple
            return None
        parts = _split_top_level(inner)
        if len(parts) > 1 and all(_balanced(p) for p in parts):
            return (s[0] + s[-1], parts, True)
        return None
    parts = _split_top_level(s)
    return ("bare", parts, False) if len(parts) > 1 else None


def _balanced(s: str) -> bool:
    depth = 0
    for ch in s:
        depth += ch in "([{"
        depth -= ch in ")]}"
        if depth < 0:
            return False
    return depth == 0


def math_equiv(pred: str | None, gold: str | None, *, rel_tol: float = 1e-9) -> bool:
    """Whether two MATH answers are equivalent.

    1. equal :func:`normalize_math_answer` strings;
    2. both parse as plain numbers or simple fractions (:func:`parse_number`) -> exact/close
       numeric comparison (``0.5`` == ``\\frac12``);
    3. tuples/intervals with the same brackets -> element-wise (ordered); sets ``\\{..\\}`` and
       bare comma lists (``-2, 1`` vs ``1, -2``) -> as multisets, element-wise equivalence.
    No symbolic algebra (no sympy, no eval): ``2\\sqrt{2}`` vs ``\\sqrt{8}`` is NOT recognised.
    Fallback: None on either side -> False.
    """
    if pred is None or gold is None:
        return False
    a, b = normalize_math_answer(pred), normalize_math_answer(gold)
    return _equiv_norm(a, b, rel_tol)


def _equiv_norm(a: str, b: str, rel_tol: float) -> bool:
    if a == b:
        return True
    xa, xb = parse_number(a), parse_number(b)
    if xa is not None and xb is not None:
        return numbers_equal(xa, xb, rel_tol=rel_tol, abs_tol=1e-12)
    ca, cb = _as_collection(a), _as_collection(b)
    if ca and cb and ca[0] == cb[0] and len(ca[1]) == len(cb[1]):
        if ca[2]:
            return all(_equiv_norm(x, y, rel_tol) for x, y in zip(ca[1], cb[1]))
        remaining = list(cb[1])
        for x in ca[1]:
            hit = next((k for k, y in enumerate(remaining) if _equiv_norm(x, y, rel_tol)), None)
            if hit is None:
                return False
            remaining.pop(hit)
        return True
    return False


# --------------------------------------------------------------------------------------------
# AIME
# --------------------------------------------------------------------------------------------


def parse_aime_answer(s: str | int | None) -> int | None:
    """An AIME answer as an int in 0..999 (``"033"`` -> 33, ``"33.0"`` -> 33,
    ``\\boxed{33}`` -> 33). Fallback: None when not an integer in range."""
    if s is None:
        return None
    if isinstance(s, int) and not isinstance(s, bool):
        return s if 0 <= s <= 999 else None
    x = parse_number(normalize_math_answer(str(s)))
    if x is None or x.denominator != 1 or not (0 <= x <= 999):
        return None
    return int(x)


def extract_aime_answer(text: str) -> Extraction:
    """AIME final answer as a canonical integer string: :func:`extract_math_answer` (``boxed``,
    ``fbox``, FALLBACK ``last_number``) then :func:`parse_aime_answer`. An extracted answer
    that is not an integer in 0..999 gives answer None with method ``<method>:invalid``."""
    ex = extract_math_answer(text)
    if ex.answer is None:
        return ex
    v = parse_aime_answer(ex.answer)
    if v is None:
        return Extraction(None, ex.method + ":invalid")
    return Extraction(str(v), ex.method)


def aime_equal(pred: str | int | None, gold: str | int) -> bool:
    """Integer equality of AIME answers; None or invalid predictions are wrong."""
    p, g = parse_aime_answer(pred), parse_aime_answer(gold)
    return p is not None and p == g


# --------------------------------------------------------------------------------------------
# Majority vote
# --------------------------------------------------------------------------------------------


def answer_key(s: str | None, normalize: Callable[[str], str | None] = normalize_math_answer):
    """Vote key of an answer: its exact value when the normalised form is a number/simple
    fraction (so ``0.5`` and ``\\frac{1}{2}`` share a key), else the normalised string.
    Fallback: None (or an answer normalising to "") -> None, i.e. no vote."""
    if s is None:
        return None
    n = normalize(s)
    if not n:
        return None
    x = parse_number(n)
    return ("num", x) if x is not None else ("str", n)


def majority_answer(answers: Sequence[str | None],
                    normalize: Callable[[str], str | None] = normalize_math_answer
                    ) -> tuple[str | None, int]:
    """Self-consistency vote: (first original answer of the largest cluster, its size), with
    clusters keyed by :func:`answer_key`. Ties -> the cluster seen first. None answers do not
    vote; fallback: no valid answer -> (None, 0)."""
    keys = [answer_key(a, normalize) for a in answers]
    counts = Counter(k for k in keys if k is not None)
    if not counts:
        return None, 0
    first: dict = {}
    for i, k in enumerate(keys):
        if k is not None and k not in first:
            first[k] = i
    best = max(counts, key=lambda k: (counts[k], -first[k]))
    return answers[first[best]], counts[best]
