"""Table-driven tests for common/pairs.py (schema validation, prompts, mining), common/problems.py
(problem parsing, no reference leak: PAPER.md §4 defect 1), common/pycode.py (dedup),
common/decontam.py (decontamination) and common/corruptions.py."""
import ast
import json
from pathlib import Path

import pytest

from common.corruptions import CORRUPTIONS, corruptions
from common.decontam import benchmark_index, decontamination_report, humaneval_index
from common.pairs import (PAIR_FIELDS, dedup_pairs, error_text, format_bad_lines, load_pairs, make_pair, mine_pairs,
                          raw_markdown_text, repair_answer, repair_messages, repair_prompt, validate_pair,
                          validate_pairs_file)
from common.problems import (body_lines, leaks_body, load_problems, parse_problem, problem_text, solver_prompt,
                             variant_prompt)
from common.pycode import code_hash, dedup_indices, normalize_code
from common.results import InputError

FIX = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parent.parent

GOOD = make_pair(signature='def inc(x):\n    """Add one."""', tests=["assert inc(1) == 2", "assert inc(0) == 1"],
                 broken="def inc(x):\n    return x", error="AssertionError", fixed="def inc(x):\n    return x + 1",
                 problem_id="p0", broken_index=0, fixed_index=1, source="test", model="m", seed=0)


# --------------------------------------------------------------------------------------------
# schema validation
# --------------------------------------------------------------------------------------------

VALIDATE_CASES = [
    ("well formed", GOOD, []),
    ("provenance may be null", {**GOOD, "problem_id": None, "seed": None, "model": None}, []),
    ("provenance may be absent", {k: GOOD[k] for k in PAIR_FIELDS}, []),
    ("extra fields are kept", {**GOOD, "corruption": {"kind": "x"}}, []),
    ("missing fixed", {k: v for k, v in GOOD.items() if k != "fixed"}, ["missing field 'fixed'"]),
    ("missing two fields", {k: v for k, v in GOOD.items() if k not in ("error", "signature")},
     ["missing field 'signature'", "missing field 'error'"]),
    ("empty broken", {**GOOD, "broken": ""}, ["'broken' is empty"]),
    ("whitespace error", {**GOOD, "error": " \n\t"}, ["'error' is empty"]),
    ("signature not a string", {**GOOD, "signature": ["def f():"]}, ["'signature' must be a string, got list"]),
    ("tests a string", {**GOOD, "tests": "assert inc(1) == 2"}, ["'tests' must be a list of assert strings, got str"]),
    ("tests empty", {**GOOD, "tests": []}, ["'tests' is empty"]),
    ("a test is not an assert", {**GOOD, "tests": ["assert inc(1) == 2", "inc(1)"]},
     ["tests[1] is not an assert statement"]),
    ("a test does not parse", {**GOOD, "tests": ["assert inc(1) =="]}, ["tests[0] does not parse"]),
    ("a test is a number", {**GOOD, "tests": [3]}, ["tests[0] must be a non-empty string"]),
    ("unparsable fixed", {**GOOD, "fixed": "def inc(x)\n    return x + 1"}, ["'fixed' does not parse"]),
    ("fixed with a null byte", {**GOOD, "fixed": "x = 1\x00"}, ["'fixed' does not parse"]),
    ("seed as text", {**GOOD, "seed": "0"}, ["'seed' must be int or null, got str"]),
    ("bool is not an index", {**GOOD, "broken_index": True}, ["'broken_index' must be int or null, got bool"]),
    ("not an object", [1, 2], ["expected a JSON object, got list"]),
]


@pytest.mark.parametrize("name,row,expected", VALIDATE_CASES, ids=[c[0] for c in VALIDATE_CASES])
def test_validate_pair(name, row, expected):
    got = validate_pair(row)
    assert len(got) == len(expected), got
    for g, e in zip(got, expected):
        assert g.startswith(e), (g, e)


def test_validate_pairs_file_names_every_bad_line():
    pairs, bad = validate_pairs_file(FIX / "pairs_malformed.jsonl")
    assert [n for n, _ in bad] == [2, 3, 4, 5, 7, 8, 9, 10]      # line 6 is blank, 1 and 11 are good
    assert len(pairs) == 2
    msgs = dict(bad)
    assert "missing field 'fixed'" in msgs[2] and "not valid JSON" in msgs[3]
    assert "'fixed' does not parse" in msgs[4] and "'broken' is empty" in msgs[5]
    line = format_bad_lines("f.jsonl", bad)
    assert "\n" not in line and all(f"line {n}:" in line for n, _ in bad)
    with pytest.raises(InputError, match="8 malformed line"):
        load_pairs(FIX / "pairs_malformed.jsonl")


def test_validate_pairs_file_empty_and_missing(tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n\n")
    assert validate_pairs_file(tmp_path / "empty.jsonl") == ([], [(0, "the file holds no pairs")])
    _, bad = validate_pairs_file(tmp_path / "nope.jsonl")
    assert bad and bad[0][0] == 0 and "no such file" in bad[0][1]


def test_valid_fixture_loads():
    pairs = load_pairs(FIX / "pairs_valid.jsonl")
    assert len(pairs) == 4 and all(validate_pair(p) == [] for p in pairs)


# --------------------------------------------------------------------------------------------
# prompts
# --------------------------------------------------------------------------------------------


def test_repair_prompt_is_exactly_the_paper_template():
    expected = ('Implement: def inc(x):\n    """Add one."""\n\nTests:\nassert inc(1) == 2\nassert inc(0) == 1\n\n'
                "My attempt:\n```python\ndef inc(x):\n    return x\n```\n\nError:\nAssertionError\n\n"
                "Fix and output the corrected code only.")
    assert repair_prompt(GOOD) == expected
    assert repair_answer(GOOD["fixed"]) == "```python\ndef inc(x):\n    return x + 1\n```"
    msgs = repair_messages(GOOD)
    assert [m["role"] for m in msgs] == ["system", "user", "assistant"]
    assert msgs[0]["content"] == "You are a Python coder."
    assert msgs[1]["content"] == expected and msgs[2]["content"] == repair_answer(GOOD["fixed"])
    assert [m["role"] for m in repair_messages(GOOD, system="")] == ["user", "assistant"]
    assert raw_markdown_text(GOOD) == expected + "\n\n" + repair_answer(GOOD["fixed"]) + "\n"


def test_make_pair_strips_blank_lines_around_code():
    p = make_pair(signature="\ndef f():\n", tests=[" assert f() "], broken="\n\nx\n", error="E\n", fixed="\ny = 1\n\n")
    assert (p["signature"], p["tests"], p["broken"], p["error"], p["fixed"]) == ("def f():", ["assert f()"], "x", "E",
                                                                                 "y = 1")


def test_error_text_names_the_status_when_the_sandbox_gave_none():
    assert error_text("failed", "  AssertionError\n") == "AssertionError"
    assert error_text("timeout", "").startswith("Timeout")
    assert error_text("memory", "").startswith("MemoryError")
    assert error_text("weird", "") == "status: weird"


# --------------------------------------------------------------------------------------------
# problem parsing: the solver never sees the reference body
# --------------------------------------------------------------------------------------------

F = "```"
PARSE_CASES = [
    # (name, model text, expected reason, expected entry point, expected number of tests)
    ("one-line docstring", f'''{F}python
def add_pair(a, b):
    """Return a plus b."""
    total = a + b
    return total

assert add_pair(1, 2) == 3
assert add_pair(0, 0) == 0
assert add_pair(-1, 1) == 0
{F}''', "ok", "add_pair", 3),
    ("multi-line docstring (defect 1)", f'''Here is a problem:
{F}python
def window_max(values, k):
    """Return the maximum of every window of k consecutive values.

    The windows slide one step at a time. Example: window_max([1, 3, 2], 2) -> [3, 3]
    """
    result = []
    for start in range(len(values) - k + 1):
        result.append(max(values[start:start + k]))
    return result

assert window_max([1, 3, 2], 2) == [3, 3]
assert window_max([5], 1) == [5]
assert window_max([1, 2, 3, 4], 3) == [3, 4]
{F}''', "ok", "window_max", 3),
    ("multi-line signature and imports", f'''{F}python
from typing import List
import math

def scaled_norms(rows: List[List[float]],
                 scale: float = 1.0) -> List[float]:
    \'\'\'Euclidean norm of each row, multiplied by scale.\'\'\'
    norms = [math.sqrt(sum(x * x for x in row)) for row in rows]
    return [scale * n for n in norms]

assert scaled_norms([[3, 4]]) == [5.0]
assert scaled_norms([[3, 4]], 2) == [10.0]
{F}''', "ok", "scaled_norms", 2),
    ("docstring mentions code, body has comments", f'''{F}python
def count_evens(nums):
    """Count even numbers; a one-liner like sum(1 for n in nums) is fine."""
    # walk the list once
    evens = 0
    for n in nums:
        if n % 2 == 0:
            evens += 1
    return evens

assert count_evens([1, 2, 4]) == 2
assert count_evens([]) == 0
{F}''', "ok", "count_evens", 2),
    ("no docstring", f'''{F}python
def double_all(xs):
    doubled = [2 * x for x in xs]
    return doubled

assert double_all([1]) == [2]
assert double_all([]) == []
{F}''', "ok", "double_all", 2),
    ("tests under a main guard, print calls dropped", f'''{F}python
def middle_char(s):
    """Return the middle character of an odd-length string."""
    mid = len(s) // 2
    return s[mid]

if __name__ == "__main__":
    assert middle_char("abc") == "b"
    assert middle_char("x") == "x"
    print("ok")
{F}''', "ok", "middle_char", 2),
    ("helper function; entry point found from the asserts", f'''{F}python
def _is_vowel(ch):
    return ch.lower() in "aeiou"

def strip_vowels(text):
    """Remove vowels from text."""
    kept = [c for c in text if not _is_vowel(c)]
    return "".join(kept)

assert strip_vowels("banana") == "bnn"
assert strip_vowels("xyz") == "xyz"
assert True
{F}''', "ok", "strip_vowels", 2),
    ("code and tests in two blocks", f'''{F}python
def halve(n):
    """Integer half of n."""
    half = n // 2
    return half
{F}
Tests:
{F}python
assert halve(4) == 2
assert halve(5) == 2
{F}''', "ok", "halve", 2),
    ("unfenced", '''def cube(n):
    """Cube of n."""
    result = n * n * n
    return result

assert cube(2) == 8
assert cube(-1) == -1''', "ok", "cube", 2),
    ("echoed instruction before the block", f'''Put everything in one {F}python block and write nothing else.
{F}python
def triple(n):
    """Three times n."""
    value = 3 * n
    return value

assert triple(1) == 3
assert triple(0) == 0
{F}''', "ok", "triple", 2),
    ("nested function in the body", f'''{F}python
def apply_twice(f_name, x):
    """Apply the named operation twice."""
    def step(v):
        return v + 1 if f_name == "inc" else v - 1
    return step(step(x))

assert apply_twice("inc", 1) == 3
assert apply_twice("dec", 1) == -1
{F}''', "ok", "apply_twice", 2),
    ("one assert only", f"{F}python\ndef f(x):\n    y = x + 1\n    return y\n\nassert f(1) == 2\n{F}", "few_tests", None, 0),
    ("asserts not calling the function", f"{F}python\ndef f(x):\n    y = x + 1\n    return y\n\nassert True\nassert 1 == 1\n{F}",
     "few_tests", None, 0),
    ("body is pass", f'{F}python\ndef f(x):\n    """Doc."""\n    pass\n\nassert f(1) is None\nassert f(2) is None\n{F}',
     "trivial", None, 0),
    ("returns a constant", f"{F}python\ndef f(x):\n    return 3\n\nassert f(1) == 3\nassert f(2) == 3\n{F}", "trivial", None, 0),
    ("returns its argument", f"{F}python\ndef f(x):\n    return x\n\nassert f(1) == 1\nassert f(2) == 2\n{F}", "trivial", None, 0),
    ("raises NotImplementedError", f"{F}python\ndef f(x):\n    raise NotImplementedError\n\nassert f(1)\nassert f(2)\n{F}",
     "trivial", None, 0),
    ("syntax error", f"{F}python\ndef f(x)\n    return x + 1\nassert f(1) == 2\n{F}", "syntax_error", None, 0),
    ("no function", f"{F}python\nx = 1\nassert x == 1\nassert x\n{F}", "no_function", None, 0),
    ("no code at all", "", "no_code", None, 0),
]


@pytest.mark.parametrize("name,text,reason,entry,n_tests", PARSE_CASES, ids=[c[0] for c in PARSE_CASES])
def test_parse_problem(name, text, reason, entry, n_tests):
    prob, why = parse_problem(text)
    assert why == reason
    if reason != "ok":
        assert prob is None
        return
    assert prob.entry_point == entry and len(prob.tests) == n_tests
    assert all(t.startswith("assert ") and "\n" not in t for t in prob.tests)
    # the reference really is the implementation, and it passes its own asserts (in-process: trusted text)
    ns: dict = {}
    exec(prob.reference + "\n" + "\n".join(prob.tests), ns)
    assert "assert" not in prob.reference and "print(" not in prob.reference


OK_CASES = [c for c in PARSE_CASES if c[2] == "ok"]


@pytest.mark.parametrize("name,text,reason,entry,n_tests", OK_CASES, ids=[c[0] for c in OK_CASES])
def test_solver_prompt_never_contains_the_reference_body(name, text, reason, entry, n_tests):
    """Acceptance for defect 1: the solver prompt and every pair's signature show no body line."""
    prob, _ = parse_problem(text)
    body = body_lines(prob.reference, prob.entry_point, min_len=1)
    assert body, "the check needs a body to look for"
    prompt = solver_prompt(prob)
    assert leaks_body(prompt, prob.reference, prob.entry_point) == []
    prompt_lines = {l.strip() for l in prompt.splitlines()}
    assert not [l for l in body if l in prompt_lines and not l.startswith(('"""', "'''"))]
    # the signature is imports + the entry point's def line + its docstring: with a placeholder
    # body it parses to exactly that, and nothing of the implementation
    *imports, fn = ast.parse(prob.signature + "\n    ...").body
    assert all(isinstance(n, (ast.Import, ast.ImportFrom)) for n in imports)
    assert isinstance(fn, ast.FunctionDef) and fn.name == prob.entry_point
    assert (ast.get_docstring(fn) or "") == prob.docstring
    assert [ast.unparse(n) for n in fn.body[1 if prob.docstring else 0:]] == ["..."]
    # pairs mined from this problem carry the same signature
    atts = [{"index": 0, "code": "def x(): pass", "passed": False, "status": "failed", "error": "E"},
            {"index": 1, "code": prob.reference, "passed": True, "status": "passed", "error": ""}]
    pairs, _ = mine_pairs(prob.to_dict(), atts, problem_id=name)
    assert pairs and leaks_body(pairs[0]["signature"], prob.reference, prob.entry_point) == []


def test_multiline_docstring_is_kept_whole_in_the_signature():
    prob, _ = parse_problem(PARSE_CASES[1][1])
    assert "The windows slide one step at a time." in prob.signature
    assert prob.signature.rstrip().endswith('"""')
    assert "result = []" not in solver_prompt(prob) and "range(len(values)" not in solver_prompt(prob)


def test_variant_prompt_shows_the_whole_problem():
    prob, _ = parse_problem(PARSE_CASES[0][1])
    text = variant_prompt(prob, "harder")
    assert "total = a + b" in text and "harder variant" in text and "assert add_pair(1, 2) == 3" in text
    with pytest.raises(ValueError):
        variant_prompt(prob, "sideways")


# --------------------------------------------------------------------------------------------
# problem files
# --------------------------------------------------------------------------------------------


def test_external_problems_file_is_valid_verified_shape_and_leak_free():
    probs = load_problems(REPO / "data" / "external_problems.jsonl")
    assert len(probs) >= 40 and len({p["id"] for p in probs}) == len(probs)
    for p in probs:
        assert len(p["tests"]) == 3
        assert leaks_body(p["signature"], p["reference"], p["entry_point"]) == []
        ns: dict = {}
        exec(p["reference"] + "\n" + "\n".join(p["tests"]), ns)   # hand-written, trusted
        assert len(corruptions(p["reference"], p["entry_point"])) >= 3


def test_load_problems_names_bad_lines(tmp_path):
    good = {"id": "a", "entry_point": "f", "signature": "def f(x):\n    \"\"\"Doc.\"\"\"",
            "reference": "def f(x):\n    \"\"\"Doc.\"\"\"\n    return x * 2", "tests": ["assert f(1) == 2", "assert f(0) == 0"]}
    leak = {**good, "id": "b", "signature": good["reference"]}
    lines = [json.dumps(good), "{", json.dumps({**good, "id": "c", "tests": ["assert f(1) == 2"]}), json.dumps(leak),
             json.dumps(good)]
    (tmp_path / "p.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as e:
        load_problems(tmp_path / "p.jsonl")
    msg = str(e.value)
    assert "line 2: not valid JSON" in msg and "line 3: 'tests' needs at least 2" in msg
    assert "line 4: 'signature' shows the reference body" in msg and "line 5: duplicate id 'a'" in msg
    assert "line 1" not in msg


# --------------------------------------------------------------------------------------------
# normalised-hash dedup
# --------------------------------------------------------------------------------------------

BASE_CODE = "def f(xs):\n    total = 0\n    for x in xs:\n        total += x\n    return total\n"
SAME = [
    ("comments", "def f(xs):\n    # running sum\n    total = 0  # start\n    for x in xs:\n        total += x\n    return total\n"),
    ("blank lines and spacing", "\n\ndef f( xs ):\n\n    total=0\n    for x in xs :\n        total+=x\n\n    return total"),
    ("docstring", 'def f(xs):\n    """Sum of xs."""\n    total = 0\n    for x in xs:\n        total += x\n    return total'),
    ("tabs", "def f(xs):\n\ttotal = 0\n\tfor x in xs:\n\t\ttotal += x\n\treturn total\n"),
    ("redundant parentheses", "def f(xs):\n    total = (0)\n    for x in (xs):\n        total += (x)\n    return (total)\n"),
]
DIFFERENT = [
    ("renamed variable", BASE_CODE.replace("total", "acc")),
    ("different logic", BASE_CODE.replace("total += x", "total -= x")),
    ("different constant", BASE_CODE.replace("total = 0", "total = 1")),
]


@pytest.mark.parametrize("name,code", SAME, ids=[c[0] for c in SAME])
def test_dedup_collapses_trivial_differences(name, code):
    assert normalize_code(code)[1] == "ast"
    assert code_hash(code) == code_hash(BASE_CODE)


@pytest.mark.parametrize("name,code", DIFFERENT, ids=[c[0] for c in DIFFERENT])
def test_dedup_keeps_real_differences(name, code):
    assert code_hash(code) != code_hash(BASE_CODE)


def test_dedup_quotes_and_trailing_commas():
    assert code_hash("x = ['a', 'b',]") == code_hash('x = ["a", "b"]')


def test_dedup_fallback_for_unparsable_code():
    a = "def f(x)\n    return   x + 1"
    b = "def f(x)  \n\n  return x + 1\n"
    assert normalize_code(a) == ("def f(x) return x + 1", "text")
    assert code_hash(a) == code_hash(b)
    assert code_hash(a) != code_hash("def f(x)\n    return x + 2")


def test_dedup_indices_and_pairs():
    keep, dropped = dedup_indices([BASE_CODE, SAME[0][1], DIFFERENT[0][1], SAME[1][1]])
    assert keep == [0, 2] and dropped == 2
    p2 = {**GOOD, "broken": GOOD["broken"] + "  # same", "fixed": GOOD["fixed"] + "\n"}
    kept, n = dedup_pairs([GOOD, p2, {**GOOD, "fixed": "def inc(x):\n    return 1 + x"}])
    assert n == 1 and len(kept) == 2


# --------------------------------------------------------------------------------------------
# decontamination
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def he_index():
    return humaneval_index()


def test_decontamination_flags_humaneval_copies(he_index, humaneval_tasks):
    t = humaneval_tasks[0]
    copy_ = t["prompt"] + t["canonical_solution"]
    reformatted = copy_.replace("    ", "\t").replace("'", '"') + "\n# my own comment\n"
    partial = t["canonical_solution"]
    unrelated = (REPO / "data" / "external_problems.jsonl").read_text().splitlines()[0]
    items = {"copy": copy_, "reformatted": reformatted, "solution_only": partial, "unrelated": unrelated,
             "too_short": "def f(): return 1"}
    rep = decontamination_report(items, he_index)
    assert rep["ngram"] == 13 and rep["n_checked"] == 5
    assert set(rep["flagged_ids"]) == {"copy", "reformatted", "solution_only"}
    assert all(f["task_id"] == t["task_id"] for f in rep["flagged"])
    assert {f["id"]: f["fraction"] for f in rep["flagged"]}["copy"] == 1.0
    assert rep["max_overlap_fraction"] == 1.0


def test_decontamination_threshold_and_small_benchmark():
    bench = [{"task_id": "B/0", "prompt": " ".join(f"w{i}" for i in range(20)), "canonical_solution": ""}]
    idx = benchmark_index(bench, n=5)
    half = " ".join(f"w{i}" for i in range(6)) + " " + " ".join(f"z{i}" for i in range(6))   # 2 of 8 grams shared
    rep = decontamination_report({"half": half}, idx)
    assert rep["flagged"][0]["shared"] == 2 and rep["flagged"][0]["fraction"] == 0.25
    assert decontamination_report({"half": half}, idx, max_fraction=0.5)["n_flagged"] == 0
    assert decontamination_report({"half": half}, idx, min_shared=3)["n_flagged"] == 0


def test_external_problems_are_not_contaminated(he_index):
    probs = load_problems(REPO / "data" / "external_problems.jsonl")
    rep = decontamination_report({p["id"]: problem_text(p) for p in probs}, he_index)
    assert rep["n_flagged"] == 0 and rep["max_overlap_fraction"] == 0.0


# --------------------------------------------------------------------------------------------
# mining
# --------------------------------------------------------------------------------------------

PROB = {"signature": 'def inc(x):\n    """Add one."""', "tests": ["assert inc(1) == 2", "assert inc(0) == 1"]}


def att(i, code, passed, status=None, error="E"):
    return {"index": i, "code": code, "passed": passed, "status": status or ("passed" if passed else "failed"),
            "error": "" if passed else error}


BAD1, BAD2, GOOD1, GOOD2 = "def inc(x):\n    return x", "def inc(x):\n    return x - 1", \
    "def inc(x):\n    return x + 1", "def inc(x):\n    return 1 + x"
MINE_CASES = [
    # (name, attempts, max_pairs, expected (broken_index, fixed_index) list, expected counts subset)
    ("first failing + first passing", [att(0, GOOD1, True), att(1, BAD1, False), att(2, BAD2, False)], 1,
     [(1, 0)], {"n_failing": 2, "n_passing": 1}),
    ("all pass: skipped", [att(0, GOOD1, True), att(1, GOOD2, True)], 1, [], {"n_pairs": 0}),
    ("all fail: skipped", [att(0, BAD1, False), att(1, BAD2, False)], 1, [], {"n_pairs": 0, "n_passing": 0}),
    ("junk (no code) is never broken", [att(0, "", False), att(1, BAD1, False), att(2, GOOD1, True)], 1,
     [(1, 2)], {"n_junk": 1}),
    ("only junk fails", [att(0, "  ", False), att(1, GOOD1, True)], 1, [], {"n_junk": 1}),
    ("harness errors are not the model's", [att(0, BAD1, False, "harness_error"), att(1, GOOD1, True)], 1, [],
     {"n_harness": 1, "n_failing": 0}),
    ("multi: distinct failing up to max, fixed cycles",
     [att(0, BAD1, False), att(1, BAD1 + "  # again", False), att(2, BAD2, False), att(3, GOOD1, True),
      att(4, "def inc(x):\n    return x * 2", False), att(5, GOOD2, True)], 4,
     [(0, 3), (2, 5), (4, 3)], {"n_duplicate_failing": 1, "n_pairs": 3}),
    ("multi capped", [att(0, BAD1, False), att(1, BAD2, False), att(2, GOOD1, True)], 1, [(0, 2)], {"n_pairs": 1}),
    ("flaky: same code passing and failing is not a pair", [att(0, GOOD1, False, "timeout", ""), att(1, GOOD1, True)], 1,
     [], {"n_pairs": 0}),
]


@pytest.mark.parametrize("name,attempts,max_pairs,expected,counts", MINE_CASES, ids=[c[0] for c in MINE_CASES])
def test_mine_pairs(name, attempts, max_pairs, expected, counts):
    pairs, c = mine_pairs(PROB, attempts, max_pairs=max_pairs, problem_id="p", model="m", seed=3)
    assert [(p["broken_index"], p["fixed_index"]) for p in pairs] == expected
    for k, v in counts.items():
        assert c[k] == v, (k, c)
    for p in pairs:
        assert validate_pair(p) == []
        assert (p["problem_id"], p["model"], p["seed"], p["source"]) == ("p", "m", 3, "self-mined")


def test_mined_timeout_error_is_named():
    pairs, _ = mine_pairs(PROB, [att(0, "def inc(x):\n    while True: pass", False, "timeout", ""),
                                 att(1, GOOD1, True)])
    assert pairs[0]["error"].startswith("Timeout")


# --------------------------------------------------------------------------------------------
# corruptions
# --------------------------------------------------------------------------------------------

CORRUPT_SRC = '''def f(xs, k):
    """Sum the elements greater than k, scanning by index."""
    total = 0
    found = False
    for i in range(len(xs)):
        if xs[i] > k:
            total += xs[i]
            found = True
    return total if found else -1
'''


def test_corruptions_cover_every_kind_and_change_the_code():
    cs = corruptions(CORRUPT_SRC, "f")
    assert {k for k, _, _ in cs} == set(CORRUPTIONS)
    base = code_hash(CORRUPT_SRC)
    for kind, site, code in cs:
        ast.parse(code)
        assert code_hash(code) != base, (kind, site)
        assert '"""Sum the elements' in code          # the docstring is never dropped


@pytest.mark.parametrize("kind,needle", [
    ("range_off_by_one", "range(len(xs) - 1)"), ("index_off_by_one", "xs[i + 1]"), ("compare_swap", "xs[i] >= k"),
    ("arith_swap", "total -= xs[i]"), ("bool_flip", "found = True\n    for"),
])
def test_corruption_examples(kind, needle):
    assert any(needle in code for k, _, code in corruptions(CORRUPT_SRC, "f") if k == kind)


def test_corruptions_need_the_entry_point():
    with pytest.raises(ValueError):
        corruptions(CORRUPT_SRC, "g")
