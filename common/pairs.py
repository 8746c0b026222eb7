"""Repair pairs: schema, validation, pair files, the repair prompt, and mining pairs from scored attempts.

Pure functions only (no model, no sandbox, no files except :func:`validate_pairs_file`). The
problems pairs are mined from are in :mod:`common.problems`; dedup by normalised hash in
:mod:`common.pycode`, n-gram decontamination in :mod:`common.decontam`, the corrupted-pairs
control's edits in :mod:`common.corruptions`.

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
"""
from __future__ import annotations

import ast
from pathlib import Path

from common.pycode import code_hash, dedup_indices, parse_error, validated_lines
from common.results import file_sha256

PAIR_FIELDS = ("signature", "tests", "broken", "error", "fixed")
PROVENANCE_FIELDS = ("problem_id", "broken_index", "fixed_index", "source", "model", "seed")

REPAIR_TEMPLATE = ("Implement: {signature}\n\nTests:\n{tests}\n\nMy attempt:\n```python\n{broken}\n```\n\n"
                   "Error:\n{error}\n\nFix and output the corrected code only.")
ANSWER_TEMPLATE = "```python\n{fixed}\n```"


# --------------------------------------------------------------------------------------------
# Pair schema and validation
# --------------------------------------------------------------------------------------------


def make_pair(*, signature: str, tests, broken: str, error: str, fixed: str, **provenance) -> dict:
    """A pair dict in schema order; code and error have surrounding blank lines stripped.

    ``provenance``: the optional fields of :data:`PROVENANCE_FIELDS` (``problem_id``,
    ``broken_index``, ``fixed_index``, ``source``, ``model``, ``seed``; None when not given),
    placed after the required ones in that order, then any extra fields as given."""
    pair = {"signature": signature.strip("\n"), "tests": [t.strip() for t in tests],
            "broken": broken.strip("\n"), "error": error.strip("\n"), "fixed": fixed.strip("\n")}
    pair.update({f: provenance.pop(f, None) for f in PROVENANCE_FIELDS})
    pair.update(provenance)
    return pair


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
                elif (why := parse_error(s)) is not None:
                    problems.append(f"tests[{i}] does not parse: {why}")
                elif not any(isinstance(n, ast.Assert) for n in ast.walk(ast.parse(s))):
                    problems.append(f"tests[{i}] is not an assert statement")
    if isinstance(row.get("fixed"), str) and row["fixed"].strip():
        if (why := parse_error(row["fixed"])) is not None:
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
    pairs, bad = validated_lines(path, validate_pair)
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
