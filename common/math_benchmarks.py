r"""Math benchmarks for scoring and evaluation: offline sources, gold answers, per-sample grading.

Every loader returns ``(tasks, info)`` like :func:`common.benchmarks.load_tasks`: tasks carry
``task_id``, ``problem``, ``answer`` (the gold answer as a string) and ``golds`` (every
accepted gold form, checked as alternatives), ``answer_kind``, plus the source's fields; info
names the source, the file and its sha256, and the task counts.

===============  =========  ====================================================================
bench            format     source
===============  =========  ====================================================================
``procedural``   ``####``   data/procedural_math.jsonl: multi-step arithmetic word problems with
                            integer answers, levels 1-5, written by common/mathgen.py (seed 0)
``champ``        boxed      CHAMP (270 competition problems, MIT licence) from the
                            ``champ-dataset==1.0.0`` wheel: every problem, gold forms derived
                            from its answer as :func:`champ_golds` says
``champ_int``    boxed      the 79 CHAMP problems whose answer is an integer
``gsm8k``        ``####``   openai/gsm8k files through common.benchmarks (``--data-path``)
``math500``      boxed      HuggingFaceH4/MATH-500 files through common.benchmarks
``aime``         boxed      AI-MO/aimo-validation-aime files through common.benchmarks
===============  =========  ====================================================================

:func:`grade_samples` grades model outputs (``task_id``, ``completion``) the way
evals/score.py grades code: per sample the final answer (flexible extraction), ``passed``
(math-verify equality with any gold form, :mod:`common.answer_check`), and beside it the
strict-format answer and verdict (``#### <number>`` right after the marker, or a ``\boxed{}``)
and, when asked, the paper's faithful verdict (PAPER.md §4 defect 11).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from common.results import REPO_ROOT, InputError, file_sha256

PROCEDURAL_PATH = REPO_ROOT / "data" / "procedural_math.jsonl"
CHAMP_PACKAGE = "champ-dataset==1.0.0"


@dataclass(frozen=True)
class MathFormat:
    """How a benchmark asks for its final answer: ``hash`` (``#### <number>``) or ``boxed``."""
    bench: str
    style: str


MATH_BENCHMARKS = {b: MathFormat(b, s) for b, s in (
    ("procedural", "hash"), ("champ", "boxed"), ("champ_int", "boxed"), ("gsm8k", "hash"),
    ("math500", "boxed"), ("aime", "boxed"))}


# --------------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------------


def load_procedural(path: str | Path | None = None) -> tuple[list[dict], dict]:
    """The procedural problems (default data/procedural_math.jsonl) with their levels."""
    from common.benchmarks import read_records, require_fields
    p = Path(path) if path else PROCEDURAL_PATH
    rows = read_records(p)
    require_fields(rows, ("task_id", "level", "problem", "answer", "steps"), "procedural", p)
    tasks = [{**r, "answer": str(r["answer"]), "golds": [str(r["answer"])], "answer_kind": "integer"} for r in rows]
    info = {"source": "common/mathgen.py (procedural arithmetic word problems)", "path": str(p),
            "levels": {str(lv): sum(1 for r in rows if r["level"] == lv) for lv in sorted({r["level"] for r in rows})}}
    return tasks, info


def champ_path() -> Path:
    """CHAMP's dataset file inside the installed ``champ-dataset`` wheel."""
    try:
        from importlib import resources
        return Path(str(resources.files("champ_dataset") / "dataset_files" / "v0.json"))
    except ModuleNotFoundError:
        raise InputError(f"CHAMP needs the {CHAMP_PACKAGE} package (pip install {CHAMP_PACKAGE})") from None


_SPAN = r"@@([^@]+)@@"
_ALT = r"(?:, or (?:equivalently|an equivalent form such as) (?:@@([^@]+)@@|(-?\d+)))"
_EXPRESSION_FORMS = (re.compile(rf"{_SPAN}{_ALT}?"), re.compile(rf"{_SPAN}, or approximately [^@]*"),
                     re.compile(rf"{_SPAN} \(i\.e\.,.*\)", re.S), re.compile(rf"The [A-Za-z ,]+ (?:is|to|of) {_SPAN}"))
_NUMBER_PHRASES = (re.compile(r"(-?\d+)\s+(?:\(|[A-Za-z])[^0-9@]*"), re.compile(r"The [A-Za-z ,]+ (?:is|to|of) (-?\d+)"))
_NUMBER_SET = re.compile(r"-?\d+(?:(?:,| and|, and) -?\d+)+")


def champ_golds(raw_answer: str, answer: str) -> tuple[str, list[str]]:
    """(kind, gold forms) of a CHAMP answer (``raw_answer`` marks math spans with ``@@``):

    * ``integer``: the answer is an integer (``239``);
    * ``expression``: the answer is one math span, maybe with an equivalent form
      (``@@C(10, 5)@@, or equivalently @@252@@`` -> both), an approximation or an "(i.e., ...)"
      gloss (dropped), or after a lead-in (``The limit exists and is equal to @@2/3@@``);
    * ``number``: a number with words around it and no other number (``98 values``,
      ``0 is the only possible value``, ``The only possible value for the limit is 4``);
    * ``set``: integers joined by commas and "and" (``1, 4 and 9`` -> ``1, 4, 9``);
    * ``text``: anything else (``No``, ``x=0, y=2 and x=9, y=11``), compared as math and, failing
      that, as text.
    """
    a = answer.strip()
    if re.fullmatch(r"-?\d+", a):
        return "integer", [a]
    for form in _EXPRESSION_FORMS:
        m = form.fullmatch(raw_answer.strip())
        if m:
            return "expression", [g for g in m.groups() if g]
    if "@@" not in raw_answer:
        for form in _NUMBER_PHRASES:
            m = form.fullmatch(a)
            if m:
                return "number", [m.group(1)]
        if _NUMBER_SET.fullmatch(a):
            return "set", [re.sub(r",? and", ",", a)]
    return "text", [a]


@lru_cache(maxsize=1)
def _champ_problems(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)["problems"]


def load_champ(integer_only: bool = False) -> tuple[list[dict], dict]:
    """CHAMP's problems in the dataset's order (``champ/<identifier>``, e.g.
    ``champ/P_Combinatorics_1``); ``integer_only``: the 79 with an integer answer."""
    p = champ_path()
    tasks = []
    for pid, r in _champ_problems(str(p)).items():
        kind, golds = champ_golds(r["_raw_answer"], r["_answer"])
        if integer_only and kind != "integer":
            continue
        tasks.append({"task_id": f"champ/{pid}", "problem": r["_text"], "answer": golds[0], "golds": golds,
                      "answer_kind": kind, "source_answer": r["_answer"], "category": r["category"]})
    kinds: dict = {}
    for t in tasks:
        kinds[t["answer_kind"]] = kinds.get(t["answer_kind"], 0) + 1
    return tasks, {"source": f"CHAMP, {CHAMP_PACKAGE} wheel (MIT), dataset_files/v0.json", "path": str(p),
                   "answer_kinds": kinds}


def load_math_tasks(bench: str, limit: int | None = None, path: str | None = None) -> tuple[list[dict], dict]:
    """``(tasks, info)`` of a math benchmark of :data:`MATH_BENCHMARKS`; info has name, source,
    path, path_from, sha256, n_tasks_total, n_tasks, task_ids (in order) and the loader's counts.
    ``path`` replaces the procedural file; gsm8k/math500/aime need it (or their variable)."""
    if bench not in MATH_BENCHMARKS:
        raise InputError(f"unknown math benchmark {bench!r}; choose from: {', '.join(MATH_BENCHMARKS)}")
    if bench in ("gsm8k", "math500", "aime"):
        from common.benchmarks import load_tasks
        tasks, info = load_tasks(bench, path=path)
        tasks = [{**t, "golds": [t["answer"]], "answer_kind": "integer" if bench != "math500" else "expression"}
                 for t in tasks]
    elif bench == "procedural":
        tasks, info = load_procedural(path)
        info.update(path_from="path argument" if path else "repository file")
    else:
        if path:
            raise InputError(f"--bench {bench} reads the installed {CHAMP_PACKAGE} wheel; it takes no data path")
        tasks, info = load_champ(integer_only=bench == "champ_int")
        info.update(path_from="package")
    info = {**info, "name": bench, "sha256": file_sha256(info["path"]), "n_tasks_total": len(tasks)}
    if limit is not None:
        if limit < 1:
            raise InputError(f"--limit must be >= 1, got {limit}")
        tasks = tasks[:limit]
    info.update(n_tasks=len(tasks), task_ids=[t["task_id"] for t in tasks])
    return tasks, info


# --------------------------------------------------------------------------------------------
# Grading
# --------------------------------------------------------------------------------------------


def extract(style: str, text: str):
    """(flexible, strict) :class:`common.answers.Extraction` of a completion in ``style``."""
    from common import answers as A
    if style == "hash":
        return A.extract_gsm8k_answer(text), A.extract_gsm8k_strict(text)
    strict = A.extract_boxed(text)
    return A.extract_math_answer(text), (strict if strict.answer is not None else A.Extraction(None, "none"))


def faithful_verdict(style: str, text: str, task: dict) -> tuple[str | None, bool]:
    """(answer, passed) under the paper's rules (defect 11): ``hash``: the first ``####``, a
    comma ends the number, gold read the same way from the task's solution (or answer), compared
    as floats; ``boxed``: the last box compared as a string with the gold."""
    from common import answers as A
    if style == "hash":
        pred = A.extract_gsm8k_faithful(text).answer
        src = task.get("solution") or f"#### {task['answer']}"
        gold = A.extract_gsm8k_faithful(src).answer
        return pred, gold is not None and A.gsm8k_equal(pred, gold, faithful=True)
    pred = A.extract_boxed(text).answer
    return pred, A.math_equiv(pred, task["answer"], faithful=True)


def grade_sample(completion: str, task: dict, style: str, checker, faithful: bool = False,
                 finish_reason: str | None = None) -> dict:
    """The grading fields of one completion against ``task``: ``answer``, ``extraction``,
    ``passed``, ``status``, ``check`` (how it was decided), ``gold`` (and ``golds`` when the
    task accepts several forms), ``strict_answer``, ``strict_passed``; with ``faithful`` also
    ``faithful_answer`` and ``faithful_passed``. ``finish_reason="length"`` (the token budget cut
    the text off) withdraws the last-number fallback: an unfinished text has no final number, and
    the last one of a cut-off loop is a guess (extraction ``truncated``, no answer)."""
    from common.answers import Extraction, check_answer
    flex, strict = extract(style, completion)
    if finish_reason == "length" and flex.method == "last_number":
        flex = Extraction(None, "truncated")
    text = task.get("answer_kind") == "text"
    golds = task.get("golds") or [task["answer"]]
    v = check_answer(flex.answer, golds, text=text, checker=checker)
    if strict.answer is None:
        strict_ok = False
    elif strict.answer == flex.answer:
        strict_ok = v.equal
    else:
        strict_ok = check_answer(strict.answer, golds, text=text, checker=checker).equal
    row = {"answer": flex.answer, "extraction": flex.method, "passed": v.equal, "status": v.status,
           "check": v.how, "gold": task["answer"], "strict_answer": strict.answer, "strict_passed": strict_ok}
    if len(golds) > 1:
        row["golds"] = golds
    if faithful:
        row["faithful_answer"], row["faithful_passed"] = faithful_verdict(style, completion, task)
    return row


def grade_samples(rows: list[dict], tasks_by_id: dict, bench: str, checker, faithful: bool = False) -> list[dict]:
    """Each sample row (``task_id``, ``completion``, optionally ``finish_reason``) with
    :func:`grade_sample`'s fields added; a row whose ``finish_reason`` is ``length`` is graded as
    cut off."""
    style = MATH_BENCHMARKS[bench].style
    return [{**r, **grade_sample(r["completion"], tasks_by_id[r["task_id"]], style, checker, faithful,
                                 r.get("finish_reason"))}
            for r in rows]
