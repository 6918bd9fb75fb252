"""Rule-based rewards for FAST-GRPO and the "Think or Not Think" baselines.

Pure Python + numpy: answer extraction, accuracy (r_acc), format (r_fmt), No-Thinking-RL's
equality reward, and the adaptive thinking reward r_t of paper Eq. 4 (paper-notes §3, §6, §7).
The FAST total reward r = r_acc + 0.5 * r_fmt + 0.5 * r_t is assembled by the caller.

Every string function accepts any str (empty, unicode, megabytes of tags) without raising and runs
in time linear in its length: tags are found with str.find / str.count, braces are matched by one
scan, the few regexes have no nested quantifiers, and numbers are only parsed from short strings.
"""
import math
import re
from fractions import Fraction

import numpy as np

# Format styles (§6, §7): the two blocks a response must consist of, in order.
FORMAT_STYLES = {
    "think": ("think", "answer"),  # FAST, Thinking-RFT: <think>..</think><answer>..</answer>
    "answer-first": ("answer", "reason"),  # Think-After-Answer: <answer>..</answer><reason>..
}
_ALL_TAGS = ("think", "answer", "reason")
_MAX_NUM_LEN = 64  # only parse numbers from strings this short: no huge-int conversions

_BOXED = "\\boxed{"
_CHOICE = re.compile(r"\(([a-z])\)|([a-z])[.):]?")  # "(b)", "b", "b.", "b)", "b:" (after casefold)
_LATEX_WRAP = re.compile(r"\\(?:text|mathrm|mbox|textbf)\{([^{}]*)\}")  # \text{cm} -> cm
_LATEX_FRAC = re.compile(r"\\[dt]?frac\{([^{}]*)\}\{([^{}]*)\}")  # \frac{1}{2} -> 1/2
# number, then an optional unit word (with optional power), then an optional % or degree sign
_NUM_UNIT = re.compile(r"([+-]?[0-9.,/]+)\s*(?:([a-z]+)\s*(?:\^?[23]|[²³])?)?\s*[%°]?")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")  # no exponent: "1e9999" is text
_THOUSANDS = re.compile(r"[+-]?[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?")  # "1,000" but not "1,2"
_UNITS = {
    "mm", "cm", "m", "km", "in", "inch", "inches", "ft", "feet", "foot", "yd", "yard", "yards",
    "mi", "mile", "miles", "mg", "g", "kg", "lb", "lbs", "s", "sec", "seconds", "min", "minutes",
    "h", "hr", "hours", "deg", "degree", "degrees", "unit", "units", "ml", "l",
}


def _unwrap_boxed(s: str) -> str:
    """§6: the content of the last \\boxed{...} in s (nested braces matched), else s unchanged."""
    start = s.rfind(_BOXED)
    if start < 0:
        return s
    begin, depth = start + len(_BOXED), 1
    for i, ch in enumerate(s[begin:], begin):  # one pass from the last \boxed{: linear in len(s)
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return s[begin:i].strip()
    return s  # unbalanced: leave the text for plain string comparison


def extract_answer(response: str) -> str | None:
    """§6: stripped content of the single <answer>...</answer> block, \\boxed{} unwrapped.

    None when there is no complete block or when either tag occurs more than once (a hack guard:
    several answers must not be able to hedge).
    """
    if response.count("<answer>") != 1 or response.count("</answer>") != 1:
        return None
    start, end = response.find("<answer>") + len("<answer>"), response.find("</answer>")
    if end < start:
        return None
    return _unwrap_boxed(response[start:end].strip())


def _parse_number(s: str) -> tuple[Fraction, bool] | None:
    """§6: (exact value, is_integer_literal) for "3", "-0.5", "1/2", "1,000", "3 cm", "50%"."""
    if len(s) > _MAX_NUM_LEN:
        return None
    m = _NUM_UNIT.fullmatch(s)
    if m is None or (m.group(2) is not None and m.group(2) not in _UNITS):
        return None  # "2x" or "3 apples" are not numbers with units
    num = m.group(1)
    if "," in num:  # commas only as thousands separators; "1,2" is a list, not a number
        if not _THOUSANDS.fullmatch(num):
            return None
        num = num.replace(",", "")
    parts = num.split("/")
    if len(parts) > 2 or not all(_DECIMAL.fullmatch(p) for p in parts):
        return None
    value = Fraction(parts[0])
    if len(parts) == 2:
        den = Fraction(parts[1])
        if den == 0:
            return None
        value /= den
    return value, "." not in num and "/" not in num


def _normalize(s: str):
    """§6: canonical answer: ("choice", letter), ("num", (value, is_int)) or ("text", s)."""
    s = _unwrap_boxed(s.strip()).replace("\\$", "").replace("$", "")  # $...$ math, dollar signs
    s = s.replace("\u2212", "-")  # unicode minus sign
    s = _LATEX_WRAP.sub(r"\1", s)
    s = _LATEX_FRAC.sub(r"\1/\2", s)
    for latex, plain in (("^{\\circ}", "°"), ("^\\circ", "°"), ("\\circ", "°"), ("\\%", "%")):
        s = s.replace(latex, plain)
    s = " ".join(s.casefold().split())  # case-fold, collapse whitespace
    if s.endswith("."):
        s = s[:-1].rstrip()
    m = _CHOICE.fullmatch(s)
    if m:
        return "choice", m.group(1) or m.group(2)
    num = _parse_number(s)
    if num is not None:
        return "num", num
    return "text", s


def _numbers_equal(a: tuple[Fraction, bool], b: tuple[Fraction, bool]) -> bool:
    """Exact match, else 1e-4 relative tolerance unless both are integers (10000 != 10001)."""
    (x, x_int), (y, y_int) = a, b
    if x == y:
        return True
    if x_int and y_int:
        return False
    return math.isclose(float(x), float(y), rel_tol=1e-4, abs_tol=1e-9)  # 0.3333 == 1/3


def accuracy_reward(response: str, ground_truth: str) -> float:
    """§6 r_acc: 1.0 iff the extracted answer equals the ground truth after normalisation.

    Both sides are normalised alike. "50%" compares equal to "50" (the sign is dropped like a
    unit), not to "0.5"; a number with a unit from _UNITS equals the bare number ("3 cm" == "3").
    """
    pred = extract_answer(response)
    if not pred:
        return 0.0
    kind_p, p = _normalize(pred)
    kind_g, g = _normalize(str(ground_truth))  # datasets sometimes store labels as numbers
    if kind_p != kind_g:
        return 0.0
    if kind_p == "num":
        return float(_numbers_equal(p, g))
    return float(p == g and p != "")


def format_reward(response: str, style: str = "think") -> float:
    """§6/§7 r_fmt: 1.0 iff the response is exactly two blocks: for style "think"
    <think>..</think><answer>..</answer>; for "answer-first" <answer>..</answer><reason>..</reason>

    Only whitespace may surround the blocks. Every known tag (think/answer/reason, open and close)
    must occur exactly as often as the style needs, so nested, repeated or foreign tags score 0.
    The non-answer block may be empty (the demo model writes <think></think>); the answer may not.
    """
    if style not in FORMAT_STYLES:
        raise ValueError(f"unknown format style {style!r}, expected one of {list(FORMAT_STYLES)}")
    first, second = FORMAT_STYLES[style]
    for tag in _ALL_TAGS:
        want = 1 if tag in (first, second) else 0
        if response.count(f"<{tag}>") != want or response.count(f"</{tag}>") != want:
            return 0.0
    s = response.strip()
    o1, c1 = f"<{first}>", f"</{first}>"
    o2, c2 = f"<{second}>", f"</{second}>"
    if not (s.startswith(o1) and s.endswith(c2)):
        return 0.0
    i_c1, i_o2 = s.find(c1), s.find(o2)
    if not (len(o1) <= i_c1 < i_o2) or s[i_c1 + len(c1):i_o2].strip():
        return 0.0  # blocks out of order, or text between them
    body = s[i_o2 + len(o2):len(s) - len(c2)] if second == "answer" else s[len(o1):i_c1]
    return float(bool(body.strip()))


def equality_reward(response: str, ground_truth: str) -> float:
    """§7 No-Thinking-RL: 1.0 iff the whole output, stripped, equals the label (no r_fmt)."""
    return float(response.strip() == str(ground_truth).strip())


_SPACE_AROUND_TAG_CHARS = re.compile(r"\s*([<>/])\s*")


def char_length(response: str) -> int:
    """Length in characters as the released code measures it for the thinking reward (`--length-unit chars`):
    whitespace around '<', '>' and '/' removed first, so "<think> 3 </think>" counts as "<think>3</think>"."""
    return len(_SPACE_AROUND_TAG_CHARS.sub(r"\1", response))


def thinking_reward(lengths, correct, hard) -> np.ndarray:
    """Eq. 4 (§3): adaptive thinking reward r_t, one value per response.

    L_avg is the mean length (tokens) over all given responses, i.e. the batch.
    Easy and correct: 1 - L/L_avg (brevity pays; no lower clip).
    Hard and wrong: min(L/L_avg - 1, 1) (longer thinking pays, capped at 1). Otherwise 0.
    """
    lengths = np.asarray(lengths, dtype=np.float64)
    correct, hard = np.asarray(correct, dtype=bool), np.asarray(hard, dtype=bool)
    if not (lengths.shape == correct.shape == hard.shape):
        raise ValueError(f"shape mismatch: {lengths.shape}, {correct.shape}, {hard.shape}")
    reward = np.zeros_like(lengths)
    if lengths.size == 0:
        return reward
    l_avg = lengths.mean()
    if l_avg <= 0:
        return reward  # all responses empty: no length signal, and no 0/0
    ratio = lengths / l_avg
    easy_correct, hard_wrong = ~hard & correct, hard & ~correct
    reward[easy_correct] = 1.0 - ratio[easy_correct]
    reward[hard_wrong] = np.minimum(ratio[hard_wrong] - 1.0, 1.0)
    return reward
