"""Deployable best-of-N selection for code: pure functions, no model and no sandbox here.

What a selector may look at: the candidates' own text and log-probabilities, the task's
*prompt* (its visible examples), tests the *model* wrote, and the candidates' behaviour when
run on inputs taken from those two sources. Never the benchmark's hidden tests: a choice made
with them is the ORACLE (``oracle_pass@n``), which measures coverage, not a deployable score
(PAPER.md §4 defect 5).

Pieces
------
* :func:`parse_prompt_examples` — input/expected pairs written in a HumanEval-style prompt:
  doctest lines (``>>> f(1, 2)`` then the expected value on the next line(s)) and inline
  examples (``f(1, 2) == 3``; also ``=``, ``=>``, ``==>``, ``->``, ``➞``, ``→``, ``returns``,
  ``# returns``, ``# =>``, ``should return``) and described ones (``For x = [1, 2] the output
  should be 3``; ``Input: x = [1, 2], k = 1`` followed by ``Output: 3``). Parsed with
  :mod:`ast`; only calls of the entry point with literal arguments and a literal expected value
  are kept. On the 164 HumanEval prompts this finds 434 examples in 151 tasks; the canonical
  solutions satisfy all but a handful, which are errors in the prompts themselves (HumanEval/47,
  116, 130, 148) — a deployed system sees the same, so they stay.
* :func:`parse_test_asserts` — model-written ``assert`` tests of the forms
  ``assert f(...) == v`` (either side), ``assert f(...) is True/False/None``, ``assert f(...)``
  and ``assert not f(...)``, literal arguments only.
* :func:`example_holds` — does one output (the repr the sandbox's ``outputs`` mode returns)
  satisfy one example; :func:`values_equal` is the comparison (floats within 1e-6).
* :func:`behaviour_signature` — what a candidate did on a list of inputs, the key for
  behaviour clustering (MBR-exec / AlphaCode style).
* Selectors returning ``(index, how)``: :func:`select_logprob`, :func:`select_behaviour`,
  :func:`select_visible`, :func:`select_codet_or_fallback`; and :func:`select_all` over a
  :class:`Candidates` record (which also runs ``majority_vote``, plain self-consistency over
  answer keys with :func:`common.metrics.select_majority`: ties -> the answer seen first).
  ``how`` names the rule that fired, so fallbacks are counted.

Fallbacks (each named in ``how`` and counted in results):
  examples/asserts that do not parse, use keyword arguments or non-literal values are skipped;
  a candidate whose program did not run to the end, or whose every output is an exception,
  has no behaviour signature (it never votes); with no signature at all, no visible example,
  or no model test that any candidate passes, the selectors fall back to the highest mean
  log-probability (``*_fallback_logprob``); ties always go to the higher mean log-probability,
  then to the earlier sample.
"""
from __future__ import annotations

import ast
import itertools
import math
import re
from dataclasses import dataclass, field
from typing import NamedTuple, Sequence

FLOAT_REL_TOL = 1e-6
FLOAT_ABS_TOL = 1e-6
MAX_CALL_CHARS = 4000   # longest example call the inline parser looks at

# Inline separators between a call and its expected value, longest first.
_SEP_RE = re.compile(r"\s*(?:==>|=>|==|->|➞|→|#\s*=+>|#\s*returns?|should\s+return|returns?|=)\s*",
                     re.IGNORECASE)
# "For x = 1, y = 2 the output should be 3" and "Input: x = 1, y = 2" / "Output: 3"
_FOR_RE = re.compile(r"^\s*(?:[*-]\s*)?For\s+(.+?),?\s+the\s+(?:output|result)\s+(?:should|will)\s+be\s+(.+)$",
                     re.IGNORECASE)
_INPUT_RE = re.compile(r"^\s*Input\s*:\s*(.+)$", re.IGNORECASE)
_OUTPUT_RE = re.compile(r"^\s*Output\s*:\s*(.+)$", re.IGNORECASE)
_BARE_WORDS = {"true": True, "false": False, "none": None, "null": None}


class Example(NamedTuple):
    """One input/expected pair. ``args`` is the argument-tuple source handed to the sandbox's
    ``outputs`` mode (``"([1, 2], 3)"``); ``check`` is ``eq`` (output == expected), ``truthy``
    or ``falsy``; ``source`` is ``doctest`` | ``inline`` | ``assert``; ``text`` is the line(s)
    it came from."""
    args: str
    expected: object
    check: str
    source: str
    text: str


# --------------------------------------------------------------------------------------------
# Parsing examples and tests
# --------------------------------------------------------------------------------------------


def _literal_args(call: ast.Call, entry_point: str) -> str | None:
    """Argument-tuple source of ``entry_point(<literals>)``; None for anything else."""
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
            and call.func.id == entry_point) or call.keywords:
        return None
    parts = []
    for a in call.args:
        if isinstance(a, ast.Starred):
            return None
        src = ast.unparse(a)
        try:
            ast.literal_eval(src)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return None
        parts.append(src)
    return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"


def _literal(src: str):
    """(True, value) when ``src`` is a Python literal (or a bare true/false/none/null)."""
    s = src.strip()
    if s.lower() in _BARE_WORDS:
        return True, _BARE_WORDS[s.lower()]
    try:
        return True, ast.literal_eval(s)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False, None


def _expected_from(rest: str):
    """Literal value at the start of ``rest`` (text after a separator): the whole remainder,
    else without a trailing full stop/comma. (False, None) when it is not a literal."""
    rest = rest.strip()
    for q in ('"""', "'''"):  # an example on the docstring's closing line
        if rest.endswith(q):
            rest = rest[:-3].rstrip()
    cands = [rest, rest.rstrip(".,;").rstrip()]
    for cut in (" #", " ("):  # a trailing comment or remark: "'No' (the name should ...)"
        if cut in rest:
            cands.append(rest.split(cut, 1)[0].rstrip(".,; "))
    for cand in cands:
        if cand:
            ok, v = _literal(cand)
            if ok:
                return True, v
    return False, None


def _param_names(prompt: str, entry_point: str) -> list[str] | None:
    """Positional parameter names of ``entry_point`` as defined in the prompt (None if the
    prompt does not parse or does not define it)."""
    try:
        tree = ast.parse(prompt + ("\n    pass\n" if not prompt.rstrip().endswith("pass") else ""))
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == entry_point:
            a = node.args
            return [x.arg for x in a.posonlyargs + a.args]
    return None


def _described_args(text: str, params: list[str] | None) -> str | None:
    """Argument tuple from a described input: ``x = 1, y = "a"`` (names matched to the
    signature, every parameter given) or a single literal value for a one-parameter function."""
    try:
        call = ast.parse(f"_f({text.strip().rstrip('.,;')})", mode="eval").body
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    if not isinstance(call, ast.Call):
        return None
    if call.keywords and not call.args and params:
        given = {k.arg: k.value for k in call.keywords}
        if set(given) != set(params):
            return None
        call = ast.Call(func=call.func, args=[given[p] for p in params], keywords=[])
    elif call.keywords:
        return None
    call.func = ast.Name(id="_f")
    return _literal_args(call, "_f")


def _doctest_blocks(lines: list[str]):
    """Yield (first line index, source, expected text) for each ``>>>`` statement."""
    i = 0
    while i < len(lines):
        m = re.match(r"\s*>>>\s?(.*)$", lines[i])
        if not m:
            i += 1
            continue
        start, src = i, [m.group(1)]
        i += 1
        while i < len(lines) and (c := re.match(r"\s*\.\.\.\s?(.*)$", lines[i])):
            src.append(c.group(1))
            i += 1
        want = []
        while i < len(lines):
            s = lines[i].strip()
            if not s or s.startswith(">>>") or s.startswith('"""') or s.startswith("'''"):
                break
            if s.endswith('"""') or s.endswith("'''"):
                want.append(s[:-3])
                i += 1
                break
            want.append(s)
            i += 1
        yield start, "\n".join(src), " ".join(w for w in want if w.strip())


def _find_call(text: str, start: int, entry_point: str):
    """The shortest ``entry_point(...)`` call parsing from ``start``: (node, end) or None."""
    stop = min(len(text), start + MAX_CALL_CHARS)
    pos = text.find("(", start)
    if pos < 0:
        return None
    j = pos
    while True:
        j = text.find(")", j + 1, stop)
        if j < 0:
            return None
        try:
            node = ast.parse(text[start:j + 1].strip(), mode="eval").body
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            continue
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == entry_point:
            return node, j + 1
        return None


def parse_prompt_examples(prompt: str, entry_point: str) -> list[Example]:
    """Examples for ``entry_point`` written in a prompt (see the module docstring for forms).

    Doctest: ``>>> f(args)`` (continuation lines ``...``), expected = the following non-blank
    lines up to the next ``>>>``/blank line/end of docstring; a ``>>> f(args) == v`` whose
    output line is ``True`` gives the example ``f(args) == v``. Inline: any other occurrence
    of ``entry_point(`` (not after ``def``) whose call parses, followed on its last line by a
    separator and a literal. Duplicates are dropped (first kept), in prompt order.
    """
    lines = prompt.splitlines()
    blocks = list(_doctest_blocks(lines))
    return _unique(itertools.chain(
        _doctest_examples(blocks, entry_point),
        _inline_examples(lines, entry_point, {start for start, _, _ in blocks}),  # outside doctests
        _described_examples(prompt, lines, entry_point)))


def _unique(examples) -> list[Example]:
    """The examples in order, each (args, expected, check) once (the first kept)."""
    out, seen = [], set()
    for ex in examples:
        key = (ex.args, repr(ex.expected), ex.check)
        if key not in seen:
            seen.add(key)
            out.append(ex)
    return out


def _doctest_examples(blocks, entry_point: str):
    """Examples of the ``>>>`` statements (:func:`_doctest_blocks`)."""
    for _, src, want in blocks:
        try:
            node = ast.parse(src.strip(), mode="eval").body
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            continue
        if not want and isinstance(node, ast.Compare):
            want = "True"   # ">>> f(x) == v" with no output line states the equality itself
        ok, val = _literal(want) if want else (False, None)
        if not ok:
            continue
        args = _literal_args(node, entry_point)
        if args is not None:
            yield Example(args, val, "eq", "doctest", f">>> {src}\n{want}")
            continue
        # >>> f(x) == v  /  True
        if (isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], ast.Eq)
                and val is True):
            left, right = node.left, node.comparators[0]
            for call, other in ((left, right), (right, left)):
                a = _literal_args(call, entry_point)
                if a is not None:
                    ok2, v2 = _literal(ast.unparse(other))
                    if ok2:
                        yield Example(a, v2, "eq", "doctest", f">>> {src}\n{want}")
                    break


def _inline_examples(lines: list[str], entry_point: str, skip_lines: set[int]):
    """``f(args) <separator> value`` written anywhere but on the lines in ``skip_lines`` and
    after ``def``."""
    offsets, pos = [], 0
    for ln in lines:
        offsets.append(pos)
        pos += len(ln) + 1
    text = "\n".join(lines)
    pat = re.compile(r"(?<![\w.])" + re.escape(entry_point) + r"\s*\(")
    for m in pat.finditer(text):
        line_no = text.count("\n", 0, m.start())
        if line_no in skip_lines or re.search(r"\bdef\s+$", text[offsets[line_no]:m.start()]):
            continue
        found = _find_call(text, m.start(), entry_point)
        if not found:
            continue
        node, end = found
        args = _literal_args(node, entry_point)
        if args is None:
            continue
        eol = text.find("\n", end)
        rest = text[end: len(text) if eol < 0 else eol]
        sep = _SEP_RE.match(rest)
        if not sep:
            continue
        ok, val = _expected_from(rest[sep.end():])
        if ok:
            snippet = text[m.start(): len(text) if eol < 0 else eol].strip()
            yield Example(args, val, "eq", "inline", snippet)


def _described_examples(prompt: str, lines: list[str], entry_point: str):
    """Described examples: ``For x = .. the output should be v``; ``Input: ...`` then ``Output: v``."""
    params = _param_names(prompt, entry_point)
    for i, ln in enumerate(lines):
        m = _FOR_RE.match(ln)
        pair = (m.group(1), m.group(2), ln.strip()) if m else None
        mi = _INPUT_RE.match(ln)
        if mi and i + 1 < len(lines) and (mo := _OUTPUT_RE.match(lines[i + 1])):
            pair = (mi.group(1), mo.group(1), ln.strip() + "\n" + lines[i + 1].strip())
        if not pair:
            continue
        args = _described_args(pair[0], params)
        ok, val = _expected_from(pair[1])
        if args is not None and ok:
            yield Example(args, val, "eq", "described", pair[2])


def _assert_example(test: ast.expr, entry_point: str, text: str) -> Example | None:
    if isinstance(test, ast.Call):
        a = _literal_args(test, entry_point)
        return Example(a, True, "truthy", "assert", text) if a is not None else None
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        a = _literal_args(test.operand, entry_point)
        return Example(a, False, "falsy", "assert", text) if a is not None else None
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        op = test.ops[0]
        left, right = test.left, test.comparators[0]
        for call, other in ((left, right), (right, left)):
            a = _literal_args(call, entry_point)
            if a is None:
                continue
            ok, v = _literal(ast.unparse(other))
            if not ok:
                return None
            if isinstance(op, ast.Eq):
                return Example(a, v, "eq", "assert", text)
            if isinstance(op, ast.Is) and (v is None or isinstance(v, bool)):
                return Example(a, v, "eq", "assert", text)
            return None
    return None


def parse_test_asserts(text: str, entry_point: str) -> list[Example]:
    """Model-written ``assert`` tests of ``entry_point`` as examples (forms in the module
    docstring). The text is parsed whole when it parses, else statement by statement from each
    line starting with ``assert`` (a generation cut off mid-line loses only its last test).
    Duplicates are dropped, order kept."""
    stmts: list[tuple[ast.Assert, str]] = []
    try:
        tree = ast.parse(text)
        src_lines = text.splitlines()
        for node in ast.walk(tree):
            if isinstance(node, ast.Assert):
                seg = "\n".join(src_lines[node.lineno - 1: node.end_lineno]).strip()
                stmts.append((node, seg))
        stmts.sort(key=lambda s: s[0].lineno)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        for line in text.splitlines():
            s = line.strip()
            if not s.startswith("assert"):
                continue
            try:
                node = ast.parse(s).body[0]
            except (SyntaxError, ValueError, MemoryError, RecursionError, IndexError):
                continue
            if isinstance(node, ast.Assert):
                stmts.append((node, s))
    found = (_assert_example(node.test, entry_point, seg) for node, seg in stmts)
    return _unique(ex for ex in found if ex is not None)


# --------------------------------------------------------------------------------------------
# Checking outputs
# --------------------------------------------------------------------------------------------


def values_equal(got, want) -> bool:
    """Python equality, except that floats compare within rel/abs 1e-6 (doctests print rounded
    values) and containers compare element-wise with the same rule (list vs tuple still differ,
    as ``==`` says)."""
    if isinstance(got, bool) or isinstance(want, bool):
        return got == want
    if isinstance(got, (int, float)) and isinstance(want, (int, float)):
        if isinstance(got, float) or isinstance(want, float):
            if math.isnan(got) or math.isnan(want):
                return math.isnan(got) and math.isnan(want)
            return math.isclose(got, want, rel_tol=FLOAT_REL_TOL, abs_tol=FLOAT_ABS_TOL)
        return got == want
    if isinstance(got, (list, tuple)) and isinstance(want, (list, tuple)):
        return (type(got) is type(want) and len(got) == len(want)
                and all(values_equal(g, w) for g, w in zip(got, want)))
    if isinstance(got, dict) and isinstance(want, dict):
        return got.keys() == want.keys() and all(values_equal(got[k], want[k]) for k in got)
    try:
        return bool(got == want)
    except Exception:  # noqa: BLE001 - exotic values compare unequal
        return False


_UNPARSED = object()


def parse_output(output: str):
    """The value behind one ``outputs``-mode repr; a sentinel for errors (``!...``) and for
    reprs that are not literals."""
    if output.startswith("!"):
        return _UNPARSED
    if output in ("nan", "inf", "-inf"):
        return float(output)
    try:  # a repr: no bare-word mapping here ("true" is never a Python repr)
        return ast.literal_eval(output)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return _UNPARSED


def example_holds(output: str, ex: Example) -> bool:
    """Does one output satisfy one example? An exception/stopped output never does; an output
    that is not a literal matches an ``eq`` example only when its repr equals the expected
    value's repr."""
    if output.startswith("!"):
        return False
    v = parse_output(output)
    if v is _UNPARSED:
        return ex.check == "eq" and output == repr(ex.expected)
    if ex.check == "truthy":
        return bool(v)
    if ex.check == "falsy":
        return not bool(v)
    return values_equal(v, ex.expected)


def behaviour_signature(status: str, outputs: Sequence[str] | None) -> tuple | None:
    """Clustering key of one candidate: its outputs on the shared inputs, in order.

    None (no vote) when the program did not run to the end (status other than ``passed``:
    syntax error, crash at import, timeout, memory), when there are no inputs, or when every
    output is an exception (broken programs would otherwise agree with each other)."""
    if status != "passed" or not outputs:
        return None
    if all(o.startswith("!") for o in outputs):
        return None
    return tuple(outputs)


# --------------------------------------------------------------------------------------------
# Selectors
# --------------------------------------------------------------------------------------------


def _score(s) -> float:
    if s is None:
        return -math.inf
    v = float(s)
    return -math.inf if math.isnan(v) else v


def _best(indices: Sequence[int], scores: Sequence[float | None] | None) -> int:
    """Highest score among ``indices``; ties -> earliest index."""
    if not scores:
        return min(indices)
    return max(indices, key=lambda i: (_score(scores[i]), -i))


def select_logprob(scores: Sequence[float | None]) -> tuple[int, str]:
    """Highest (mean or sum) log-probability; ties -> earliest. Fallback: no score at all ->
    index 0, ``how`` = ``no_logprobs``."""
    if not scores:
        raise ValueError("select_logprob: no candidates")
    if all(_score(s) == -math.inf for s in scores):
        return 0, "no_logprobs"
    return _best(range(len(scores)), scores), "logprob"


def select_behaviour(signatures: Sequence[tuple | None],
                     scores: Sequence[float | None] | None = None) -> tuple[int, str]:
    """Majority vote over execution behaviour: the largest cluster of equal signatures wins.

    Ties between clusters -> the cluster holding the highest-scoring member, then the cluster
    seen first; inside the cluster -> its highest-scoring member (all members behave alike on
    the inputs). None signatures never vote. Fallback: no signature at all -> highest score
    (``behaviour_fallback_logprob``)."""
    if not signatures:
        raise ValueError("select_behaviour: no candidates")
    clusters: dict[tuple, list[int]] = {}
    for i, s in enumerate(signatures):
        if s is not None:
            clusters.setdefault(s, []).append(i)
    if not clusters:
        return select_logprob(scores)[0] if scores else 0, "behaviour_fallback_logprob"
    sc = scores or [None] * len(signatures)
    best = max(clusters.values(),
               key=lambda m: (len(m), max(_score(sc[i]) for i in m), -m[0]))
    how = "behaviour_unanimous" if len(clusters) == 1 and len(best) == len(signatures) else "behaviour"
    return _best(best, scores), how


def select_visible(example_passes: Sequence[Sequence[bool]],
                   scores: Sequence[float | None] | None = None) -> tuple[int, str]:
    """Filter on the prompt's visible examples, then rerank by score.

    ``example_passes[i][j]`` says whether candidate i satisfied visible example j. Keep the
    candidates passing the most examples (all of them when any candidate does: ``visible_all``;
    else ``visible_most``, a fallback), then take the highest score. Fallbacks: no examples in
    the prompt or no candidate passing any -> highest score (``visible_fallback_logprob``)."""
    if not example_passes:
        raise ValueError("select_visible: no candidates")
    counts = [sum(bool(x) for x in row) for row in example_passes]
    n_ex = max(len(row) for row in example_passes)
    if n_ex == 0 or max(counts) == 0:
        i = select_logprob(scores)[0] if scores else 0
        return i, "visible_fallback_logprob"
    top = max(counts)
    keep = [i for i, c in enumerate(counts) if c == top]
    return _best(keep, scores), ("visible_all" if top == n_ex else "visible_most")


def codet_matrix(outputs: Sequence[Sequence[str] | None], tests: Sequence[Example],
                 offsets: Sequence[int]) -> list[list[bool]]:
    """Pass matrix for CodeT: ``[i][j]`` = candidate i's output at input position
    ``offsets[j]`` satisfies test j. A candidate without outputs (its program did not run)
    passes nothing."""
    rows = []
    for outs in outputs:
        if outs is None:
            rows.append([False] * len(tests))
        else:
            rows.append([example_holds(outs[o], t) for t, o in zip(tests, offsets)])
    return rows


def select_codet_or_fallback(pass_matrix: Sequence[Sequence[bool]],
                             scores: Sequence[float | None] | None = None) -> tuple[int, str]:
    """CodeT dual agreement (:func:`common.metrics.select_codet`) on model-written tests.

    Fallback: no tests, or no candidate passing any test -> highest score
    (``codet_fallback_logprob``); dual agreement itself breaks ties by the earliest group."""
    from common.metrics import select_codet
    if not pass_matrix:
        raise ValueError("select_codet_or_fallback: no candidates")
    if not any(any(r) for r in pass_matrix):
        i = select_logprob(scores)[0] if scores else 0
        return i, "codet_fallback_logprob"
    return select_codet(pass_matrix), "codet"


SELECTORS = ("mean_logprob", "sum_logprob", "behaviour_majority", "visible_filter", "codet",
             "majority_vote")


@dataclass
class Candidates:
    """Everything a selector may use about the n candidates of one task (no hidden tests).

    ``visible[i]`` / ``codet[i]``: per-example / per-test pass lists; ``signatures[i]``: the
    behaviour key or None. ``passed`` (benchmark verdicts) is carried for scoring only and is
    never read by a selector."""
    task_id: str
    passed: list[bool]
    mean_logprob: list[float | None]
    sum_logprob: list[float | None]
    signatures: list[tuple | None] = field(default_factory=list)
    visible: list[list[bool]] = field(default_factory=list)
    codet: list[list[bool]] = field(default_factory=list)

    def subset(self, idx: Sequence[int]) -> "Candidates":
        pick = lambda xs: [xs[i] for i in idx] if xs else []  # noqa: E731
        return Candidates(self.task_id, pick(self.passed), pick(self.mean_logprob),
                          pick(self.sum_logprob), pick(self.signatures), pick(self.visible),
                          pick(self.codet))


def select_all(c: Candidates, selectors: Sequence[str] = SELECTORS) -> dict[str, tuple[int, str]]:
    """``{selector: (chosen index, how)}`` for every selector named (see :data:`SELECTORS`).
    A selector whose inputs were not computed (e.g. no model tests) is left out."""
    n = len(c.passed)
    out = {}
    for s in selectors:
        if s == "mean_logprob":
            out[s] = select_logprob(c.mean_logprob)
        elif s == "sum_logprob":
            out[s] = select_logprob(c.sum_logprob)
        elif s == "behaviour_majority":
            if c.signatures:
                out[s] = select_behaviour(c.signatures, c.mean_logprob)
        elif s == "majority_vote":  # self-consistency: signatures are answer keys
            if c.signatures:
                from common.metrics import select_majority
                voted = any(k is not None for k in c.signatures)
                out[s] = (select_majority(c.signatures), "majority" if voted else "majority_fallback_first")
        elif s == "visible_filter":
            if c.visible:
                out[s] = select_visible(c.visible, c.mean_logprob)
        elif s == "codet":
            if c.codet:
                out[s] = select_codet_or_fallback(c.codet, c.mean_logprob)
        else:
            raise ValueError(f"unknown selector {s!r}; choose from {', '.join(SELECTORS)}")
        if s in out and not (0 <= out[s][0] < n):
            raise AssertionError(f"selector {s} chose {out[s][0]} of {n}")
    return out
