"""Tests for the answer checker (answer_checking/extract.py, answer_checking/grade.py): the table of answers in the
datasets' formats (tests/answer_cases.py), choices and precision, hedges, lists, prose, units, bounds on hostile
answers, threads and speed. They call grade.answer_matches, the one entry point r_acc uses (docs/answers.md)."""
import time

import numpy as np
import pytest
from answer_cases import CASES  # tests/answer_cases.py: the table, with each row's source

from answer_checking import grade, latex_parse
from answer_checking.grade import answer_matches


@pytest.mark.parametrize("source, gold, answer, expected, options", CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_answer_table(source, gold, answer, expected, options):
    assert answer_matches(answer, gold, **options) is bool(expected)


def test_answer_table_covers_every_dataset_with_wrong_answers_too():
    sources = {c[0] for c in CASES}
    assert sources == {"Geometry3K", "MathVista", "MathVerse", "MATH-Vision", "WeMath", "DynaMath", "ViRL39K"}
    assert len(CASES) >= 150 and sum(c[3] == 0 for c in CASES) >= 50


def test_choices_from_data_rows():
    # MathVista stores the option text as the answer; precision is float64, NaN on rows without one
    row = {"answer": "145°", "choices": np.array(["145°", "165°", "150°", "140°"]), "precision": float("nan")}
    assert answer_matches("A", row["answer"], choices=row["choices"], precision=row["precision"])
    assert not answer_matches("C", row["answer"], choices=row["choices"])
    assert answer_matches("1.23", "1.2", precision=np.float64(1.0))  # round(1.23, 1) = 1.2
    assert not answer_matches("1.23", "1.2")  # without precision two decimals must agree
    assert not answer_matches("E", "6", choices=["3", "6", "9", "12"])  # no option E


def test_hedges_and_lists_stay_wrong():
    assert not answer_matches("\\boxed{3} \\boxed{5}", "5")  # two boxes are a list, not 5
    assert answer_matches("\\boxed{3} \\boxed{5}", "3, 5")
    assert not answer_matches("3 or 5", "5")
    assert not answer_matches("The answer is 3, not 5.", "5")
    assert not answer_matches("(1,2)", "(2,1)")
    assert not answer_matches("2, 3, 4", "3")


def test_prose_answers_read_as_careful_graders_do():
    assert answer_matches("The answer is $12$.", "12")
    assert answer_matches("Final Answer: The largest $n$ is 34.", "34")
    assert answer_matches("So the area is $\\frac{9}{2}$ square units.", "4.5")
    assert not answer_matches("It is either 3 or 4 hours.", "3")


HOSTILE = {
    "100,000 digits": "9" * 100_000,
    "300 nested frac": "\\frac{1}{" * 300 + "2" + "}" * 300,
    "tower": "9^{9^{9^{9}}}",
    "10^100000": "10^{100000}",
    "5,000 open parentheses": "(" * 5000,
    "50 KB prose with numbers": ("The value is 3 and then 4.5 plus $x=7$ so 12. " * 1200)[:50_000],
    "big factorial": "1000!",
    "5,000 boxes": "\\boxed{1}" * 5000,
    "a list of 5,000": ",".join(["1"] * 5000),
    "nested sets": ",".join("\\{" + ",".join(f"{i + k}/7" for i in range(8)) + "\\}" for k in range(16)),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_answers_are_bounded(name):
    s = HOSTILE[name]
    for answer, gold in ((s, "1"), (s, s), ("1", s), (s, "\\frac{1}{2}")):
        t0 = time.perf_counter()
        r = answer_matches(answer, gold)
        assert time.perf_counter() - t0 < 0.5 and isinstance(r, bool)
    assert not answer_matches(s, "\\frac{1}{2}")


def test_works_off_the_main_thread():
    from concurrent.futures import ThreadPoolExecutor

    rows = [(a, g, o) for _, g, a, _, o in CASES[:60]]
    here = [answer_matches(a, g, **o) for a, g, o in rows]
    with ThreadPoolExecutor(4) as pool:
        there = list(pool.map(lambda row: answer_matches(row[0], row[1], **row[2]), rows))
    assert there == here and False in here and True in here


def test_median_time_per_call_on_ordinary_answers():
    times = []
    for _, gold, answer, _, options in CASES:
        grade.values_equal.cache_clear()
        latex_parse.parse.cache_clear()  # uncached: each call pays its parsing
        t0 = time.perf_counter()
        answer_matches(answer, gold, **options)
        times.append(time.perf_counter() - t0)
    assert sorted(times)[len(times) // 2] < 0.002


@pytest.mark.parametrize("answer, gold, expected", [
    ("12 inches", "12 ft", False), ("12 m", "12 cm", False),  # a unit on both sides must agree
    ("12 in", "12 inches", True), ("3 hours", "3 h", True),  # ... in any of its spellings
    ("12 inches", "12", True), ("12", "12 ft", True),  # a unit on one side only is dropped
])
def test_units_on_both_sides_must_agree(answer, gold, expected):
    assert answer_matches(answer, gold) is expected
