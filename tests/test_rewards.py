"""Tests for rewards.py: Eq. 4 by hand, format rules, r_acc end to end, char_length, hostile inputs.

The answer checker behind r_acc has its own tests in tests/answer_checking/test_grading.py."""
import random
import re
import time

import numpy as np
import pytest

import rewards
from rewards import (
    FORMAT_STYLES,
    accuracy_reward,
    equality_reward,
    extract_answer,
    format_reward,
    thinking_reward,
)


def ans(x: str) -> str:
    return f"<think>reasoning</think><answer>{x}</answer>"


# ---------------------------------------------------------------- Eq. 4: thinking reward

def test_thinking_easy_correct_shorter_than_average_is_rewarded():
    # L_avg = (10 + 30) / 2 = 20; response 0: 1 - 10/20 = 0.5
    r = thinking_reward([10, 30], correct=[True, False], hard=[False, False])
    np.testing.assert_allclose(r, [0.5, 0.0])


def test_thinking_easy_correct_longer_than_average_is_negative_without_clip():
    # L_avg = (10 + 90) / 2 = 50; 1 - 10/50 = 0.8 and 1 - 90/50 = -0.8
    r = thinking_reward([10, 90], correct=[True, True], hard=[False, False])
    np.testing.assert_allclose(r, [0.8, -0.8])
    # far longer than average: 1 - 1000/505 = -0.980..., and 1 - 10/505
    r = thinking_reward([1000, 10], correct=[True, True], hard=[False, False])
    np.testing.assert_allclose(r, [1 - 1000 / 505, 1 - 10 / 505])
    assert r[0] < 0


def test_thinking_hard_wrong_capped_at_one():
    # L_avg = (100 + 10 + 10 + 0) / 4 = 30
    # hard-wrong L=100: min(100/30 - 1, 1) = min(2.33, 1) = 1
    # hard-wrong L=10: 10/30 - 1 = -2/3 ; hard-wrong L=0: 0/30 - 1 = -1
    # easy-correct L=10: 1 - 10/30 = 2/3
    r = thinking_reward(
        [100, 10, 10, 0], correct=[False, False, True, False], hard=[True, True, False, True]
    )
    np.testing.assert_allclose(r, [1.0, -2 / 3, 2 / 3, -1.0])


def test_thinking_hard_wrong_below_cap():
    # L_avg = (40 + 20) / 2 = 30; hard-wrong L=40: 40/30 - 1 = 1/3
    r = thinking_reward([40, 20], correct=[False, True], hard=[True, True])
    np.testing.assert_allclose(r, [1 / 3, 0.0])


def test_thinking_zero_cases():
    # easy-wrong and hard-correct get 0 whatever their length
    r = thinking_reward(
        [5, 500, 5, 500], correct=[False, False, True, True], hard=[False, False, True, True]
    )
    np.testing.assert_array_equal(r, [0.0, 0.0, 0.0, 0.0])


def test_thinking_all_zero_lengths_and_empty():
    r = thinking_reward([0, 0, 0], correct=[True, False, True], hard=[False, True, True])
    np.testing.assert_array_equal(r, [0.0, 0.0, 0.0])
    assert not np.isnan(r).any()
    empty = thinking_reward([], [], [])
    assert isinstance(empty, np.ndarray) and empty.shape == (0,)


def test_thinking_returns_float_array_and_accepts_numpy():
    r = thinking_reward(np.array([3, 1]), np.array([1, 0]), np.array([0, 0]))
    assert r.dtype == np.float64
    np.testing.assert_allclose(r, [1 - 3 / 2, 0.0])  # L_avg = 2
    with pytest.raises(ValueError):
        thinking_reward([1, 2], [True], [False, False])


# ---------------------------------------------------------------- extract_answer

@pytest.mark.parametrize(
    "response, expected",
    [
        ("<think>x</think><answer> 42 </answer>", "42"),
        ("<answer>\\boxed{7}</answer>", "7"),
        ("<answer>\\boxed{\\frac{1}{2}}</answer>", "\\frac{1}{2}"),
        ("<answer>The answer is \\boxed{B}.</answer>", "B"),
        ("<answer>\\boxed{3</answer>", "\\boxed{3"),  # unbalanced: left as text
        ("<answer></answer>", ""),
        ("no tags at all", None),
        ("<answer>42", None),
        ("42</answer>", None),
        ("</answer>42<answer>", None),
        ("<answer>1</answer><answer>2</answer>", None),
        ("<answer>1<answer>2</answer>", None),
        ("", None),
    ],
)
def test_extract_answer(response, expected):
    assert extract_answer(response) == expected


# ---------------------------------------------------------------- accuracy

@pytest.mark.parametrize(
    "pred, gt",
    [
        ("(B)", "B"), ("B.", "B"), ("b", "B"), ("B)", "(b)"), (" B ", "b."),  # choice letters
        ("B. 42", "B"),  # a letter with its text is that letter
        ("1/2", "0.5"), ("0.50", "1/2"), ("\\frac{1}{2}", "0.5"), ("\\boxed{\\frac{1}{2}}", "0.5"),
        ("3 cm", "3"), ("3cm", "3"), ("3 \\text{cm}", "3"), ("12 cm^2", "12"),
        ("1,000", "1000"), ("-2", "-2"), ("\u22122", "-2"), ("50%", "50"), ("30°", "30"),
        ("60^\\circ", "60"), ("$5$", "5"), ("5.", "5"), ("0.3333", "1/3"),
        ("Red", "red"), ("  blue   whale ", "Blue Whale"), ("Yes.", "yes"),
    ],
)
def test_accuracy_matches(pred, gt):
    assert accuracy_reward(ans(pred), gt) == 1.0


@pytest.mark.parametrize(
    "pred, gt",
    [
        ("C", "B"), ("(A)", "B"), ("C. 42", "B"),     # wrong letter, with or without its text
        ("0.6", "0.5"), ("2", "1/2"), ("1,2", "12"),  # "1,2" is a list, not 12
        ("10001", "10000"), ("0.333", "1/3"),         # integers exact; 1e-4 relative tolerance
        ("50%", "0.5"),                               # percent sign is dropped, not divided by 100
        ("2x", "2"), ("3 apples", "3"),               # only known units are dropped
        ("blue", "red"), ("1/0", "0"), ("", "0"),
    ],
)
def test_accuracy_mismatches(pred, gt):
    assert accuracy_reward(ans(pred), gt) == 0.0


def test_accuracy_needs_an_extracted_answer():
    assert accuracy_reward("the answer is 5", "5") == 0.0
    assert accuracy_reward("<answer>5</answer><answer>5</answer>", "5") == 0.0
    assert accuracy_reward("<answer>5</answer>", "5") == 1.0  # format is not accuracy's business
    assert accuracy_reward("<answer>5</answer>", 5) == 1.0    # numeric labels tolerated


# ---------------------------------------------------------------- format

@pytest.mark.parametrize(
    "response",
    [
        "<think>a</think><answer>b</answer>",
        "  \n<think>\nlong thought\n</think>\n\n<answer> 17 </answer>\n",
        "<think></think><answer>17</answer>",  # empty think: the demo model's short form
    ],
)
def test_format_think_ok(response):
    assert format_reward(response) == 1.0
    assert format_reward(response, "answer-first") == 0.0


@pytest.mark.parametrize(
    "response",
    [
        "",
        "<answer>17</answer>",                                      # no think
        "<think>a</think>",                                         # no answer
        "<answer>17</answer><think>a</think>",                      # wrong order
        "hi <think>a</think><answer>17</answer>",                   # text before
        "<think>a</think>so<answer>17</answer>",                    # text between
        "<think>a</think><answer>17</answer> bye",                  # text after
        "<think>a</think><answer>1</answer><answer>2</answer>",     # two answers
        "<think>a</think><think>b</think><answer>1</answer>",       # two thinks
        "<think>a<answer>1</answer></think><answer>1</answer>",     # answer inside think
        "<think>a</think><answer><think>x</think>1</answer>",       # think inside answer
        "<think>a</think><answer>1</answer><reason>r</reason>",     # foreign tag
        "<think>a</think><answer>   </answer>",                     # blank answer
        "<think>a<answer>1</answer>",                               # unclosed think
    ],
)
def test_format_think_rejects(response):
    assert format_reward(response) == 0.0


@pytest.mark.parametrize("response, expected", [
    ("<answer>5</answer>", 1.0),  # case (1): the answer at once
    (" <answer> 5 </answer>\n", 1.0),
    ("<think>3 + 2 = 5</think> <answer>5</answer>", 1.0),  # case (2): thinking, then the answer
    ("<think></think><answer>5</answer>", 1.0),
    ("<answer></answer>", 0.0),  # an empty answer
    ("<answer>5</answer><answer>6</answer>", 0.0),  # repeated: a hedge
    ("<answer><answer>5</answer></answer>", 0.0),  # nested
    ("so <answer>5</answer>", 0.0),  # text outside the blocks
    ("<answer>5</answer> <think>why</think>", 0.0),  # the blocks in the wrong order
    ("<answer>5</answer><reason>r</reason>", 0.0),  # a foreign tag
    ("<think>a<answer>5</answer></think>", 0.0),
    ("<think>a</think>", 0.0),  # thinking without an answer
])
def test_either_format_accepts_the_two_forms_of_adaptive_thinking(response, expected):
    assert rewards.either_format_reward(response) == expected


def test_format_answer_first():
    good = "<answer>B</answer>\n<reason>because</reason>"
    assert format_reward(good, "answer-first") == 1.0
    assert format_reward(good, "think") == 0.0
    assert format_reward("<answer>B</answer><reason></reason>", "answer-first") == 1.0
    assert format_reward("<reason>r</reason><answer>B</answer>", "answer-first") == 0.0
    foreign = "<answer>B</answer><reason>r</reason><think>t</think>"
    assert format_reward(foreign, "answer-first") == 0.0
    assert format_reward("<answer> </answer><reason>r</reason>", "answer-first") == 0.0


def test_format_unknown_style():
    assert set(FORMAT_STYLES) == {"think", "answer-first"}
    with pytest.raises(ValueError):
        format_reward("<think>a</think><answer>b</answer>", style="nothink")


# ---------------------------------------------------------------- equality (No-Thinking-RL)

def test_equality_reward():
    assert equality_reward("  cat \n", "cat") == 1.0
    assert equality_reward("Cat", "cat") == 0.0  # exact match: no case folding
    assert equality_reward("<answer>cat</answer>", "cat") == 0.0
    assert equality_reward("", "") == 1.0
    assert equality_reward("the cat", "cat") == 0.0


# ---------------------------------------------------------------- hostile inputs

FRAGMENTS = [
    "<think>", "</think>", "<answer>", "</answer>", "<reason>", "</reason>", "\\boxed{", "{", "}",
    "0", "7", "1/2", "-", ".", ",", "%", "°", " ", "\n", "\t", "é", "漢字", "🙂", "\u2212",
    "$",
    "\\frac{", "cm", "(B)", "\x00", "<", ">", "/",
]


def _all_rewards(s: str, gt: str):
    return [
        accuracy_reward(s, gt),
        format_reward(s, "think"),
        format_reward(s, "answer-first"),
        equality_reward(s, gt),
        accuracy_reward(gt, s),  # hostile ground truth too
    ]


def test_hostile_random_strings_never_raise():
    rng = random.Random(0)
    for _ in range(3000):
        s = "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(0, 40)))
        gt = "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(0, 3)))
        a = extract_answer(s)
        assert a is None or isinstance(a, str)
        for r in _all_rewards(s, gt):
            assert isinstance(r, float) and r in (0.0, 1.0)


@pytest.mark.parametrize(
    "s",
    [
        "", " ", "\x00", "<answer>" + "9" * 100_000 + "</answer>", "<answer>1e999999999</answer>",
        "<answer>" + "1/" * 50_000 + "</answer>", "<answer>\\boxed{" + "{" * 100_000 + "</answer>",
        "<think>" * 20_000, "<answer>" + "\\frac{" * 20_000 + "</answer>",
    ],
)
def test_hostile_edge_strings(s):
    for r in _all_rewards(s, "1"):
        assert isinstance(r, float)


def _min_time(fn, s, repeats=3):
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(s)
        best = min(best, time.perf_counter() - t0)
    return best


def _run_all(s):
    extract_answer(s)
    _all_rewards(s, "1/2")


@pytest.mark.parametrize(
    "head, unit, tail",
    [
        ("", "<think>", ""),
        ("", "<answer>", ""),
        ("", "\\boxed{{{{", ""),
        ("<answer>", "\\boxed{{{{", "</answer>"),
        ("<answer>\\boxed{", "{", "</answer>"),  # one \boxed{: brace scan over it all
        ("<answer>\\boxed{", "{}", "</answer>"),
        ("<answer>", "\\frac{1}{", "</answer>"),
        ("<answer>", "\\text{", "</answer>"),
        ("<answer>", "9/", "</answer>"),
        ("<think>", "<think>a</think>", "</think><answer>1</answer>"),
    ],
)
def test_linear_time(head, unit, tail):
    def make(n_bytes):
        return head + unit * (n_bytes // len(unit)) + tail

    small, large = make(200_000), make(800_000)
    t_small, t_large = _min_time(_run_all, small), _min_time(_run_all, large)
    assert t_small < 0.5
    assert t_large < 10 * t_small + 0.02  # 4x the input, at most ~10x the time (quadratic: 16x)


def test_char_length_drops_whitespace_around_tag_characters_like_the_released_code():
    # "<think>", "3", "</think>" with spaces around "<", ">" and "/" removed: 7 + 1 + 8 = 16 characters
    assert rewards.char_length("<think> 3 </think>") == 16
    assert rewards.char_length("  <think>\n 1 + 2 = 3 \n</ think >") == len("<think>1 + 2 = 3</think>")
    assert rewards.char_length("a b") == 3  # other whitespace counts
    assert rewards.char_length("1 / 2") == 3


def _char_length_by_regex(s: str) -> int:
    """The released code's measure, with its regex: the reference char_length is checked against."""
    return len(re.sub(r"\s*([<>/])\s*", r"\1", s))


def test_char_length_equals_the_released_regex_on_unicode_whitespace():
    every_char = "".join(map(chr, range(0x110000)))
    spaces = sorted(set(re.findall(r"\s", every_char)) | {c for c in every_char if c.isspace()})
    assert {"\x1c", "\x1f", "\x85", "\xa0", "\u2028", "\u3000", "\t", "\n"} <= set(spaces)
    others = ["<", ">", "/", "a", "7", "\u200b", "\ufeff", "漢", "🙂", "\x00", "\\s"]
    rng = random.Random(0)
    strings = ["", " ", "<", " / ", "\x1c<\x1d", "a\x85>\xa0b", "\u2028/\u3000", "<think>\t\n 3 \r\n</think>",
               "  a  ", "a \u200b< b", "/" * 3 + " " * 3, " " * 3 + "<"]
    for _ in range(5000):
        strings.append("".join(rng.choice(spaces) if rng.random() < 0.5 else
                               rng.choice(others) if rng.random() < 0.8 else chr(rng.randrange(0x110000))
                               for _ in range(rng.randint(0, 30))))
    for s in strings:
        assert rewards.char_length(s) == _char_length_by_regex(s), repr(s)


def test_overlong_penalty_by_hand():
    # budget L = 100, buffer 20: nothing up to 80 tokens, then linear to -P at 100
    lengths = [10, 80, 85, 90, 100, 120]
    assert np.allclose(rewards.overlong_penalty(lengths, 100, 20), [0, 0, -0.25, -0.5, -1.0, -1.0])
    assert np.allclose(rewards.overlong_penalty(lengths, 100, 20, penalty=0.5), [0, 0, -0.125, -0.25, -0.5, -0.5])
    assert not rewards.overlong_penalty(lengths, 100, 0).any()  # buffer 0: off
    with pytest.raises(ValueError):
        rewards.overlong_penalty(lengths, 100, 101)
