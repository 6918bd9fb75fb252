"""Each benchmark's own rule for whether one answer is right, and the metrics that combine several answers.

Pure functions of strings and 0/1 lists: no model, no files (benchmarks/protocol.py reads the data and calls these).
Every rule is written from reading the benchmark's official scorer, named in its docstring; none is copied.
Where an official scorer asks a GPT model (answer extraction, MathVerse's judge), the answer here is the one
`final_answer` takes from the response instead, and the rule-based part of the scorer is applied to it.
"""

import math
import re
from fractions import Fraction

from answer_checking import grade

# ---------------------------------------------------------------------------------------------------------------
# The answer every `eval.py --benchmark` scoring reads (docs/evaluation.md; training keeps rewards.extract_answer).


def last_boxed(text):
    """Content of the last \\boxed{...} in `text` (nested braces matched), or None when there is none or it is
    never closed."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth = 0
    for i in range(start + len("\\boxed"), len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[start + len("\\boxed{"):i]
    return None


def final_answer(response):
    """The response's answer: the content of its last complete <answer>...</answer> block (a \\boxed{} inside it
    unwrapped), else the content of its last \\boxed{}; stripped. None when there is neither, or it is empty.

    The last block, not the only one: PAPO-Eval-style scoring reads the final answer a model gives, and a
    benchmark number must not depend on the training reward's anti-hedging rule."""
    start, end = response.rfind("<answer>"), -1
    while start >= 0:  # the last <answer> that is closed, and its first </answer>
        end = response.find("</answer>", start)
        if end >= 0:
            break
        start = response.rfind("<answer>", 0, start)
    if start >= 0:
        answer = response[start + len("<answer>"):end]
        boxed = last_boxed(answer)
        answer = boxed if boxed is not None else answer
    else:
        answer = last_boxed(response)
    answer = answer.strip() if answer is not None else ""
    return answer or None


# ---------------------------------------------------------------------------------------------------------------
# MathVista


def edit_distance(a, b):
    """Levenshtein distance (insertions, deletions, substitutions each cost 1), as python-Levenshtein's
    `distance` that MathVista's scorer imports."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def mathvista_correct(answer, gold, question_type, answer_type, choices, precision):
    """MathVista's rule, lupantech/MathVista evaluation/calculate_score.py (normalize_extracted_answer, then
    safe_equal against the gold `answer`):
    - multi_choice: a "(X)" in the answer gives the letter X (upper-cased); a letter among A, B, ... (one per
      choice, case as written) stands for that choice's text; anything else becomes the choice nearest by edit
      distance (the first of equals). Right iff that text equals the gold text.
    - integer: str(int(float(answer))) equals the gold (so 3.7 reads as 3, as there).
    - float: str(round(float(answer), int(precision))) equals the gold.
    - list: the answer string equals the gold.
    No answer is wrong (calculate_score.py's --ignore_empty_extractions; by default it would map an empty
    extraction to the nearest, i.e. shortest, choice)."""
    if answer is None:
        return False
    if question_type == "multi_choice":
        choices = list(choices or [])
        if not choices:
            return False
        text = answer.strip()
        letter = re.findall(r"\(([a-zA-Z])\)", text)
        if letter:
            text = letter[0].upper()
        labels = [chr(ord("A") + i) for i in range(len(choices))]
        if text in labels:
            prediction = choices[labels.index(text)]
        else:
            prediction = min(choices, key=lambda choice: edit_distance(text, choice))  # min keeps the first of ties
        return prediction == gold
    try:
        if answer_type == "integer":
            return str(int(float(answer))) == gold
        if answer_type == "float":
            return str(round(float(answer), int(precision))) == gold
    except (ValueError, OverflowError, TypeError):
        return False  # calculate_score.py: a number that does not parse normalises to None, never equal
    return str(answer) == gold  # "list" (and "text", which MathVista only has with multiple choice)


# ---------------------------------------------------------------------------------------------------------------
# MATH-Vision


def mathvision_clean(answer):
    """The model answer as MATH-Vision's evaluator normalises it (mathllm/MATH-V evaluation/utils.py
    find_math_answer and _strip_string, then evaluation/evaluate.py's letter clean-up): lower case, the value
    after the last '=' or \\approx, spaces, \\text, \\left/\\right, degrees, a few units and $ removed,
    '(a)' -> 'a', a trailing '.' and a leading ':' dropped."""
    s = answer.lower().replace("{}", "")
    if "}" in s and ("{" not in s or s.find("}") < s.find("{")):
        s = s.split("}")[0]  # a closing brace before any opening one ends the answer
    s = s.split("=")[-1].split("\\approx")[-1]
    for old, new in ((" ", ""), ("\\,", ""), ("∞", "\\infty"), ("+\\infty", "\\infty"), ("\\\\", "\\"), ("\n", ""),
                     ("\\text", ""), ("\\mbox", ""), ("bmatrix", "pmatrix"), ("\\left", ""), ("\\right", ""),
                     ("^{\\circ}", ""), ("^\\circ", ""), ("{m}^3", ""), ("m^3", ""), ("{units}", ""), ("units", ""),
                     ("{km}", ""), ("km", ""), ("\\!", ""), ("tfrac", "frac"), ("dfrac", "frac"), ("\\$", ""),
                     ("$", ""), ("\\%", "")):
        s = s.replace(old, new)
    if s.startswith("."):
        s = "0" + s
    s = s.replace("{.", "{0.")
    for letter in "abcde":
        s = s.replace(f"({letter})", letter).replace(f"{{{letter}}}", letter)
    return s.rstrip(".").lstrip(":").strip()


def mathvision_equal(gold, answer):
    """MATH-Vision's is_equal (mathllm/MATH-V evaluation/utils.py): both lower-cased; equal strings; else tuples
    or lists compared element by element; else both evaluated as numbers and equal when rounded to 2 decimals.
    The official code evaluates with latex2sympy; here `latex_number` evaluates numbers, fractions, roots,
    powers and pi (anything else only compares as text). Tuple elements compare by value ('1' = '1.0'), where
    the official string comparison of the rounded elements would tell 1 from 1.0."""
    gold, answer = gold.lower().strip(), answer.lower().strip()
    if not gold.replace(" ", "") or not answer.replace(" ", ""):
        return False
    if gold == answer:
        return True
    gold_parts, answer_parts = tuple_parts(gold), tuple_parts(answer)
    if gold_parts is not None and answer_parts is not None:
        return len(gold_parts) == len(answer_parts) and all(
            numbers_equal_2dp(g, a) or g == a for g, a in zip(gold_parts, answer_parts))
    return numbers_equal_2dp(gold, answer)


def tuple_parts(s):
    """'(a,b)' or '[a,b]' with at least two elements -> their strings; else None."""
    if len(s) > 2 and (s[0], s[-1]) in (("(", ")"), ("[", "]")) and "," in s:
        return [part.strip() for part in s[1:-1].split(",")]
    return None


def numbers_equal_2dp(a, b):
    x, y = latex_number(a), latex_number(b)
    return x is not None and y is not None and round(x, 2) == round(y, 2)


def mathvision_correct(answer, gold, options):
    """MATH-Vision's rule (mathllm/MATH-V evaluation/evaluate.py): the cleaned answer (`mathvision_clean`) is right
    iff it equals the gold (`mathvision_equal`), or, for a multiple-choice question, the text of the gold's
    option (options[ord(gold) - ord('A')])."""
    if answer is None:
        return False
    answer = mathvision_clean(answer)
    options = list(options or [])
    index = ord(gold) - ord("A") if len(gold) == 1 else -1
    gold_value = str(options[index]) if options and 0 <= index < len(options) else ""
    return mathvision_equal(gold, answer) or mathvision_equal(gold_value, answer)


# What latex2sympy (MATH-V's evaluator) reads past. Not "\\!" (the answer side has it removed by
# mathvision_clean, a gold's "$-\\!2$" stays unreadable there) nor a unicode π (unknown to it).
_LATEX_SPACING = ("\\left", "\\right", "\\displaystyle", "\\,", "\\;", " ", "$")
_LATEX_OPERATORS = (("\\cdot", "*"), ("\\times", "*"), ("\\div", "/"), (":", "/"), ("\u2212", "-"),
                    ("\\dfrac", "\\frac"), ("\\tfrac", "\\frac"))


def latex_number(text):
    """The value of a small LaTeX or plain arithmetic expression ('2\\sqrt{3}', '\\frac{1}{2}', '3^2', '1.5\\pi',
    '-0.25', the ratio '1:2'), or None. A recursive-descent parser over + - * / ^ :, parentheses and braces,
    \\frac, \\sqrt[n]{}, \\pi and implicit multiplication; rational arithmetic is exact (latex2sympy's is:
    (3^{1008}-1)/3^{1009} is 0.33), so huge integer powers are refused only past `_MAX_POWER_BITS`. Model
    output is never handed to eval()."""
    if not isinstance(text, str) or len(text) > 100:
        return None
    s = text
    for token in _LATEX_SPACING:
        s = s.replace(token, "")
    for old, new in _LATEX_OPERATORS:
        s = s.replace(old, new)
    parser = _Parser(s)
    try:
        value = parser.expression()
        if parser.position != len(s) or isinstance(value, complex):
            return None
        value = float(value)
    except (ValueError, ZeroDivisionError, OverflowError, IndexError, TypeError):
        return None
    return value if math.isfinite(value) else None


_MAX_POWER_BITS = 20000  # an exact power with more bits than this is refused (9^{9^9} would not finish)


def power(base, exponent):
    """base ** exponent: exact for a rational base and an integer exponent, else in floating point."""
    if isinstance(base, Fraction) and isinstance(exponent, Fraction) and exponent.denominator == 1:
        bits = max(base.numerator.bit_length(), base.denominator.bit_length()) * abs(exponent.numerator)
        if bits > _MAX_POWER_BITS:
            raise OverflowError("power too large")
        if base == 0 and exponent < 0:
            raise ZeroDivisionError("0 to a negative power")
        return base ** int(exponent)
    return float(base) ** float(exponent)


class _Parser:
    """State of `latex_number`'s parser: the text and the position read so far."""

    def __init__(self, text):
        self.text, self.position = text, 0

    def peek(self, token=None):
        rest = self.text[self.position:]
        return rest.startswith(token) if token else (rest[:1] or None)

    def take(self, token):
        if not self.peek(token):
            raise ValueError(f"expected {token}")
        self.position += len(token)

    def expression(self):
        value = self.term()
        while self.peek() in ("+", "-"):
            sign = self.peek()
            self.position += 1
            value = value + self.term() if sign == "+" else value - self.term()
        return value

    def term(self):
        value = self.factor()
        while True:
            if self.peek() in ("*", "/"):
                operator = self.peek()
                self.position += 1
                value = value * self.factor() if operator == "*" else value / self.factor()
            elif self.peek() is not None and (self.peek().isdigit() or self.peek() in "({\\."):
                value = value * self.factor()  # implicit multiplication: 2\sqrt{3}, 3\pi, 2(1+1)
            else:
                return value

    def factor(self):
        if self.peek() in ("-", "+"):
            sign = self.peek()
            self.position += 1
            return -self.factor() if sign == "-" else self.factor()
        base = self.atom()
        if self.peek("^"):
            self.position += 1
            exponent = self.factor() if self.peek() in ("-", "+") else self.atom(single_digit=True)
            base = power(base, exponent)
        return base

    def atom(self, single_digit=False):
        char = self.peek()
        if char is None:
            raise ValueError("unexpected end")
        if char.isdigit() or char == ".":
            if single_digit:  # x^23 is x^2 * 3 in LaTeX: an unbraced exponent is one character
                self.position += 1
                return Fraction(char)
            match = re.match(r"\d*\.?\d*", self.text[self.position:])
            self.position += match.end()
            return Fraction(match.group())
        for opening, closing in (("(", ")"), ("{", "}"), ("[", "]")):
            if char == opening:
                self.position += 1
                value = self.expression()
                self.take(closing)
                return value
        if self.peek("\\frac"):  # braced arguments only: latex2sympy reads \frac12 as nothing
            self.position += len("\\frac")
            numerator = self.braced()
            return numerator / self.braced()
        if self.peek("\\sqrt"):
            self.position += len("\\sqrt")
            degree = 2.0
            if self.peek("["):
                self.position += 1
                degree = self.expression()
                self.take("]")
            radicand = self.braced() if self.peek("{") else self.atom(single_digit=True)  # \sqrt3: _fix_sqrt
            if radicand < 0:
                raise ValueError("square root of a negative number")
            return float(radicand) ** (1.0 / float(degree))
        if self.peek("\\pi"):
            self.position += len("\\pi")
            return math.pi
        raise ValueError(f"unexpected {char!r}")

    def braced(self):
        self.take("{")
        value = self.expression()
        self.take("}")
        return value


# ---------------------------------------------------------------------------------------------------------------
# MathVerse, DynaMath, WeMath, Geometry3K


def mathverse_correct(answer, gold, question_type):
    """MathVerse scored by rules (no GPT judge): its quick match (ZrrSkywalker/MathVerse
    evaluation/score_answer_s2.py --quick_match; VLMEvalKit vlmeval/dataset/utils/mathverse.py post_check_score):
    the stripped answer equals the stripped gold. Two additions stand in for the GPT extraction step whose
    examples (evaluation/prompts.py) turn "D. They give ..." into "D": a multiple-choice answer that starts with an
    option letter ('D', '(D)', 'D.', 'D:', 'D text') is that letter, and numbers compare by value ('14.0' = '14').
    The GPT judge also accepts equivalent forms (0.5 m = 50 cm), so GPT-judged numbers read higher."""
    if answer is None:
        return False
    answer, gold = answer.strip(), str(gold).strip()
    if answer == gold:
        return True
    if question_type == "multi-choice":
        letter = re.match(r"\(?([A-Z])\)?(?:[.:)]|\s|$)", answer)
        return letter is not None and letter.group(1) == gold
    try:
        return float(answer) == float(gold)
    except ValueError:
        return False


def dynamath_correct(answer, gold, answer_type):
    """DynaMath as VLMEvalKit scores it (vlmeval/dataset/dynamath.py, parse_answer and DynaMath_auxeval), on the
    extracted answer in place of the JSON 'short answer':
    - float: the answer if all digits, else its first space-separated word ('2π' is 2 * pi), within 0.001 of the
      gold;
    - multiple choice: a one-character answer upper-cased, else the one letter of A-E it contains (exactly one),
      equal to the gold; with none or several, right iff the gold letter is in its first three characters;
    - free form: the lower-cased answer is contained in the lower-cased gold (VLMEvalKit's rule as written)."""
    if answer is None:
        return False
    gold = str(gold).strip()
    if answer_type == "float":
        try:
            word = answer if answer.isdigit() else answer.split(" ")[0]
            value = float(word.split("\u03c0")[0]) * math.pi if "\u03c0" in word else float(word)
            return abs(value - float(gold)) <= 0.001
        except ValueError:
            return False
    if answer_type == "multiple choice":
        if len(answer) == 1:
            return answer.upper() == gold
        letters = [letter for letter in "ABCDE" if letter in answer.upper()]
        if len(letters) == 1:
            return letters[0] == gold
        return gold in answer[:3].upper()
    return answer.lower() in gold.lower()


def wemath_correct(answer, gold):
    """WeMath's string matching (We-Math/We-Math evaluation/four_dimensional_metrics.py, the same in VLMEvalKit
    vlmeval/dataset/utils/wemath.py without a judge model): the text after the last 'Answer', the characters
    < > : . removed, stripped; its first character must be an option letter A-H and equal the gold letter.
    So 'B', 'B. 3 cm' and '<Answer>: B' are B; '(B)' is wrong, as there."""
    if answer is None:
        return False
    text = re.sub(r"[<>:.]", "", answer.split("Answer")[-1].strip()).strip()
    return bool(text) and text[0] in "ABCDEFGH" and text[0] == str(gold).strip()


def geometry3k_correct(answer, gold, choices=None):
    """Geometry3K has no official scorer: the project's answer checker (answer_checking.grade.answer_matches, the
    check behind r_acc, docs/answers.md) on the extracted answer, with the row's four choices (a letter answer
    equals its choice's text). An answer holding an <answer> or </answer> tag is wrong, as r_acc's one-block rule
    has it."""
    if answer is None or "<answer>" in answer or "</answer>" in answer:
        return False
    return grade.answer_matches(answer, str(gold), choices=choices)


# ---------------------------------------------------------------------------------------------------------------
# GSM8K, MATH500, AIME (text-only; FAST-1.5B's benchmarks)

GSM8K_GOLD = re.compile(r"#### (\-?[0-9\.\,]+)")  # openai/grade-school-math grade_school_math/dataset.py, ANS_RE
GSM8K_NUMBER = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")  # lm-evaluation-harness gsm8k-cot, "flexible-extract"


def gsm8k_correct(answer, gold):
    """GSM8K: the gold is the number after the answer's "#### " with its commas removed (openai/grade-school-math
    dataset.py extract_answer); the answer's number is the last match of lm-evaluation-harness's flexible-extract
    pattern in the extracted answer (gsm8k-cot.yaml), with '$' and ',' and a final '.' removed as its
    regexes_to_ignore and the official is_correct do. Right iff the two are equal as numbers ('72.0' = '72')."""
    if answer is None:
        return False
    match = GSM8K_GOLD.search(str(gold))
    gold = (match.group(1) if match else str(gold)).replace(",", "").strip()
    found = GSM8K_NUMBER.findall(answer)
    if not found:
        return False
    number = "".join(found[-1]).replace("$", "").replace(",", "").rstrip(".")
    try:
        return float(number) == float(gold)
    except ValueError:
        return number == gold


def math500_correct(answer, gold):
    """MATH-500 (HuggingFaceH4/MATH-500, the `answer` column): the boxed answer equal to the gold by the project's
    answer checker (answer_checking.grade.answer_matches: LaTeX parsed, numbers and expressions compared by value),
    the role hendrycks/math's is_equiv and Qwen2.5-Math's math_equal play in the published evaluations."""
    return answer is not None and grade.answer_matches(answer, str(gold))


def aime_correct(answer, gold):
    """AIME: every answer is an integer from 0 to 999, so the rule is integer equality (leading zeros as written
    on the answer sheet: '033' = 33); an answer that is not a plain integer goes through the answer checker
    (`33.0`, `x = 33`)."""
    if answer is None:
        return False
    text = answer.strip().strip("$").strip()
    if re.fullmatch(r"\d+", text):
        return int(text) == int(str(gold).strip())
    return grade.answer_matches(answer, str(gold).strip())


# ---------------------------------------------------------------------------------------------------------------
# Metrics that combine items. Each is computed on the k-th sample of every item of a group, then averaged over k;
# benchmarks/protocol.py checks that a group's items have the same number of samples first.


def worst_case_accuracy(seeds):
    """DynaMath's worst-case accuracy (VLMEvalKit vlmeval/dataset/dynamath.py, 'Worst Case'): a seed question counts
    when every one of its variants is right. `seeds`: one entry per seed, a list of its variants' 0/1 lists (one
    per sample). The share of seeds with all variants right on sample k, averaged over k."""
    num_samples = len(seeds[0][0])
    per_sample = [sum(all(variant[k] for variant in variants) for variants in seeds) / len(seeds)
                  for k in range(num_samples)]
    return sum(per_sample) / num_samples


def wemath_counts(problems, k):
    """The four-dimensional counts on sample k (We-Math evaluation/four_dimensional_metrics.py,
    evaluate_calculate_metrics; VLMEvalKit vlmeval/dataset/utils/wemath.py): for each multi-step problem,
    its one-step answers and its multi-step answer decide
      IK  some step wrong, multi wrong      IG  all steps right, multi wrong
      CM  loose: some step right, multi right; strict: all steps right, multi right
      RM  loose: all steps wrong, multi right; strict: some step wrong, multi right."""
    counts = dict(IK=0, IG=0, CM_loose=0, CM_strict=0, RM_loose=0, RM_strict=0)
    for steps, multi in problems:
        step_right = [step[k] for step in steps]
        every, some = all(step_right), any(step_right)
        if not multi[k]:
            counts["IG" if every else "IK"] += 1
        else:
            counts["CM_loose" if some else "RM_loose"] += 1
            counts["CM_strict" if every else "RM_strict"] += 1
    return counts


def wemath_scores(problems):
    """WeMath's four-dimensional metrics, strict and loose (We-Math evaluation/four_dimensional_metrics.py,
    evaluate_compute_final_scores and evaluate_update_main_results_df; VLMEvalKit the same):
    IK = IK / N, IG = IG / N, CM = CM / N, RM = RM / (CM + RM), score = (N - 0.5 IG - RM - IK) / N, with N the
    number of multi-step problems (the official code writes N = 525, testmini's count; here it is the count in
    the data), RM 0 when no multi-step problem is right (the official code would divide by zero).
    `problems`: (list of the one-step items' 0/1 sample lists, the multi-step item's 0/1 sample list) each.
    Averaged over samples k."""
    n, num_samples = len(problems), len(problems[0][1])
    totals = {setting: dict(IK=0.0, IG=0.0, CM=0.0, RM=0.0, score=0.0) for setting in ("strict", "loose")}
    for k in range(num_samples):
        counts = wemath_counts(problems, k)
        for setting, out in totals.items():
            cm, rm = counts[f"CM_{setting}"], counts[f"RM_{setting}"]
            out["IK"] += counts["IK"] / n / num_samples
            out["IG"] += counts["IG"] / n / num_samples
            out["CM"] += cm / n / num_samples
            out["RM"] += (rm / (cm + rm) if cm + rm else 0.0) / num_samples
            out["score"] += (n - 0.5 * counts["IG"] - rm - counts["IK"]) / n / num_samples
    return totals
