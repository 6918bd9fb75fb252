"""Rule-based rewards for FAST-GRPO and the "Think or Not Think" baselines.

Pure Python + numpy: answer extraction, accuracy (r_acc), format (r_fmt), No-Thinking-RL's
equality reward, and the adaptive thinking reward r_t of paper Eq. 4 (docs/paper.md §3, §6, §7).
The FAST total reward r = r_acc + 0.5 * r_fmt + 0.5 * r_t is assembled by the caller.

r_acc reads as a sequence of rules, one function each (docs/answers.md says what was chosen, why, and how
well it agrees with Math-Verify and mathruler): final_answer (extraction), is_hedge, choice_letter /
choices_equal, value_of_assignment ("x = 12"), strip_units, split_items (lists, tuples, intervals, sets,
matrices), and values_equal, which hands single expressions and relations to math_equivalence.py (numeric
evaluation of what latex_parse.py, a bounded LaTeX parser, reads). Every string function accepts any str
(empty, unicode, megabytes of tags) without raising; long text is scanned linearly and only short
candidates are parsed.
"""
import functools
import math
import re

import numpy as np

import latex_parse
import math_equivalence

# Format styles (§6, §7): the two blocks a response must consist of, in order.
FORMAT_STYLES = {
    "think": ("think", "answer"),  # FAST, Thinking-RFT: <think>..</think><answer>..</answer>
    "answer-first": ("answer", "reason"),  # Think-After-Answer: <answer>..</answer><reason>..
}
_ALL_TAGS = ("think", "answer", "reason")
_MAX_ANSWER = 1000  # candidates longer than this are only compared as text (no rules that scan them twice)
_MAX_PROSE = 2000  # prose answers: only their last 2,000 characters are read for a final value
_MAX_ITEMS = 16  # lists longer than this are compared item by item as text only

_BOXED = "\\boxed{"  # extract_answer's box (unchanged); the rules use _BOX_OPEN, which also reads \fbox, \boxed {
_BOX_OPEN = re.compile(r"\\(?:boxed|fbox)\s*\{")
_MATH = re.compile(r"\$\$(.+?)\$\$|\\\[(.+?)\\\]|\$([^$\n]+)\$|\\\(([^\n]+?)\\\)", re.S)
_MARKER = re.compile(r"(?:final answer|the answer|answer|option|choice)\s*(?:is|:)\s*", re.I)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z<\\$])|\n+|<\|")
_NUMBER = re.compile(r"[-−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s*/\s*\d+)?%?|[-−]?\.\d+")
_HEDGE = re.compile(r"\bor\b|\beither\b|\\lor\b|\\vee\b", re.I)
_SPACING = re.compile(r"\\[,;:! ]|\\q?quad|~|\\(?:left|right|bigl|bigr|big|Big|displaystyle|textstyle)(?![a-zA-Z])")
_WRAP = re.compile(r"\\(?:text|textbf|textit|textrm|textnormal|mbox|mathrm|mathbf|rm)\s*\{([^{}]*)\}")
_TRAILING_WRAP = re.compile(r"^(.*?[\d)}|.])\s*\\(?:text|textnormal|mbox|mathrm|rm)\s*\{\s*([a-zA-Z][a-zA-Z .]*)\}"
                            r"\s*(?:\^\s*\{?[23]\}?|[²³])?\s*$", re.S)
_UNIT_WORDS = (
    "mm|cm|km|m|in|inch|inches|ft|feet|foot|yd|yard|yards|mi|mile|miles|meter|meters|metre|metres|centimeter|"
    "centimeters|millimeters|kilometers|mg|g|kg|grams|kilograms|lb|lbs|pounds|ounces|oz|s|sec|second|seconds|"
    "min|minute|minutes|h|hr|hrs|hour|hours|day|days|week|weeks|month|months|year|years|deg|degree|degrees|"
    "unit|units|square units|sq units|ml|l|liters|litres|dollars|dollar|cents|cent|percent|percentage|pct|"
    "people|persons|students|points|times|mph|km/h|m/s|cm/s")
_UNIT = re.compile(rf"^(.*?\S)\s*(?:sq\.?\s+|square\s+|cubic\s+)?(?:{_UNIT_WORDS})\s*(?:\^\s*\{{?[23]\}}?|[²³])?\.?$",
                   re.I | re.S)
_SIGNS = ("^{\\circ}", "^\\circ", "\\circ", "°", "\\%", "%", "\\$", "$", "€", "£", "¥")
_CHOICE = re.compile(r"(?:option|choice|answer)?\s*(?:\(([a-h])\)|([a-h])(?=$|\s*[.):：]))\s*[.):：]?\s*(.*)",
                     re.S)
_THOUSANDS = re.compile(r"[+-]?\d{1,3}(?:(?:,|\s)\d{3})+(?:\.\d+)?")  # 1,000 and 1 000, not 1,2 or 32, 349
_APPROX = re.compile(r"^\s*(?:approximately|approx\.?|about|around|roughly|≈|\\approx)\s+", re.I)
_NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}
_NAME_DROP = re.compile(r"_\{[^{}]*\}|_\w|\s")  # subscripts and spaces of a name
_NAME_COMMAND = re.compile(r"\\(?:angle|measuredangle|overline|overarc|widehat)\s*\{?\w*\}?|\\[a-zA-Z]+")
_EQUALS = re.compile(r"(?<![<>!\\])=|\\in(?![a-zA-Z])")


def _box_contents(s: str) -> list[str]:
    """Contents of every top-level \\boxed{...} / \\fbox{...}, braces matched; one left-to-right pass."""
    out, done = [], 0
    for m in _BOX_OPEN.finditer(s):
        if m.start() < done:
            continue  # a box inside a box: part of the outer content
        depth = 0
        for end in range(m.end() - 1, len(s)):
            depth += (s[end] == "{") - (s[end] == "}")
            if depth == 0:
                break
        else:
            return out  # unbalanced: the rest is text
        out.append(s[m.end():end].strip())
        done = end + 1
    return out


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


def _answer_block(response: str) -> str | None:
    """§6: the stripped content of the single <answer>...</answer> block, or None."""
    if response.count("<answer>") != 1 or response.count("</answer>") != 1:
        return None
    start, end = response.find("<answer>") + len("<answer>"), response.find("</answer>")
    if end < start:
        return None
    return response[start:end].strip()


def extract_answer(response: str) -> str | None:
    """§6: stripped content of the single <answer>...</answer> block, \\boxed{} unwrapped.

    None when there is no complete block or when either tag occurs more than once (a hack guard:
    several answers must not be able to hedge).
    """
    block = _answer_block(response)
    return None if block is None else _unwrap_boxed(block)


# ---------------------------------------------------------------- r_acc: the rules, in the order applied

def _math_segments(text: str) -> list[tuple[int, int, str]]:
    """(start, end, content) of each $...$, $$...$$, \\(...\\), \\[...\\] in text."""
    return [(m.start(), m.end(), next(g for g in m.groups() if g is not None).strip()) for m in _MATH.finditer(text)]


def _without_delimiters(text: str) -> str:
    return _MATH.sub(lambda m: next(g for g in m.groups() if g is not None), text).strip().rstrip(".")


def _prose_words(text: str) -> int:
    return len(re.findall(r"(?<![\\a-zA-Z])[a-zA-Z]{3,}", text))


def final_answer(text: str) -> str | None:
    """Rule 1, extraction (§6; read as Math-Verify and mathruler read answers), on the answer and the gold alike.

    - \\boxed{} content; several different boxes are a list ("\\boxed{3} \\boxed{5}" never equals 5).
    - Else what follows the last "the answer is" / "Final Answer:", up to its sentence end.
    - There: math alone, or math joined by and/or/commas, or "Area $=113.1$", is read with its delimiters off;
      a value without prose ("12", "x = 12", "C. 145°") is itself.
    - In prose the last sentence with a value decides: a number after its last math that is not a mere name
      ($n$, $f(x)$), else that math. Two numbers there, or a "not", give None.
    """
    text = text.strip().replace("\\$", "")
    boxes = list(dict.fromkeys(b for b in _box_contents(text) if b))
    if boxes:
        return ", ".join(boxes)
    tail = text[-_MAX_PROSE:]
    markers = list(_MARKER.finditer(tail))
    if markers:
        tail = _SENTENCE_END.split(tail[markers[-1].end():], maxsplit=1)[0].strip()
    segments = _math_segments(tail)
    outside = _MATH.sub(" ", tail)
    only_math = segments and not outside.strip(" .,;:")
    if only_math or re.fullmatch(r"[\s.,;]*(?:(?:and|or|,|;)[\s.,;]*)*", outside):
        return _without_delimiters(tail)
    if segments and (re.match(r"[=<>]", segments[0][2]) or re.search(r"[=<>]\s*$", tail[:segments[0][0]])):
        return _without_delimiters(tail)  # MathVerse's "Area $=113.1 \\mathrm{~cm}^{2}$": the name belongs to it
    prose = _prose_words(outside) >= 3
    if not prose and not segments:
        return tail.rstrip(".").strip()
    for sentence in reversed(_SENTENCE_END.split(tail)) if prose else [tail]:
        values = [(end, seg) for _, end, seg in _math_segments(sentence) if not _is_name(seg)]
        after = sentence[values[-1][0]:] if values else sentence
        numbers = _NUMBER.findall(_MATH.sub(" ", after))
        if numbers:  # a number after the last math decides: "The largest $n$ is 34."
            return numbers[0] if len(numbers) == 1 and not re.search(r"\bnot\b", sentence, re.I) else None
        if values:
            return values[-1][1]
    return (segments[-1][2] if segments else tail).rstrip(".").strip()  # a text answer: "Evelyn"


def is_hedge(answer: str) -> bool:
    """Rule 2, hedges score 0 (§6 hack guard): "A or B", "either 3 or 5" in a response's answer."""
    return _HEDGE.search(answer) is not None


def _plain(s: str) -> str:
    """Spacing commands, $ signs and {,} gone; \\text{} unwrapped; a final period dropped."""
    s = re.sub(r"(?<!\\)\\\\(?=[a-zA-Z])", r"\\", s)  # doubly escaped \\frac (JSON/raw-string golds) is \frac
    s = re.sub(r",\\!\s*", ",", s.replace("\\$", "").replace("$", "").replace("{,}", ","))  # 11,\!111
    s = _SPACING.sub(" ", s)
    s = _APPROX.sub("", _WRAP.sub(r"\1", s)).strip()
    return s[:-1].rstrip() if s.endswith(".") and not s[-2:-1].isdigit() else s


def choice_letter(answer: str) -> tuple[str, str] | None:
    """Rule 3, choice letters (MathVista, Geometry3K, MathVerse, WeMath, MATH-Vision): ("c", text) for "C",
    "(C)", "C.", "C. 145°", "D:140°", "(B) no", "Option C", \\text{(C)}; None for anything else."""
    m = _CHOICE.fullmatch(_plain(answer).casefold())
    return None if m is None else (m.group(1) or m.group(2), m.group(3).strip())


def choices_equal(pred: str, gold: str, choices, precision=None) -> bool:
    """Rule 3: a letter equals a letter; with the row's `choices` a letter equals its option text and the text
    its letter; a letter written with its text is that letter (the letter decides if the text disagrees);
    without choices, a letter with text is compared by its text."""
    p, g = choice_letter(pred), choice_letter(gold)
    if p and g:
        return p[0] == g[0]
    options = [str(c) for c in choices] if choices is not None else []  # a list, tuple or numpy array

    def option(letter):
        index = ord(letter) - ord("a")
        return options[index] if index < len(options) else None

    if p:
        text = option(p[0]) if options else p[1]
        return bool(text) and answers_equal(text, gold, precision)
    if g:
        text = option(g[0]) if options else g[1]
        return bool(text) and answers_equal(pred, text, precision)
    return answers_equal(pred, gold, precision)


def _is_name(s: str) -> bool:
    """A left-hand side that names the value: x, r, AB, m\\angle ABC, \\text{Area}, f(x), (p,q), V_1:V_2."""
    rest = _NAME_DROP.sub("", _NAME_COMMAND.sub("x", s))  # \theta, \angle 1, \text{Area}: letters of a name
    return bool(rest) and re.fullmatch(r"[a-zA-Z(){},|:'\[\]]*[a-zA-Z][a-zA-Z(){},|:'\[\]]*", rest) is not None


def value_of_assignment(s: str) -> str:
    """Rule 4, "x = 12" is 12 (Geometry3K, MathVerse golds like r=24.4): a named left side is dropped,
    a chain a = b = c keeps its last part, "x \\approx 11" is 11, "1/3 \\approx 0.33" keeps the exact 1/3,
    "x \\in [0,1]" is [0,1]."""
    for approx in ("\\approx", "≈"):
        if approx in s:
            before, after = s.split(approx, 1)
            s = after if _is_name(before) else before
    parts = _EQUALS.split(s)
    if len(parts) >= 3:
        return parts[-1].strip()
    if len(parts) == 2 and _is_name(parts[0]) and parts[1].strip():
        return parts[1].strip()
    return s.strip()


def strip_units(s: str) -> str:
    """Rule 5, units and signs (MathVista `unit`, MathVerse "40.84 \\mathrm{~cm}"): a trailing unit word
    (years, cm^2, degrees, percent, ...) or \\text{unit} after a value, and °, %, $ signs, are dropped."""
    s = s.strip()
    for _ in range(3):
        m = _TRAILING_WRAP.match(s) or _UNIT.match(s)
        if m is None or not re.search(r"[\d)}|]", m.group(1)):
            break
        if len(m.group(0)) - len(m.group(1)) <= 3 and not re.fullmatch(r"[-+\d.,/\s]+", m.group(1)):
            break  # one-letter units (m, g, s, h) only after a bare number: "2x + 5m" keeps its m
        s = m.group(1).strip()
    for sign in _SIGNS:
        s = s.replace(sign, "")
    return s.strip()


# Spellings of one unit (the rest are compared as written, plural s aside): "12 in" is "12 inches", not "12 ft".
_UNIT_SPELLINGS = {"inch": ("in", "inches"), "foot": ("ft", "feet"), "yard": ("yd", "yards"), "mile": ("mi", "miles"),
                   "m": ("meter", "meters", "metre", "metres"), "cm": ("centimeter", "centimeters"),
                   "mm": ("millimeters",), "km": ("kilometers",), "g": ("grams",), "kg": ("kilograms",),
                   "lb": ("lbs", "pounds"), "oz": ("ounces",), "s": ("sec", "second", "seconds"),
                   "min": ("minute", "minutes"), "h": ("hr", "hrs", "hour", "hours"), "degree": ("deg", "degrees"),
                   "l": ("liters", "litres"), "percent": ("percentage", "pct"), "dollar": ("dollars",),
                   "cent": ("cents",)}
_UNIT_CANONICAL = {spelling: unit for unit, spellings in _UNIT_SPELLINGS.items() for spelling in (unit, *spellings)}


def unit_of(s: str) -> str | None:
    """The unit word after a value ("12 inches" -> "inch", "40.84 \\mathrm{~cm}" -> "cm"), in one spelling; None
    without one. Rule 5's companion: when both sides name a unit, the units must agree."""
    s = s.strip()
    m = _TRAILING_WRAP.match(s) or _UNIT.match(s)
    if m is None or not re.search(r"[\d)}|]", m.group(1)):
        return None
    word = m.group(2) if m.re is _TRAILING_WRAP else s[len(m.group(1)):]
    word = re.sub(r"\^.*|[²³.]|\b(?:sq|square|cubic)\b", "", word.casefold()).strip(" ~")
    word = " ".join(word.split())
    return _UNIT_CANONICAL.get(word, _UNIT_CANONICAL.get(word.removesuffix("s"), word.removesuffix("s")))


def _top_level_split(s: str, separators: re.Pattern) -> list[str]:
    """s split at separators outside brackets (any of ( [ { open, any of ) ] } close: [0,1) is one group)."""
    parts, depth, start = [], 0, 0
    for m in re.finditer(rf"[(\[{{]|[)\]}}]|{separators.pattern}", s):
        tok = m.group(0)
        if tok in "([{":
            depth += 1
        elif tok in ")]}":
            depth -= 1
        elif depth == 0:
            parts.append(s[start:m.start()])
            start = m.end()
    return [p.strip() for p in parts + [s[start:]]]


def _matching_close(s: str) -> int:
    depth = 0
    for i, ch in enumerate(s):
        depth += (ch in "([{") - (ch in ")]}")
        if depth == 0:
            return i
    return -1


_LIST_SEP = re.compile(r",|;|\s+and\s+|\bor\b")
_MATRIX = re.compile(r"\\begin\{([pbvB]?matrix|array)\}(?:\{[^{}]*\})?(.*?)\\end\{\1\}", re.S)


def split_items(s: str):
    """Rule 6, lists (docs/answers.md): (kind, items). kind "one" for a single value; "matrix"; "union" and
    "set" (unordered); "(]"-style bracket kinds for tuples and intervals (ordered, brackets must agree);
    "bare" for a comma/and list (unordered, ordered against a bracketed one). a \\pm b is the set {a-b, a+b}."""
    s = s.strip()
    m = _MATRIX.search(s)
    if m:
        rows = [r for r in re.split(r"\\\\", m.group(2)) if r.strip()]
        return "matrix", [[c.strip() for c in r.split("&")] for r in rows]
    if re.search(r"\\cup|∪", s):
        return "union", [p for p in re.split(r"\\cup|∪", s)]
    if s.startswith("\\{") and s.endswith("\\}") and _matching_close(s[1:]) == len(s) - 2:
        return "set", [p for p in _top_level_split(s[2:-2], _LIST_SEP) if p]
    while s.startswith("{") and _matching_close(s) == len(s) - 1:
        s = s[1:-1].strip()  # {1,3} is LaTeX grouping
    if _THOUSANDS.fullmatch(s):
        return "one", [re.sub(r"[,\s]", "", s)]
    if s[:1] in "([" and _matching_close(s) == len(s) - 1:
        inner = _top_level_split(s[1:-1], re.compile("," if "," in s else ";"))  # (0;-2;6) too
        if len(inner) > 1 or re.fullmatch(r"[-+]?[\d.]+", inner[0]):
            return s[0] + s[-1], inner  # "(4)" is an option label or a 1-tuple, not 4; "(9+1)" is 10
    items = [p for p in _top_level_split(s, _LIST_SEP) if p]
    if len(items) == 1 and len(re.findall(r"\\pm|±", s)) == 1:
        a, b = re.split(r"\\pm|±", s)
        return "set", [f"{a}-({b})" if a.strip() else f"-({b})", f"{a}+({b})" if a.strip() else b]
    return ("bare", items) if len(items) > 1 else ("one", [s])


def as_interval(s: str) -> str | None:
    """Rule 6: an inequality in one variable as an interval: -2 \\le x \\le 7 is [-2,7], x > 5 is (5,\\infty)."""
    parts, ops = latex_parse.relation_parts(s)
    brackets = {"<": ("(", ")"), "<=": ("[", "]")}
    if len(ops) == 2 and set(ops) <= {"<", "<="} and _is_name(parts[1]):
        return brackets[ops[0]][0] + parts[0] + "," + parts[2] + brackets[ops[1]][1]
    if len(ops) == 2 and set(ops) <= {">", ">="} and _is_name(parts[1]):
        low, high = (brackets[o.replace(">", "<")] for o in ops)
        return high[0] + parts[2] + "," + parts[0] + low[1]
    if len(ops) == 1 and ops[0] in ("<", "<=", ">", ">="):
        name_left = _is_name(parts[0])
        if not (name_left or _is_name(parts[1])):
            return None
        bound = parts[1] if name_left else parts[0]
        upper = (ops[0] in ("<", "<=")) == name_left
        o, c = brackets[ops[0].replace(">", "<")]
        return f"(-\\infty,{bound}{c}" if upper else f"{o}{bound},\\infty)"
    return None


def _squash(s: str) -> str:
    return re.sub(r"\s+", "", s).casefold()


@functools.lru_cache(maxsize=4096)
def values_equal(a: str, b: str, precision=None) -> bool:
    """Rule 7, one value each (a: the answer, b: the gold; "three" is 3): equal as text (case and spacing aside),
    as relations (equations and inequalities in either orientation), or by value (math_equivalence:
    2\\sqrt{2} = \\sqrt{8}, 0.3333 = 1/3, 10000 != 10001, 51.045 != 51.04)."""
    units = unit_of(a), unit_of(b)
    if None not in units and units[0] != units[1]:
        return False  # "12 inches" is not "12 ft"
    a, b = (_NUMBER_WORDS.get(x.casefold(), x) for x in (strip_units(a), strip_units(b)))
    if not a or not b:
        return False
    if _squash(a) == _squash(b):
        return True
    same = math_equivalence.relations_equal(a, b)
    if same is None:
        same = math_equivalence.expressions_equal(*(_THOUSANDS.fullmatch(x) and re.sub(r"[,\s]", "", x) or x
                                                    for x in (a, b)), precision=precision)
    return bool(same)


def _items_equal(kind_a, xs, kind_b, ys, precision) -> bool:
    ordered = {kind_a, kind_b} & {"()", "[]", "(]", "[)", "row", "matrix"}
    if not ordered:  # sets: duplicates count once
        xs, ys = (list({_squash(v): v for v in vs}.values()) for vs in (xs, ys))
    if len(xs) != len(ys) or len(xs) > _MAX_ITEMS:
        return len(xs) == len(ys) and [_squash(x) for x in xs] == [_squash(y) for y in ys]
    if kind_a == "matrix" or kind_b == "matrix":
        return kind_a == kind_b and all(_items_equal("row", r, "row", q, precision) for r, q in zip(xs, ys))
    if ordered:
        if kind_a != kind_b and "bare" not in (kind_a, kind_b):
            return False  # (0,1) != [0,1), a set is not a tuple
        return all(answers_equal(x, y, precision) for x, y in zip(xs, ys))
    unused = list(ys)
    for x in xs:
        match = next((i for i, y in enumerate(unused) if answers_equal(x, y, precision)), None)
        if match is None:
            return False
        unused.pop(match)
    return True


def answers_equal(pred: str, gold: str, precision=None) -> bool:
    """Rules 4-7 on two final answers: relations first, then "x =" dropped, then lists item by item, then values.
    A list never equals a single value (2, 3, 4 != 3)."""
    pred, gold = _plain(pred), _plain(gold)
    if not pred or not gold:
        return False
    if _squash(pred) == _squash(gold):
        return True
    if len(pred) > _MAX_ANSWER or len(gold) > _MAX_ANSWER:
        return False
    if latex_parse.split_relation(pred) and latex_parse.split_relation(gold):
        same = math_equivalence.relations_equal(pred, gold)
        if same is not None:
            return same
    (kp, ip), (kg, ig) = split_items(pred), split_items(gold)
    if kp == "one":  # "x = 12"; a list's items are stripped one by one when they are compared
        pred = value_of_assignment(pred)
        kp, ip = split_items(pred)
    if kg == "one":
        gold = value_of_assignment(gold)
        kg, ig = split_items(gold)
    if (kp == "one") != (kg == "one"):  # an inequality against an interval: compare as intervals
        interval = as_interval(pred if kp == "one" else gold)
        if interval is None:
            return False
        kp, ip = split_items(interval) if kp == "one" else (kp, ip)
        kg, ig = split_items(interval) if kg == "one" else (kg, ig)
    if kp == "one" and kg == "one":
        return values_equal(ip[0], ig[0], precision)
    if "union" in (kp, kg):
        kp, ip = (kp, ip) if kp == "union" else ("union", [pred])
        kg, ig = (kg, ig) if kg == "union" else ("union", [gold])
    return _items_equal(kp, ip, kg, ig, precision)


def accuracy_reward(response: str, ground_truth: str, choices=None, precision=None) -> float:
    """§6 r_acc: 1.0 iff the response's single <answer> block holds an answer equal to the ground truth.

    The rules, in order: final_answer (extraction, both sides), is_hedge, choices_equal (letters, and with
    a row's `choices` letter = option text), then answers_equal: relations, value_of_assignment, split_items,
    strip_units, values_equal. `choices`: the row's option texts in letter order (MathVista, Geometry3K);
    `precision`: MathVista's decimals, the answer rounded to them before comparing.
    """
    block = _answer_block(response)
    if not block:
        return 0.0
    if isinstance(precision, (int, float)) and math.isfinite(precision):
        precision = int(precision)  # MathVista stores 1.0, 2.0, and NaN where a row has none
    else:
        precision = None
    pred, gold = final_answer(block), final_answer(str(ground_truth))
    if not pred or not gold or is_hedge(pred):
        return 0.0
    try:
        return float(choices_equal(pred, gold, choices, precision))
    except RecursionError:
        return 0.0  # deeply nested lists: not an answer


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


def either_format_reward(response: str) -> float:
    """§7 Adaptive-Thinking's r_fmt ("Think or Not Think", appendix E.3): 1.0 iff the response is either one
    <answer>..</answer> block alone or a <think>..</think> block then an <answer>..</answer> block (format_reward's
    "think" style). The same guards: nested, repeated or foreign tags score 0; the answer may not be empty."""
    if "<think>" in response or "</think>" in response:
        return format_reward(response, "think")
    if any(response.count(f"<{tag}>") != (tag == "answer") or response.count(f"</{tag}>") != (tag == "answer")
           for tag in _ALL_TAGS):
        return 0.0
    s = response.strip()
    if not (s.startswith("<answer>") and s.endswith("</answer>")):
        return 0.0
    return float(bool(s[len("<answer>"):-len("</answer>")].strip()))


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
