r"""Checking a final answer against a gold answer with math-verify, under a hard wall clock.

math-verify (HuggingFace, pinned 0.9.0) parses both sides into sympy (through
latex2sympy2_extended) and compares numbers, expressions, sets, intervals and equations; its
``verify(gold, answer)`` is not symmetric (gold first). Its time limits use ``signal.alarm``,
which works only in a process's main thread, and with them off a pathological answer
(``3^{10^{9}}``) runs for minutes. So no sympy runs in the caller's process: checks go to a
worker process (:mod:`common._answer_worker`, started on first use, one at a time) whose main
thread runs :func:`verify_in_worker` with math-verify's own alarms (``mv_timeout_s``), and the
caller holds a wall clock on every check (``limit_s``): past it the worker is killed, the next
check starts a new one, and the verdict is ``timeout``. A check therefore ends within
``limit_s`` (plus the worker's start-up), whatever the text.

How a pair is checked (``Verdict.how``):

===============  ================================================================================
``integer``      both sides are plain integers (``1,234``, ``$18``, ``18.00``): compared here
``math_verify``  ``verify(parse(gold), parse(answer))`` with each side as a LaTeX math span
                 (``$...$``, :func:`as_math`), over every pair of gold forms and parsed answers
``text``         a phrase gold (``No``, ``text=True``) that math-verify does not match:
                 compared as lower-cased text without ``\text{}``, spaces, final punctuation
``none``         no answer to check
===============  ================================================================================

``status``: ``equal``, ``different``, ``timeout`` (math-verify's alarm fired on some comparison
and none was equal, the wall clock killed the worker, or the worker died on the check: it
could not be decided within the bounds) or ``no_answer``.
"""
from __future__ import annotations

import atexit
import json
import os
import re
import select
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Sequence

CHECK_LIMIT_S = 10.0       # the caller's wall clock on one check
MV_TIMEOUT_S = 3           # math-verify's own alarms (parse, each comparison) inside the worker
START_LIMIT_S = 120.0      # the worker's start-up (imports sympy): generous for a loaded machine
STATUSES = ("equal", "different", "timeout", "no_answer")
_INT_RE = re.compile(r"[+-]?\d+(?:\.0*)?")


@dataclass(frozen=True)
class Verdict:
    status: str                                   # equal | different | timeout | no_answer
    how: str                                      # integer | math_verify | text | none
    gold_parsed: list = field(default_factory=list)     # math-verify's parse of the gold (str)
    answer_parsed: list = field(default_factory=list)   # ... and of the answer

    @property
    def equal(self) -> bool:
        return self.status == "equal"

    def to_dict(self) -> dict:
        return {"status": self.status, "how": self.how, "gold_parsed": self.gold_parsed,
                "answer_parsed": self.answer_parsed}


def as_math(s: str, text: bool = False) -> str:
    """``s`` as math-verify input: unchanged when it already carries delimiters (``$``,
    ``\\(``, ``\\[``, ``\\boxed``), else ``$s$``; a phrase (``text``) as ``$\\text{s}$``."""
    s = s.strip()
    if text:
        return "$\\text{" + s.replace("{", "").replace("}", "") + "}$"
    if "$" in s or "\\(" in s or "\\[" in s or "\\boxed" in s:
        return s
    return f"${s}$"


def same_text(a: str, b: str) -> bool:
    """Phrase equality: lower case, ``\\text{}``/``**``/``$`` dropped, spaces and final
    punctuation ignored (``\\text{No.}`` == ``no``)."""
    from common.answers import strip_latex_answer

    def norm(s):
        return re.sub(r"[\s.!]+", "", strip_latex_answer(s).lower())
    return bool(norm(a)) and norm(a) == norm(b)


def integer_value(s: str) -> int | None:
    """The value of a plain integer answer (commas, ``$``, ``**``, ``.00`` tolerated), else None."""
    from common.answers import clean_number_text
    c = clean_number_text(s).replace(" ", "")
    return int(Fraction(c)) if _INT_RE.fullmatch(c) else None


# --------------------------------------------------------------------------------------------
# Inside the worker (main thread, where math-verify's alarms work)
# --------------------------------------------------------------------------------------------


def verify_in_worker(gold: list[str], answer: str, text: bool, mv_timeout_s: int | None) -> dict:
    """One check with math-verify, as :func:`check_one` describes; returns ``Verdict.to_dict()``.
    Runs only in the worker process: it imports sympy and relies on ``signal.alarm``."""
    from math_verify import parse, verify
    from math_verify.errors import TimeoutException
    timed_out = False

    def parsed(s, as_text=False):
        nonlocal timed_out
        try:
            return parse(as_math(s, as_text), parsing_timeout=mv_timeout_s, raise_on_error=True)
        except TimeoutException:
            timed_out = True
        except Exception:  # noqa: BLE001 - an unparsable side is an empty parse, as in math-verify
            pass
        return []
    golds = [x for g in gold for x in parsed(g, text)]
    preds = parsed(answer)
    equal = False
    for g in golds:
        for t in preds:
            try:
                equal = verify(g, t, timeout_seconds=mv_timeout_s, raise_on_error=True)
            except TimeoutException:
                timed_out = True
            except Exception:  # noqa: BLE001 - a failed comparison is not a match, as in math-verify
                equal = False
            if equal:
                break
        if equal:
            break
    how = "math_verify"
    if not equal and text and any(same_text(answer, g) for g in gold):
        equal, how = True, "text"
    status = "equal" if equal else ("timeout" if timed_out else "different")
    return Verdict(status, how, [str(x) for x in golds], [str(x) for x in preds]).to_dict()


# --------------------------------------------------------------------------------------------
# In the caller
# --------------------------------------------------------------------------------------------


class AnswerChecker:
    """math-verify checks in one worker process with a wall clock of ``limit_s`` per check
    (see the module docstring). ``mv_timeout_s`` is math-verify's own alarm inside the worker
    (None turns it off: then only the wall clock bounds a check). Use as a context manager, or
    call :meth:`close`. Checks from several threads take turns."""

    def __init__(self, limit_s: float = CHECK_LIMIT_S, mv_timeout_s: int | None = MV_TIMEOUT_S):
        self.limit_s = limit_s
        self.mv_timeout_s = mv_timeout_s
        self.proc: subprocess.Popen | None = None
        self._buf = b""
        self._lock = threading.Lock()
        self.n_killed = 0

    def settings(self) -> dict:
        """What results record about the checker."""
        from importlib.metadata import version
        return {"checker": "math-verify", "math_verify_version": version("math-verify"),
                "limit_s": self.limit_s, "mv_timeout_s": self.mv_timeout_s}

    def _start(self) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [str(_repo_root())] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])))
        self.proc = subprocess.Popen([sys.executable, "-m", "common._answer_worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        self._buf = b""
        if self._read_line(time.monotonic() + START_LIMIT_S) != {"ready": True}:
            self._kill()
            raise RuntimeError("the math-verify worker did not start (is math-verify installed?)")

    def _kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            for f in (self.proc.stdin, self.proc.stdout):
                f.close()
            self.proc = None

    def _read_line(self, deadline: float) -> dict | None:
        """The worker's next reply line, or None when the deadline passes or the worker dies."""
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return json.loads(line)

    def verify(self, gold: list[str], answer: str, text: bool = False) -> Verdict:
        """math-verify's verdict on one pair (no shortcuts), ``timeout`` past the wall clock."""
        with self._lock:
            return self._verify(gold, answer, text)

    def _verify(self, gold: list[str], answer: str, text: bool) -> Verdict:
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        req = {"gold": gold, "answer": answer, "text": text, "mv_timeout_s": self.mv_timeout_s}
        try:
            self.proc.stdin.write((json.dumps(req) + "\n").encode())
            self.proc.stdin.flush()
            reply = self._read_line(time.monotonic() + self.limit_s)
        except BrokenPipeError:
            reply = None
        if reply is None:                         # past the wall clock, or the worker died on it
            self.n_killed += 1
            self._kill()
            return Verdict("timeout", "math_verify")
        return Verdict(**reply)

    def close(self) -> None:
        self._kill()

    def __enter__(self) -> "AnswerChecker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _repo_root():
    from common.results import REPO_ROOT
    return REPO_ROOT


_DEFAULT: AnswerChecker | None = None


def default_checker() -> AnswerChecker:
    """The process-wide checker (default limits), started on first use, closed at exit."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = AnswerChecker()
        atexit.register(_DEFAULT.close)
    return _DEFAULT


def check_one(answer: str | None, gold: str | Sequence[str], *, text: bool = False,
              checker: AnswerChecker | None = None) -> Verdict:
    """The verdict on ``answer`` against ``gold`` (a string, or several equivalent gold forms):
    ``no_answer`` for None/empty; ``integer`` when both sides are plain integers; otherwise
    math-verify in the worker of ``checker`` (default :func:`default_checker`)."""
    golds = [gold] if isinstance(gold, str) else list(gold)
    if answer is None or not str(answer).strip():
        return Verdict("no_answer", "none")
    a = integer_value(answer)
    if not text and a is not None and all(integer_value(g) is not None for g in golds):
        return Verdict("equal" if a in {integer_value(g) for g in golds} else "different", "integer",
                       [str(integer_value(g)) for g in golds], [str(a)])
    return (checker or default_checker()).verify(golds, str(answer), text)
