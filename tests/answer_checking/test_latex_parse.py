"""Tests for answer_checking/latex_parse.py: the input screen, the trees of answers as models write them, relation sides."""
import pytest

from answer_checking.latex_parse import Refused, parse, relation_parts, screen, split_relation
from answer_checking.math_equivalence import expressions_equal


@pytest.mark.parametrize("a, b", [
    ("\\frac { 7 } { 3 }", "\\frac{7}{3}"), ("\\dfrac73", "\\tfrac{7}{3}"), ("5√3", "5\\sqrt{3}"),
    ("\\left( 2 \\right) \\cdot x", "2*x"), ("2 \\times 3", "2*3"), ("−x", "-x"),
])
def test_spellings_give_one_tree(a, b):
    assert parse(a) == parse(b)


def test_implicit_multiplication_and_precedence():
    assert parse("2x") == ("mul", ("num", "2"), ("var", "x"))
    assert parse("-x^2") == ("neg", ("pow", ("var", "x"), ("num", "2")))  # -(x^2), not (-x)^2
    assert parse("\\frac12") == ("div", ("num", "1"), ("num", "2"))  # LaTeX reads one character
    assert parse("x_{12}") == ("var", "x_{12}")


@pytest.mark.parametrize("text", ["2 3", "\\zzz", "(1", "1+", "204_5"])
def test_malformed_is_refused(text):
    with pytest.raises(Refused):
        parse(text)


def test_split_relation_needs_exactly_one():
    assert relation_parts("-2 \\le x < 7") == (["-2", "x", "7"], ["<=", "<"])
    assert split_relation("x = 5") == ("x", "=", "5")
    assert split_relation("a < x < b") is None and split_relation("12") is None


@pytest.mark.parametrize("text", [
    "9" * 100_000, "\\frac{1}{" * 300 + "2" + "}" * 300, "(" * 5000, "x" + "^2" * 20,
])
def test_screen_refuses_before_parsing(text):
    assert not screen(text)
    assert expressions_equal(text, "1") is None


