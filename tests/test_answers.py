"""Table-driven tests for common.answers, with the ugly cases models actually produce."""
from fractions import Fraction

import pytest

from common import answers as A


# ---------------------------------------------------------------- numbers
@pytest.mark.parametrize("s,exp", [
    ("12", Fraction(12)), ("-3", Fraction(-3)), ("3.50", Fraction(7, 2)), (".5", Fraction(1, 2)),
    ("1,234", Fraction(1234)), ("$1,234.50.", Fraction(246900, 200)), ("3/4", Fraction(3, 4)),
    ("-(3)/(4)", Fraction(-3, 4)), ("(-1)/2", Fraction(-1, 2)), ("50%", Fraction(50)),
    ("\u22122", Fraction(-2)), ("1/0", None), ("2+3", None), ("x", None), ("", None),
    (None, None), ("1e5", None), ("12,34", None),
])
def test_parse_number(s, exp):
    assert A.parse_number(s) == exp


# ---------------------------------------------------------------- GSM8K
@pytest.mark.parametrize("field,gold", [
    ("3 + 4 = <<3+4=7>>7\n#### 7", "7"),
    ("#### 1,234", "1234"),
    ("first #### 5\nthen #### 7", "7"),              # last #### wins (paper took the first)
    ("#### $1,000.50.", "1000.50"),
    ("#### 15%", "15"),
    ("#### -8", "-8"),
    ("#### 72\n", "72"),
])
def test_gsm8k_gold(field, gold):
    assert A.gsm8k_gold(field) == gold


@pytest.mark.parametrize("field", ["no marker 42", "the answer ####   ", "####"])
def test_gsm8k_gold_errors(field):
    with pytest.raises(ValueError):
        A.gsm8k_gold(field)


@pytest.mark.parametrize("text,answer,method", [
    ("5 + 5 = 10\n#### 10", "10", "hash"),
    ("#### 3\nWait, recompute.\n#### 4", "4", "hash"),
    ("#### $1,234.00", "1234.00", "hash"),
    ("#### The answer is 42.", "42", "hash"),
    ("**#### 18**", "18", "hash"),
    ("#### \u22123", "-3", "hash"),
    ("#### 12 apples and 3 pears", "12", "hash"),
    ("#### 3/4", "3/4", "hash"),
    ("#### 1,234,567.", "1234567", "hash"),
    ("The answer is 1,234 apples.", "1234", "last_number"),
    ("#### \nso the total is 9", "9", "last_number"),        # marker without a number
    ("Total is 5-6 units", "6", "last_number"),              # hyphen, not a sign
    ("it dropped to -5 degrees", "-5", "last_number"),
    ("I got 3.5.", "3.5", "last_number"),
    ("half is .5", ".5", "last_number"),
    ("no digits here", None, "none"),
    ("", None, "none"),
])
def test_extract_gsm8k_answer(text, answer, method):
    assert A.extract_gsm8k_answer(text) == (answer, method)


@pytest.mark.parametrize("pred,gold,ok", [
    ("1234", "1,234", True), ("18.0", "18", True), ("18.5", "18", False), (None, "3", False),
    ("$18", "18", True), ("50%", "50", True), ("0.1+0.2", "0.3", False), ("-8", "-8", True),
    ("8", "-8", False), ("1234.00", "1234", True), ("abc", "abc", True),
])
def test_gsm8k_equal(pred, gold, ok):
    assert A.gsm8k_equal(pred, gold) is ok


# ---------------------------------------------------------------- MATH boxed
@pytest.mark.parametrize("text,answer,method", [
    (r"so \boxed{5}.", "5", "boxed"),
    (r"\boxed{\frac{1}{2}}", r"\frac{1}{2}", "boxed"),
    (r"\boxed{1} then \boxed{2}", "2", "boxed"),
    (r"\fbox{7}", "7", "fbox"),
    (r"\boxed{\{1,2\}}", r"\{1,2\}", "boxed"),
    (r"\boxed{3} and finally \boxed{\frac{1}{", "3", "boxed"),   # truncated last box
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
    ("nothing", (None, "none")),
])
def test_extract_math_answer(text, exp):
    assert A.extract_math_answer(text) == exp


# ---------------------------------------------------------------- normalisation
@pytest.mark.parametrize("raw,norm", [
    (r"\frac{1}{2}", "1/2"),
    (r"\dfrac{1}{2}", "1/2"),
    (r"\tfrac12", "1/2"),
    (r"\displaystyle\frac{3}{4}", "3/4"),
    (r"\left( 3, \frac{\pi}{2} \right)", r"(3,\pi/2)"),
    (r"\frac{\sqrt{3}}{2}", r"\sqrt{3}/2"),
    (r"\frac{\sqrt3}{2}", r"\sqrt{3}/2"),
    (r"\frac{1+x}{2}", "(1+x)/2"),
    (r"\text{Evelyn}", "Evelyn"),
    (r"\text{(A)}", "A"),              # lone choice letter
    (r"108^\circ", "108"),
    (r"108^{\circ}", "108"),
    ("108°", "108"),
    ("x = 3", "3"),
    ("y = 2x + 3", "2x+3"),
    (r"a \le 3", r"a\le3"),
    ("1,000", "1000"),
    (r"1{,}000", "1000"),
    (r"1,\!000", "1000"),
    ("5.", "5"),
    (r"\$5", "5"),
    ("$5$", "5"),
    (r"\(\frac{1}{2}\)", "1/2"),
    (r"10\%", "10"),
    (r"5\text{ cm}", "5"),
    (r"5 \mbox{ inches}", "5"),
    (r"\boxed{7}", "7"),
    (".5", "0.5"),
    (r"\{1,2\}", r"\{1,2\}"),
    ("{3}", "3"),
    ("(1, 2)", "(1,2)"),
    (r"\pi", r"\pi"),
    (None, None),
])
def test_normalize_math_answer(raw, norm):
    assert A.normalize_math_answer(raw) == norm


@pytest.mark.parametrize("a,b", [
    (r"\frac{1}{2}", "1/2"), ("0.5", r"\frac12"), ("x=3", "3"), ("1,000", "1000"),
    (r"\left( 3, \frac{\pi}{2} \right)", r"(3,\frac{\pi}{2})"), (r"108^\circ", "108"),
    (r"\text{(A)}", "(A)"), (r"-\frac{1}{2}", r"\frac{-1}{2}"), ("1, -2", "-2, 1"),
    (r"\{1,2\}", r"\{2,1\}"), ("(1, 0.5)", r"(1, \frac12)"), (r"5\text{ cm}", "5"),
    ("3.0", "3"), (r"\boxed{4}", "4"), ("[1,2)", "[1, 2)"), (r"\dfrac{3}{4}", "0.75"),
    (r"x^{2}+2x+1", "x^2+2x+1"), (r"\boxed{\text{(C)}}", "C"), (r"k = -\frac{1}{2}", "-0.5"),
    (r"\left(-\infty, 3\right]", r"(-\infty,3]"), (r"\frac{\sqrt{2}}{2}", r"\sqrt{2}/2"),
])
def test_math_equiv_true(a, b):
    assert A.math_equiv(a, b)
    assert A.math_equiv(b, a)


@pytest.mark.parametrize("a,b", [
    ("(1,2)", "(2,1)"), ("[1,2)", "[1,2]"), ("0.333", r"\frac13"), (r"2\sqrt{2}", r"\sqrt{8}"),
    (None, "1"), ("1", None), ("3", "-3"), (r"\frac{1}{2}", "2"), ("x+1", "x-1"),
    ("12", "1,2"), ("(1,2)", "[1,2]"), ("1,2,3", "1,2"),
])
def test_math_equiv_false(a, b):
    assert not A.math_equiv(a, b)


# ---------------------------------------------------------------- AIME
@pytest.mark.parametrize("s,v", [
    ("033", 33), ("33.0", 33), (33, 33), (r"\boxed{33}", 33), ("0", 0), ("999", 999),
    ("1000", None), ("-1", None), ("3.5", None), (None, None), ("abc", None), (True, None),
    (1000, None),
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
    ([None, None], (None, 0)),
    ([], (None, 0)),
    (["a", "b"], ("a", 1)),
    ([None, "5", "6", "6"], ("6", 2)),
    (["x=3", "3", "4"], ("x=3", 2)),
    (["", "2"], ("2", 1)),
    (["1,000", "1000", "999"], ("1,000", 2)),
    ([r"\text{(B)}", "(B)", "(A)"], (r"\text{(B)}", 2)),
])
def test_majority_answer(answers, exp):
    assert A.majority_answer(answers) == exp
