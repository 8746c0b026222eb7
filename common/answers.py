r"""Math final answers: extraction from model text (pure), and checking against a gold answer.

Extraction is pure string work here (no sympy, no ``eval``, no regex with nested quantifiers).
Checking is math-verify's (:mod:`common.answer_check`: a worker process under a hard wall
clock), with an in-process shortcut when both sides are plain integers.

Every extractor returns an :class:`Extraction` whose ``method`` names the rule that fired:

=====================  =====================================================================
method                 meaning
=====================  =====================================================================
``hash``               the first number on the line of the LAST ``####`` (GSM8K format),
                       unless a ``\boxed{}`` comes later: the text's last marker is its answer
``hash_strict``        the LAST ``#### <number>`` with the number right after the marker
``boxed`` / ``fbox``   the content of the LAST ``\boxed{...}`` / ``\fbox{...}``
``boxed_unterminated`` the last ``\boxed{`` never closes (truncated): no answer, never an
                       earlier box
``answer_is``          FALLBACK: the last "answer is <number>" / "answer: <number>"
``last_number``        FALLBACK: the last number in the text (withdrawn by the grader,
                       common.math_benchmarks.grade_sample, for a text the token budget cut
                       off: method ``truncated``, no answer)
``faithful_hash``      the paper's rule (``faithful=True``): the FIRST ``####``, digits and dots
                       only, so a comma ends the number
``none``               nothing found (answer None)
=====================  =====================================================================

Before the flexible rules a run-on continuation is cut off (:func:`cut_run_on`: the model
going on with a new ``Problem:``/``Question:`` after its answer), so the last number of
someone else's problem is never taken. The pitfalls these rules answer (from the harnesses'
issue trackers) are tested one by one in tests/test_answers.py: several ``\boxed{}`` (the last
wins; math-verify alone reads them as a set), a bare comma after a number (``72, so``), an
unterminated ``\boxed{``, nested braces, ``**73**``, GSM8K answers with commas, units, dollars
and trailing text.

The paper's behaviour (PAPER.md §4 defect 11) is kept for comparison behind ``faithful=True``:
the first ``####`` wins and a comma breaks a number (``1,234`` -> ``1``); its MATH check is a
string comparison (what the original fell back to, silently, without its LaTeX dependency).
"""
from __future__ import annotations

import re
from collections import Counter
from fractions import Fraction
from typing import NamedTuple, Sequence


class Extraction(NamedTuple):
    answer: str | None
    method: str


# --------------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------------

# sign, digits in proper thousands groups or plain, decimals, an optional simple fraction /d
_NUM_RE = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?(?:/\d+(?![\d.]))?|-?\.\d+")
_PLAIN_NUM_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_MINUS_CHARS = str.maketrans({"\u2212": "-", "\u2013": "-", "\u2014": "-", "\u00a0": " "})


def clean_number_text(s: str) -> str:
    """Strip the decorations around a numeric answer: whitespace, ``$``/``\\$``, ``%``/``\\%``,
    markdown ``**``, thousands commas, a trailing ``.``; unicode minus -> ``-``.
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
    """Exact value of a plain number (``-12``, ``3.50``, ``.5``, ``1,234``, ``$18``) after
    :func:`clean_number_text`; None for anything else (expressions, fractions, LaTeX)."""
    if s is None:
        return None
    s = clean_number_text(str(s)).replace(" ", "")
    return Fraction(s) if s and _PLAIN_NUM_RE.fullmatch(s) and s != "." else None


def _numbers_in(text: str) -> list[str]:
    """Numbers in text, in order, thousands commas removed; a ``-`` glued to a preceding
    word or digit is a hyphen, not a sign (``5-6`` -> ``5``, ``6``)."""
    text = text.translate(_MINUS_CHARS)
    out = []
    for m in _NUM_RE.finditer(text):
        tok = m.group(0)
        if tok.startswith("-") and m.start() > 0 and (text[m.start() - 1].isalnum() or text[m.start() - 1] in "_)"):
            tok = tok[1:]
        out.append(tok.replace(",", ""))
    return out


def last_number(text: str) -> str | None:
    """The last number in ``text`` with thousands commas removed, or None."""
    nums = _numbers_in(text)
    return nums[-1] if nums else None


_RUN_ON = re.compile(r"\n[ \t]*(?:#+[ \t]*)?(?:Problem|Question|Q|Human|User)[ \t]*\d*[ \t]*:|<\|im_end\|>|<\|endoftext\|>")


def cut_run_on(text: str) -> str:
    """``text`` up to where the model starts someone else's turn: a line beginning
    ``Problem:``, ``Question:``, ``Q:``, ``Human:``, ``User:`` (optionally numbered or after
    ``#``), or an end-of-turn token, after some text of its own (a restated problem at the very
    start is not a cut). Unchanged when there is none."""
    for m in _RUN_ON.finditer(text):
        if text[:m.start()].strip():
            return text[:m.start()]
    return text


# --------------------------------------------------------------------------------------------
# GSM8K format: "#### <number>"
# --------------------------------------------------------------------------------------------

_STRICT_HASH = re.compile(r"####[ \t]*(-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?)(?![\d,.]\d|/)")
_FAITHFUL_HASH = re.compile(r"####\s*(-?[\d.]+)")
_ANSWER_IS = re.compile(r"answer(?:\s+is)?[\s:=*$\\]{0,12}(-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?)", re.IGNORECASE)


def gsm8k_gold(answer_field: str, *, faithful: bool = False) -> str:
    """Gold answer from a GSM8K ``answer`` field: the rest of the line after the LAST
    ``####``, cleaned by :func:`clean_number_text` (``"#### 1,234"`` -> ``"1234"``);
    ``faithful``: the paper's rule (:func:`extract_gsm8k_faithful`, ``"#### 1,234"`` -> ``"1"``).
    No fallback: a field without ``####`` or with nothing after it raises ValueError."""
    if faithful:
        ex = extract_gsm8k_faithful(answer_field)
        if ex.answer is None:
            raise ValueError(f"GSM8K answer has no '#### <number>': {answer_field[-80:]!r}")
        return ex.answer
    i = answer_field.rfind("####")
    if i < 0:
        raise ValueError(f"GSM8K answer has no '####' line: {answer_field[-80:]!r}")
    gold = clean_number_text(answer_field[i + 4:].split("\n", 1)[0])
    if not gold:
        raise ValueError(f"GSM8K answer has nothing after the last '####': {answer_field[-80:]!r}")
    return gold


def extract_gsm8k_strict(text: str) -> Extraction:
    """The strict-format answer: the LAST ``#### <number>`` whose number follows the marker
    directly (spaces allowed; thousands commas allowed and removed). ``#### $18``,
    ``#### **18**`` or no marker -> ``none``: the format was not followed."""
    hits = list(_STRICT_HASH.finditer(text.translate(_MINUS_CHARS)))
    if not hits:
        return Extraction(None, "none")
    return Extraction(hits[-1].group(1).replace(",", ""), "hash_strict")


def extract_gsm8k_faithful(text: str) -> Extraction:
    """The paper's rule (defect 11): the FIRST ``####``, then ``-?[0-9.]+`` -- a thousands
    comma ends the number (``#### 1,234`` -> ``1``), a trailing ``.`` stays."""
    m = _FAITHFUL_HASH.search(text)
    return Extraction(m.group(1), "faithful_hash") if m else Extraction(None, "none")


def extract_gsm8k_answer(text: str) -> Extraction:
    """The model's final answer in GSM8K format, tolerant of its formatting, after
    :func:`cut_run_on`:

    1. ``hash``: the first number on the line of the LAST ``####`` (``"#### $1,234."`` ->
       ``"1234"``, ``"#### **73**"`` -> ``"73"``, ``"#### 12 apples"`` -> ``"12"``), unless a
       ``\\boxed{}`` comes after that line: the final answer is the one the text ends with
       (models often open with ``#### <a guess>``, reason, then box the result);
    2. ``boxed``: the last ``\\boxed{}`` when there is no usable ``####`` or the box comes later
       (an unterminated last box: answer None, ``boxed_unterminated``);
    3. ``answer_is`` (FALLBACK): the last "answer is <number>";
    4. ``last_number`` (FALLBACK): the last number in the text;
    5. ``none``: no number at all.
    """
    text = cut_run_on(text)
    i = text.rfind("####")
    boxes = list(_BOX_RE.finditer(text))
    if i >= 0 and not (boxes and boxes[-1].start() > i):
        nums = _numbers_in(text[i + 4:].split("\n", 1)[0])
        if nums:
            return Extraction(nums[0], "hash")
    box = extract_boxed(text)
    if box.answer is not None or box.method == "boxed_unterminated":
        return box
    hits = list(_ANSWER_IS.finditer(text))
    if hits:
        return Extraction(hits[-1].group(1).replace(",", ""), "answer_is")
    n = last_number(text)
    return Extraction(n, "last_number") if n is not None else Extraction(None, "none")


# --------------------------------------------------------------------------------------------
# MATH format: \boxed{...}
# --------------------------------------------------------------------------------------------

_BOX_RE = re.compile(r"\\(boxed|fbox)(?![A-Za-z])")


def _brace_group(s: str, i: int) -> tuple[str, int] | None:
    """If ``s[i] == "{"``: (content, index after the matching ``}``), nesting honoured and
    escaped braces (``\\{``, ``\\}``) skipped; None when it never closes."""
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


def extract_boxed(text: str) -> Extraction:
    r"""Content of the LAST ``\boxed{...}`` or ``\fbox{...}`` (nested braces kept), also
    ``\boxed 5``. When that last box never closes (truncated output) the answer is None with
    method ``boxed_unterminated``: an earlier box is never taken in its place. ``none`` when
    there is no box."""
    boxes = list(_BOX_RE.finditer(text))
    if not boxes:
        return Extraction(None, "none")
    m = boxes[-1]
    j = m.end()
    while j < len(text) and text[j] == " ":
        j += 1
    if j < len(text) and text[j] == "{":
        g = _brace_group(text, j)
        if g is None:
            return Extraction(None, "boxed_unterminated")
        return Extraction(g[0].strip(), m.group(1))
    tok = re.match(r"[^\s$]+", text[j:])
    if tok and m.end() < j:
        return Extraction(tok.group(0), m.group(1))
    return Extraction(None, "none")


def extract_math_answer(text: str) -> Extraction:
    """MATH-style final answer after :func:`cut_run_on`: :func:`extract_boxed`; when there is
    no box at all, FALLBACK ``last_number``; ``none`` otherwise (an unterminated last box is
    not a fallback case: its answer stays None)."""
    text = cut_run_on(text)
    ex = extract_boxed(text)
    if ex.answer is not None or ex.method == "boxed_unterminated":
        return ex
    n = last_number(text)
    return Extraction(n, "last_number") if n is not None else Extraction(None, "none")


def strip_latex_answer(s: str) -> str:
    """A boxed answer's content without math delimiters, ``\\text{}`` wrappers and markdown
    bold, for text and faithful string comparisons."""
    s = s.strip().strip("$").replace("\\(", "").replace("\\)", "").replace("**", "")
    s = re.sub(r"\\(?:text|textbf|mathrm|mbox)\s*\{([^{}]*)\}", r"\1", s)
    return s.strip()


# --------------------------------------------------------------------------------------------
# AIME: integers 0..999
# --------------------------------------------------------------------------------------------


def parse_aime_answer(s: str | int | None) -> int | None:
    """An AIME answer as an int in 0..999 (``"033"`` -> 33, ``"33.0"`` -> 33,
    ``\\boxed{33}`` -> 33, ``$33$`` -> 33). None when not an integer in range."""
    if s is None or isinstance(s, bool):
        return None
    if isinstance(s, int):
        return s if 0 <= s <= 999 else None
    s = str(s)
    if _BOX_RE.search(s):
        s = extract_boxed(s).answer or ""
    x = parse_number(strip_latex_answer(s))
    if x is None or x.denominator != 1 or not (0 <= x <= 999):
        return None
    return int(x)


def extract_aime_answer(text: str) -> Extraction:
    """AIME final answer as a canonical integer string: :func:`extract_math_answer`, then
    :func:`parse_aime_answer`. An answer that is not an integer in 0..999 gives answer None
    with method ``<method>:invalid``."""
    ex = extract_math_answer(text)
    if ex.answer is None:
        return ex
    v = parse_aime_answer(ex.answer)
    return Extraction(None, ex.method + ":invalid") if v is None else Extraction(str(v), ex.method)


# --------------------------------------------------------------------------------------------
# Checking (math-verify through common.answer_check)
# --------------------------------------------------------------------------------------------


def check_answer(answer: str | None, gold: str | Sequence[str], *, text: bool = False, checker=None):
    """The :class:`common.answer_check.Verdict` of a final answer against the gold answer (or
    any of several equivalent gold forms): ``status`` equal / different / timeout / no_answer.
    ``text``: the gold is a phrase (``No``), compared as text when math-verify finds no match.
    ``checker``: an :class:`common.answer_check.AnswerChecker` (default: the process-wide one,
    started on first use)."""
    from common.answer_check import check_one
    return check_one(answer, gold, text=text, checker=checker)


def gsm8k_equal(pred: str | None, gold: str, *, faithful: bool = False) -> bool:
    """Whether a GSM8K answer equals the gold one (:func:`check_answer`); ``faithful``: the
    paper's ``float(pred) == float(gold)``, where an unparsable side is wrong."""
    if pred is None:
        return False
    if faithful:
        try:
            return float(pred) == float(gold)
        except ValueError:
            return False
    return check_answer(pred, gold).equal


def math_equiv(pred: str | None, gold: str | None, *, faithful: bool = False) -> bool:
    """Whether a MATH answer is equivalent to the gold one (:func:`check_answer`: math-verify,
    so ``2\\sqrt{2}`` equals ``\\sqrt{8}`` and ``\\dfrac{3}{4}`` equals ``0.75``);
    ``faithful``: string equality after stripping spaces and delimiters (the original's
    fallback without its LaTeX dependency)."""
    if pred is None or gold is None:
        return False
    if faithful:
        return re.sub(r"\s+", "", strip_latex_answer(pred)) == re.sub(r"\s+", "", strip_latex_answer(gold))
    return check_answer(pred, gold).equal


def aime_equal(pred: str | int | None, gold: str | int) -> bool:
    """Integer equality of AIME answers; None or invalid predictions are wrong."""
    p, g = parse_aime_answer(pred), parse_aime_answer(gold)
    return p is not None and p == g


# --------------------------------------------------------------------------------------------
# Majority vote
# --------------------------------------------------------------------------------------------


def answer_key(s: str | None):
    """A cheap vote key of one answer (no checker): its exact value when it is a plain number
    (``18``, ``18.0`` and ``$18`` share a key), else the answer without spaces, delimiters,
    ``\\left``/``\\right`` and with ``\\dfrac``/``\\tfrac`` as ``\\frac``. None (or an empty
    answer) -> None, i.e. no vote."""
    if s is None:
        return None
    x = parse_number(s)
    if x is not None:
        return ("num", x)
    t = re.sub(r"\\[dt]frac(?![A-Za-z])", r"\\frac", strip_latex_answer(s))
    t = re.sub(r"\\(?:left|right|displaystyle)(?![A-Za-z])|\\[!,;: ]|\s+", "", t)
    return ("str", t) if t else None


def vote_keys(answers: Sequence[str | None], *, checker=None) -> list:
    """One key per answer such that answers math-verify finds equal share a key: answers are
    grouped by :func:`answer_key`, then each group joins the first earlier group whose first
    answer it equals (checked gold-side first: ``check_answer(new, earlier)``). None answers
    get None (no vote)."""
    keys = [answer_key(a) for a in answers]
    clusters: list[tuple] = []                        # (cluster key, its first answer)
    merged: dict = {}                                 # cheap key -> cluster key
    for a, k in zip(answers, keys):
        if k is None or k in merged:
            continue
        target = next((ck for ck, rep in clusters if check_answer(a, rep, checker=checker).equal), None)
        if target is None:
            clusters.append((k, a))
            target = k
        merged[k] = target
    return [None if k is None else merged[k] for k in keys]


def majority_answer(answers: Sequence[str | None], *, checker=None) -> tuple[str | None, int]:
    """Self-consistency vote: (first original answer of the largest cluster of equal answers,
    its size), clusters by :func:`vote_keys`. Ties -> the cluster seen first. None answers do
    not vote; no valid answer -> (None, 0)."""
    keys = vote_keys(answers, checker=checker)
    counts = Counter(k for k in keys if k is not None)
    if not counts:
        return None, 0
    first: dict = {}
    for i, k in enumerate(keys):
        if k is not None and k not in first:
            first[k] = i
    best = max(counts, key=lambda k: (counts[k], -first[k]))
    return answers[first[best]], counts[best]
