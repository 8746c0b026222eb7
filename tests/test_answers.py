r"""Table-driven tests for common.answers (extraction) and common.answer_check (math-verify under a
wall clock), with the failure cases harnesses have met in real model output: several \boxed{}
(the last wins), a run-on continuation, a bare comma after a number, an unterminated \boxed{,
nested braces, **73**, GSM8K answers with commas, units, dollars and trailing text, \dfrac and
\frac, equivalent expressions, a pathological expression that must time out, and the paper's
defect-11 behaviour behind ``faithful``."""
import time
from fractions import Fraction

import pytest

from common import answers as A
from common.answer_check import AnswerChecker, Verdict, as_math, check_one, integer_value, same_text


@pytest.fixture(scope="module")
def checker():
    with AnswerChecker(limit_s=20, mv_timeout_s=2) as c:
        yield c


# ---------------------------------------------------------------- numbers
@pytest.mark.parametrize("s,exp", [
    ("12", Fraction(12)), ("-3", Fraction(-3)), ("3.50", Fraction(7, 2)), (".5", Fraction(1, 2)),
    ("1,234", Fraction(1234)), ("$1,234.50.", Fraction(246900, 200)), ("50%", Fraction(50)),
    ("\u22122", Fraction(-2)), ("**73**", Fraction(73)), ("3/4", None), ("2+3", None), ("x", None), ("", None),
    (None, None), ("1e5", None), ("12,34", None), (".", None),
])
def test_parse_number(s, exp):
    assert A.parse_number(s) == exp


@pytest.mark.parametrize("s,v", [("1,234", 1234), ("$18", 18), ("18.00", 18), ("**73**", 73), ("-8", -8),
                                 ("18.5", None), ("1/2", None), ("x", None), ("12,34", None)])
def test_integer_value(s, v):
    assert integer_value(s) == v


# ---------------------------------------------------------------- GSM8K
@pytest.mark.parametrize("field,gold,faithful_gold", [
    ("3 + 4 = <<3+4=7>>7\n#### 7", "7", "7"),
    ("#### 1,234", "1234", "1"),                     # the paper: a comma ends the number
    ("first #### 5\nthen #### 7", "7", "5"),         # the paper: the first #### wins
    ("#### $1,000.50.", "1000.50", None),            # faithful: "$" is not a number at all
    ("#### 15%", "15", "15"),
    ("#### -8", "-8", "-8"),
    ("#### 72\n", "72", "72"),
])
def test_gsm8k_gold(field, gold, faithful_gold):
    assert A.gsm8k_gold(field) == gold
    if faithful_gold is None:
        with pytest.raises(ValueError):
            A.gsm8k_gold(field, faithful=True)
    else:
        assert A.gsm8k_gold(field, faithful=True) == faithful_gold


@pytest.mark.parametrize("field", ["no marker 42", "the answer ####   ", "####"])
def test_gsm8k_gold_errors(field):
    with pytest.raises(ValueError):
        A.gsm8k_gold(field)


# text -> (flexible answer, method), strict answer, faithful answer
GSM8K_CASES = [
    ("5 + 5 = 10\n#### 10", ("10", "hash"), "10", "10"),
    ("#### 3\nWait, recompute.\n#### 4", ("4", "hash"), "4", "3"),          # last #### wins; paper: first
    ("#### $1,234.00", ("1234.00", "hash"), None, None),                   # dollars: not the strict format
    ("#### 1,260,000", ("1260000", "hash"), "1260000", "1"),               # commas: the paper reads 1
    ("#### The answer is 42.", ("42", "hash"), None, None),
    ("**#### 18**", ("18", "hash"), "18", "18"),
    ("#### **73**", ("73", "hash"), None, None),                           # bold: 73, never "73**"
    ("The answer is **73**.", ("73", "answer_is"), None, None),
    ("#### \u22123", ("-3", "hash"), "-3", None),
    ("#### 12 apples and 3 pears", ("12", "hash"), "12", "12"),            # units and trailing text
    ("#### 18 dollars.", ("18", "hash"), "18", "18"),
    ("#### 3/4", ("3/4", "hash"), None, "3"),                             # strict: not a plain number
    ("#### 1,234,567.", ("1234567", "hash"), "1234567", "1"),
    ("#### 72, so she has 72 left", ("72", "hash"), "72", "72"),           # a bare comma after the number
    ("The answer is 72, and she gave 5 away earlier.", ("72", "answer_is"), None, None),
    ("So the total is 1,234 apples.", ("1234", "last_number"), None, None),
    ("#### \nso the total is 9", ("9", "last_number"), None, None),        # marker without a number
    ("Total is 5-6 units", ("6", "last_number"), None, None),              # hyphen, not a sign
    ("it dropped to -5 degrees", ("-5", "last_number"), None, None),
    ("I got 3.5.", ("3.5", "last_number"), None, None),
    (r"so $\boxed{18}$ pencils", ("18", "boxed"), None, None),
    (r"so \boxed{18} and then \boxed{1", (None, "boxed_unterminated"), None, None),
    # a run-on continuation: the model's answer, then someone else's problem with its numbers
    ("She has 18 left.\n\nProblem: Tom has 4 cats and 2 dogs. How many pets?", ("18", "last_number"), None, None),
    ("#### 18\nQuestion: A farmer has 12 cows.\n#### 12", ("18", "hash"), "12", "18"),
    # the final answer is the last marker: an opening '#### <guess>', then reasoning ending in a box
    ("#### 18\n\n18 - 13 = 5, 5 + 7 = 12.\nSo he has \\(\\boxed{12}\\) postcards.", ("12", "boxed"), "18", "18"),
    ("So \\boxed{12}.\n#### 12", ("12", "hash"), "12", "12"),
    ("#### 7\nthen \\boxed{3", (None, "boxed_unterminated"), "7", "7"),      # truncated final box: no answer
    ("Problem: Mia has 3 packs.\nShe has 3 * 12 = 36.\n#### 36", ("36", "hash"), "36", "36"),  # restated first
    ("no digits here", (None, "none"), None, None),
    ("", (None, "none"), None, None),
]


@pytest.mark.parametrize("text,flexible,strict,faithful", GSM8K_CASES)
def test_extract_gsm8k(text, flexible, strict, faithful):
    assert A.extract_gsm8k_answer(text) == flexible
    assert A.extract_gsm8k_strict(text).answer == strict
    assert A.extract_gsm8k_faithful(text).answer == faithful


@pytest.mark.parametrize("pred,gold,ok,faithful_ok", [
    ("1234", "1,234", True, False), ("18.0", "18", True, True), ("18.5", "18", False, False),
    (None, "3", False, False), ("$18", "18", True, False), ("50%", "50", True, False),
    ("-8", "-8", True, True), ("8", "-8", False, False), ("1234.00", "1234", True, True),
    ("18.", "18", True, True), ("0.5", "1/2", True, False),
])
def test_gsm8k_equal(pred, gold, ok, faithful_ok):
    assert A.gsm8k_equal(pred, gold) is ok
    assert A.gsm8k_equal(pred, gold, faithful=True) is faithful_ok


# ---------------------------------------------------------------- MATH boxed
@pytest.mark.parametrize("text,answer,method", [
    (r"so \boxed{5}.", "5", "boxed"),
    (r"\boxed{\frac{1}{2}}", r"\frac{1}{2}", "boxed"),
    (r"\boxed{1} then \boxed{2}", "2", "boxed"),                               # the last box wins
    (r"first \boxed{5}, checking... \boxed{5}, no: \boxed{7}", "7", "boxed"),  # math-verify alone: {5, 7}
    (r"\fbox{7}", "7", "fbox"),
    (r"\boxed{\{1,2\}}", r"\{1,2\}", "boxed"),
    (r"\boxed{\frac{1}{\sqrt{2}}}", r"\frac{1}{\sqrt{2}}", "boxed"),            # nested braces kept whole
    (r"\boxed{3} and finally \boxed{\frac{1}{", None, "boxed_unterminated"),   # never the earlier 3
    (r"$\boxed 5$", "5", "boxed"),
    (r"\boxed{ x^{2}+1 }", "x^{2}+1", "boxed"),
    (r"\boxed {4}", "4", "boxed"),
    (r"\boxedfoo{3}", None, "none"),
    ("no box", None, "none"),
])
def test_extract_boxed(text, answer, method):
    assert A.extract_boxed(text) == (answer, method)


@pytest.mark.parametrize("text,exp", [
    (r"Thus $\boxed{12}$", ("12", "boxed")),
    ("so it is 7/2 or 3.5", ("3.5", "last_number")),
    (r"\boxed{3} then \boxed{", (None, "boxed_unterminated")),
    ("It is 9.\n\nProblem: Find 2 + 2.", ("9", "last_number")),
    ("nothing", (None, "none")),
])
def test_extract_math_answer(text, exp):
    assert A.extract_math_answer(text) == exp


# ---------------------------------------------------------------- checking (math-verify)
@pytest.mark.parametrize("answer,gold", [
    (r"\frac{1}{2}", "1/2"), ("0.5", r"\frac12"), (r"\dfrac{3}{4}", "0.75"), (r"\dfrac{3}{4}", r"\frac{3}{4}"),
    (r"\tfrac12", "0.5"), (r"2\sqrt{2}", r"\sqrt{8}"), (r"\sqrt{8}", r"2\sqrt{2}"), ("x=3", "3"),
    ("1,000", "1000"), (r"5\text{ cm}", "5"), (r"108^\circ", "108"), ("3.0", "3"),
    (r"\left( 3, \frac{\pi}{2} \right)", r"(3,\frac{\pi}{2})"), (r"-\frac{1}{2}", r"\frac{-1}{2}"),
    (r"\{1,2\}", r"\{2,1\}"), ("x^2+2x+1", "(x+1)^2"), (r"\$18", "18"), ("2^(n-1)", r"2^{n-1}"),
    (r"\frac{\sqrt{2}}{2}", r"\frac{1}{\sqrt{2}}"),
])
def test_equivalent(checker, answer, gold):
    v = check_one(answer, gold, checker=checker)
    assert v.status == "equal", v


@pytest.mark.parametrize("answer,gold", [
    ("(1,2)", "(2,1)"), ("[1,2)", "[1,2]"), ("3", "-3"), (r"\frac{1}{2}", "2"), ("x+1", "x-1"),
    ("12", "1,2"), ("18", "17"), (r"\sqrt{8}", "3"),
])
def test_not_equivalent(checker, answer, gold):
    assert check_one(answer, gold, checker=checker).status == "different"


def test_integer_shortcut_and_no_answer():
    assert check_one("1,234", "1234") == Verdict("equal", "integer", ["1234"], ["1234"])
    assert check_one("$18", ["17", "18"]).equal                     # any gold form
    assert check_one(None, "3") == Verdict("no_answer", "none") and check_one("  ", "3").status == "no_answer"


def test_text_gold(checker):
    assert check_one(r"\text{No}", "No", text=True, checker=checker).equal
    assert check_one("no.", "No", text=True, checker=checker).equal
    assert not check_one("Yes", "No", text=True, checker=checker).equal
    assert same_text(r"\textbf{No integer solutions.}", "no integer solutions") and not same_text("", "")
    assert as_math("No", text=True) == r"$\text{No}$" and as_math(r"\frac12") == r"$\frac12$"
    assert as_math(r"$x$") == "$x$"


def test_pathological_answer_times_out_instead_of_hanging(checker):
    """math-verify's own alarm (2 s here) stops the comparison: a timeout verdict, not a hang."""
    t0 = time.monotonic()
    v = check_one("5", "9^{9^{9^{9}}}", checker=checker)
    assert v.status == "timeout" and time.monotonic() - t0 < 15
    assert check_one("3", "3.0", checker=checker).equal                 # the worker still answers


def test_wall_clock_kills_a_stuck_worker():
    """With math-verify's alarm off, 3^(10^9) vs 5 runs for minutes; the wall clock kills it."""
    with AnswerChecker(limit_s=2, mv_timeout_s=None) as c:
        c.verify(["1"], "1")                                             # started before the clock
        t0 = time.monotonic()
        v = c.verify(["3^{10^{9}}"], "5")
        assert v == Verdict("timeout", "math_verify") and time.monotonic() - t0 < 6 and c.n_killed == 1
        assert c.verify([r"\sqrt{8}"], r"2\sqrt{2}").equal               # a fresh worker takes over
        c.proc.kill()                                                    # a worker that died between checks
        c.proc.wait()
        assert c.verify(["2"], "2.0").equal and c.n_killed == 1


# ---------------------------------------------------------------- MATH faithful
@pytest.mark.parametrize("pred,gold,ok", [
    (r"\frac{1}{2}", r"\frac{1}{2}", True), (r"\frac{1}{2}", r"\frac12", False),   # strings, not math
    (r"\dfrac{1}{2}", r"\frac{1}{2}", False), ("$5$", "5", True), (r"2\sqrt{2}", r"\sqrt{8}", False),
    (None, "1", False),
])
def test_math_equiv_faithful(pred, gold, ok):
    assert A.math_equiv(pred, gold, faithful=True) is ok


def test_math_equiv(checker):
    assert A.math_equiv(r"2\sqrt{2}", r"\sqrt{8}") and not A.math_equiv(None, "1")
    assert not A.math_equiv("3", "-3")


# ---------------------------------------------------------------- AIME
@pytest.mark.parametrize("s,v", [
    ("033", 33), ("33.0", 33), (33, 33), (r"\boxed{33}", 33), ("$33$", 33), ("0", 0), ("999", 999),
    ("1000", None), ("-1", None), ("3.5", None), (None, None), ("abc", None), (True, None), (1000, None),
])
def test_parse_aime_answer(s, v):
    assert A.parse_aime_answer(s) == v


@pytest.mark.parametrize("text,exp", [
    (r"so the answer is \boxed{042}.", ("42", "boxed")),
    ("the answer is 7", ("7", "last_number")),
    ("we get 1200", (None, "last_number:invalid")),
    (r"\boxed{\frac{1}{2}}", (None, "boxed:invalid")),
    ("no idea", (None, "none")),
])
def test_extract_aime_answer(text, exp):
    assert A.extract_aime_answer(text) == exp


def test_aime_equal():
    assert A.aime_equal("042", 42) and A.aime_equal(r"\boxed{7}", "7")
    assert not A.aime_equal(None, 0) and not A.aime_equal("1000", "1000")


# ---------------------------------------------------------------- majority vote
@pytest.mark.parametrize("answers,exp", [
    (["1/2", "0.5", r"\frac{1}{2}", "3", "3"], ("1/2", 3)),
    ([r"2\sqrt{2}", "3", r"\sqrt{8}", "3", r"\sqrt8"], (r"2\sqrt{2}", 3)),     # equal values vote together
    ([None, None], (None, 0)),
    ([], (None, 0)),
    (["a", "b"], ("a", 1)),
    ([None, "5", "6", "6"], ("6", 2)),
    (["x=3", "3", "4"], ("x=3", 2)),
    (["", "2"], ("2", 1)),
    (["1,000", "1000", "999"], ("1,000", 2)),
    ([r"\text{(B)}", "(B)", "(A)"], (r"\text{(B)}", 2)),
])
def test_majority_answer(checker, answers, exp):
    assert A.majority_answer(answers, checker=checker) == exp


def test_answer_key():
    assert A.answer_key("18.0") == A.answer_key("$18") == ("num", Fraction(18))
    assert A.answer_key(r"\dfrac{1}{2}") == A.answer_key(r"$\frac{1}{2}$") == ("str", r"\frac{1}{2}")
    assert A.answer_key(None) is None and A.answer_key("  ") is None
