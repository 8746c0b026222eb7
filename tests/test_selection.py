"""Deployable selection (common/selection.py): example parsing from real HumanEval prompts,
model-test parsing, output checks, behaviour clustering, the visible-example filter, CodeT
wiring and every selector on ties / all-fail / all-pass / a single sample."""
import math

import pytest

from common.selection import (Candidates, Example, behaviour_signature, codet_matrix, example_holds,
                              parse_prompt_examples, parse_test_asserts, select_all, select_behaviour,
                              select_codet_or_fallback, select_logprob, select_visible, values_equal)


@pytest.fixture(scope="module")
def he():
    from common.benchmarks import load_tasks
    return {t["task_id"]: t for t in load_tasks("humaneval")[0]}


def _ex(he, tid):
    t = he[tid]
    return parse_prompt_examples(t["prompt"], t["entry_point"])


# --------------------------------------------------------------------------------------------
# prompt examples, from the real HumanEval prompts
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("tid,n,first_args,first_expected,source", [
    ("HumanEval/0", 2, "([1.0, 2.0, 3.0], 0.5)", False, "doctest"),           # >>> then output line
    ("HumanEval/2", 1, "(3.5,)", 0.5, "doctest"),                              # one float argument
    ("HumanEval/66", 6, "('',)", 0, "inline"),                                 # digitSum("") => 0
    ("HumanEval/73", 3, "([1, 2, 3, 5, 4, 7, 9, 6],)", 4, "inline"),          # f(...) == 4
    ("HumanEval/76", 6, "(1, 4)", True, "inline"),                             # bare `true`
    ("HumanEval/79", 2, "(15,)", "db1111db", "inline"),                        # f(15)   # returns "..."
    ("HumanEval/108", 3, "([],)", 0, "doctest"),                               # >>> f([]) == 0, no output line
    ("HumanEval/120", 3, "([-3, -4, 5], 3)", [-4, -3, 5], "described"),        # Input: arr = .., k = ..
    ("HumanEval/133", 5, "([1, 2, 3],)", 14, "described"),                     # For lst = .. the output should be
    ("HumanEval/141", 2, "('example.txt',)", "Yes", "inline"),                 # # => 'No' (remark)
    ("HumanEval/161", 3, "('1234',)", "4321", "inline"),                       # f(x) = y
])
def test_prompt_examples_from_real_prompts(he, tid, n, first_args, first_expected, source):
    exs = _ex(he, tid)
    assert len(exs) == n, [e.text for e in exs]
    assert exs[0].args == first_args
    assert exs[0].expected == first_expected and type(exs[0].expected) is type(first_expected)
    assert exs[0].source == source and exs[0].check == "eq"


def test_multiline_call_example(he):
    exs = _ex(he, "HumanEval/87")  # get_row([\n [1,2,...],\n ...], 1) == [(0, 0), ...]
    assert exs and exs[0].args.startswith("([[1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 1, 6]")
    assert exs[0].expected == [(0, 0), (1, 4), (1, 0), (2, 5), (2, 0)]


@pytest.mark.parametrize("tid", ["HumanEval/38", "HumanEval/41", "HumanEval/80", "HumanEval/105"])
def test_prompts_without_usable_examples(he, tid):
    # 38/41: no example; 80: unquoted string arguments; 105: prose walk-through, no call
    assert _ex(he, tid) == []


def test_helper_function_examples_are_not_the_entry_points(he):
    # HumanEval/10's prompt has is_palindrome (helper) and make_palindrome (entry point)
    exs = _ex(he, "HumanEval/10")
    assert exs and all(e.text.startswith(">>> make_palindrome") for e in exs)


@pytest.mark.parametrize("text,entry,want", [
    (">>> f(1)\n2\n>>> f(2)\n4\n", "f", [("(1,)", 2), ("(2,)", 4)]),
    (">>> f(1, 2)\n    ... \n3", "f", [("(1, 2)", 3)]),          # empty continuation line
    (">>> f(1, 2)\n\n3", "f", []),                                # no output line: nothing to compare
    ("f(1) == 2\nf(1) == 2", "f", [("(1,)", 2)]),                # duplicates dropped
    ("def f(x):\n    '''f(1) -> 2'''", "f", [("(1,)", 2)]),       # "def f(" is not an example
    ("g(f(1)) == 2", "f", []),                                   # nested call: separator belongs to g
    ("f(x=1) == 2", "f", []),                                    # keyword arguments skipped
    ("f(a) == 2", "f", []),                                      # non-literal argument skipped
    ("f(1) == 19 - 5 - 6 = 8", "f", []),                         # expected is not a literal
    ("f([1, 2]) ➞ [2, 1].", "f", [("([1, 2],)", [2, 1])]),       # arrow and a full stop
    ("f(-1.5) should return 'x'", "f", [("(-1.5,)", "x")]),
])
def test_prompt_example_forms(text, entry, want):
    got = [(e.args, e.expected) for e in parse_prompt_examples(text, entry)]
    assert got == want


def test_canonical_solutions_satisfy_parsed_examples(he):
    """Independent check of the parser on all 164 prompts: the reference solutions satisfy every
    parsed example except in the four prompts whose own examples are wrong."""
    from common.sandbox import Job, SandboxPool
    tasks = list(he.values())
    exs = [parse_prompt_examples(t["prompt"], t["entry_point"]) for t in tasks]
    assert sum(1 for e in exs if e) >= 150 and sum(map(len, exs)) >= 420
    jobs = [Job.outputs(t["prompt"] + t["canonical_solution"], t["entry_point"], [e.args for e in ex])
            for t, ex in zip(tasks, exs)]
    with SandboxPool(workers=2) as pool:
        res = pool.run_many(jobs)
    wrong = {t["task_id"] for t, ex, r in zip(tasks, exs, res)
             if any(not example_holds(o, e) for e, o in zip(ex, r.outputs or []))}
    assert wrong == {"HumanEval/47", "HumanEval/116", "HumanEval/130", "HumanEval/148"}


# --------------------------------------------------------------------------------------------
# model-written tests
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,want", [
    ("assert f(1) == 2", [("(1,)", 2, "eq")]),
    ("assert 2 == f(1)", [("(1,)", 2, "eq")]),
    ("assert f([1], 'a') is None", [("([1], 'a')", None, "eq")]),
    ("assert f(3) is True", [("(3,)", True, "eq")]),
    ("assert f(1)", [("(1,)", True, "truthy")]),
    ("assert not f(0)", [("(0,)", False, "falsy")]),
    ("assert f(x=1) == 2", []),
    ("assert g(1) == 2", []),
    ("assert f(1) == y", []),
    ("assert f(1) != 2", []),
    ("assert abs(f(1) - 2.0) < 1e-6", []),
    ("assert f(1) == 2\nassert f(1) == 2\nassert f(2) == 3", [("(1,)", 2, "eq"), ("(2,)", 3, "eq")]),
    ("assert f(1) == 2\nassert f(2) == [1,\n  2]\nassert f(3) == (", [("(1,)", 2, "eq")]),   # cut-off tail
    ("x = 1\nassert f(\n    [1, 2],\n) == 3\n", [("([1, 2],)", 3, "eq")]),                    # multi-line, parses whole
    ("assert f(1) == 2 # one\nprint('hi')", [("(1,)", 2, "eq")]),
])
def test_parse_test_asserts(text, want):
    got = [(e.args, e.expected, e.check) for e in parse_test_asserts(text, "f")]
    assert got == want


# --------------------------------------------------------------------------------------------
# checking outputs
# --------------------------------------------------------------------------------------------

E = lambda v, check="eq": Example("(1,)", v, check, "assert", "")  # noqa: E731


@pytest.mark.parametrize("out,ex,want", [
    ("2", E(2), True),
    ("2.0", E(2), True),
    ("0.30000000000000004", E(0.3), True),
    ("0.31", E(0.3), False),
    ("[1, 2]", E([1, 2]), True),
    ("(1, 2)", E([1, 2]), False),                 # list vs tuple differ, as == says
    ("{'a': 1.0000000001}", E({"a": 1.0}), True),
    ("True", E(1), True),                          # Python equality: True == 1
    ("'x'", E("x"), True),
    ("!raise ValueError", E(None), False),
    ("!timeout", E(True, "truthy"), False),
    ("[]", E(False, "falsy"), True),
    ("[0]", E(True, "truthy"), True),
    ("<object at 0x?>", E(None), False),           # not a literal, repr differs
    ("nan", E(float("nan")), True),
    ("None", E(None), True),
])
def test_example_holds(out, ex, want):
    assert example_holds(out, ex) is want


def test_values_equal_nested_floats():
    assert values_equal([(1.0, [2.0000001])], [(1, [2])])
    assert not values_equal([1, 2], [1, 2, 3])
    assert not values_equal(math.inf, 1e308)


@pytest.mark.parametrize("status,outs,want", [
    ("passed", ["1", "2"], ("1", "2")),
    ("passed", ["!raise TypeError", "2"], ("!raise TypeError", "2")),
    ("passed", ["!raise TypeError", "!raise NameError"], None),   # all exceptions: no vote
    ("failed", ["!failed"], None),                                 # syntax error / crash
    ("timeout", ["1", "!timeout"], None),
    ("passed", [], None),                                          # no inputs
])
def test_behaviour_signature(status, outs, want):
    assert behaviour_signature(status, outs) == want


# --------------------------------------------------------------------------------------------
# selectors
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("scores,want", [
    ([-1.0, -0.5, -2.0], (1, "logprob")),
    ([-0.5, -0.5], (0, "logprob")),                 # tie -> earlier
    ([None, -3.0, float("nan")], (1, "logprob")),
    ([None, None], (0, "no_logprobs")),
    ([-7.0], (0, "logprob")),
])
def test_select_logprob(scores, want):
    assert select_logprob(scores) == want


@pytest.mark.parametrize("sigs,scores,want", [
    ([("a",), ("b",), ("a",)], [-1, -0.1, -2], (0, "behaviour")),        # largest cluster, best member in it
    ([("a",), ("a",), ("b",)], [-3, -1, -0.1], (1, "behaviour")),        # member with higher score
    ([("a",), ("b",)], [-2, -1], (1, "behaviour")),                      # tie -> cluster holding the best score
    ([("a",), ("b",)], None, (0, "behaviour")),                          # no scores -> earliest cluster
    ([None, ("b",), None, None], [0, -5, 0, 0], (1, "behaviour")),    # only voter wins over better-scored non-voters
    ([None, None], [-2, -1], (1, "behaviour_fallback_logprob")),         # nobody voted
    ([("a",), ("a",)], [-1, -1], (0, "behaviour_unanimous")),
    ([("a",)], [-1], (0, "behaviour_unanimous")),                         # single sample
])
def test_select_behaviour(sigs, scores, want):
    assert select_behaviour(sigs, scores) == want


@pytest.mark.parametrize("vis,scores,want", [
    ([[True, True], [True, False], [True, True]], [-1, -0.1, -0.5], (2, "visible_all")),
    ([[False, True], [True, False], [False, False]], [-1, -0.5, 0], (1, "visible_most")),
    ([[False], [False]], [-2, -1], (1, "visible_fallback_logprob")),    # all fail
    ([[], []], [-2, -1], (1, "visible_fallback_logprob")),               # no examples in the prompt
    ([[True, True], [True, True]], [-1, -1], (0, "visible_all")),        # all pass, tie -> earliest
    ([[True]], [None], (0, "visible_all")),                              # single sample
])
def test_select_visible(vis, scores, want):
    assert select_visible(vis, scores) == want


def test_codet_wiring_with_a_fake_pass_matrix():
    # 4 candidates, 3 tests. Candidates 1 and 3 agree (pass tests 0 and 1): score 2 x 2 = 4;
    # candidate 0 passes all three tests alone: 1 x 3 = 3; candidate 2 passes nothing.
    m = [[True, True, True], [True, True, False], [False, False, False], [True, True, False]]
    assert select_codet_or_fallback(m, [0, -1, -1, -2]) == (1, "codet")
    # all fail -> highest mean log-prob, not index 0
    assert select_codet_or_fallback([[False, False]] * 3, [-3, -1, -2]) == (1, "codet_fallback_logprob")
    # no tests at all
    assert select_codet_or_fallback([[], []], [-3, -1]) == (1, "codet_fallback_logprob")
    # tie between groups (2 x 1 vs 1 x 2) -> the earliest group
    assert select_codet_or_fallback([[True, False], [True, False], [False, True]], None)[0] == 0
    # all pass: one group
    assert select_codet_or_fallback([[True, True]] * 3, [-1, -0.5, -2]) == (0, "codet")


def test_codet_matrix_from_outputs():
    tests = [E(2), E(3), E(True, "truthy")]
    outputs = [["2", "3"], ["2", "4"], None]          # candidate 2 did not run
    m = codet_matrix(outputs, tests, offsets=[0, 1, 1])
    assert m == [[True, True, True], [True, False, True], [False, False, False]]


def _cands(passed, **kw):
    n = len(passed)
    return Candidates("t", passed, kw.get("mean", [-1.0] * n), kw.get("sum", [-5.0] * n),
                      kw.get("sigs", [("x",)] * n), kw.get("vis", [[True]] * n), kw.get("codet", [[True]] * n))


# three candidates that each selector ranks differently: mean log-prob picks 1, sum picks 0; the
# behaviour cluster ("y",) = {0, 2} wins and its best mean log-prob is 2, while majority_vote
# takes the cluster's first member 0; the visible example is passed by 0 alone; the model test
# by 2 alone
THREE = dict(mean=[-3.0, -1.0, -2.0], sum=[-2.0, -6.0, -4.0], sigs=[("y",), ("x",), ("y",)],
             vis=[[True], [False], [False]], codet=[[False], [False], [True]])
PICKS = {"mean_logprob": (1, "logprob"), "sum_logprob": (0, "logprob"), "behaviour_majority": (2, "behaviour"),
         "majority_vote": (0, "majority"), "visible_filter": (0, "visible_all"), "codet": (2, "codet")}


@pytest.mark.parametrize("passed,features,picks", [
    ([False, False, False], THREE, PICKS),
    ([True, True, True], THREE, PICKS),
    ([True], {}, {"mean_logprob": (0, "logprob"), "sum_logprob": (0, "logprob"),
                  "behaviour_majority": (0, "behaviour_unanimous"), "majority_vote": (0, "majority"),
                  "visible_filter": (0, "visible_all"), "codet": (0, "codet")}),
])
def test_select_all_on_all_fail_all_pass_single(passed, features, picks):
    """Verdicts never steer a selector: on all-fail and all-pass tasks each still picks by its
    own rule (the candidates differ in everything but the verdict)."""
    got = select_all(_cands(passed, **features))
    assert got == picks
    assert {passed[i] for i, _ in got.values()} == {passed[0]}


def test_select_all_leaves_out_what_was_not_computed():
    c = Candidates("t", [True, False], [-1, -2], [-1, -2])
    assert set(select_all(c)) == {"mean_logprob", "sum_logprob"}
    with pytest.raises(ValueError, match="unknown selector"):
        select_all(c, ["best"])


def test_candidates_subset():
    c = _cands([True, False, True], mean=[-1, -2, -3], sigs=[("a",), ("b",), ("c",)])
    s = c.subset([2, 0])
    assert s.passed == [True, True] and s.mean_logprob == [-3, -1] and s.signatures == [("c",), ("a",)]
