"""Answer checking, rules 3-7: are two final answers equal? (docs/answers.md, "The rules, in order").

`answer_matches` is the one entry point (rewards.accuracy_reward's r_acc and the Geometry3K benchmark rule call it):
rule 1 (extract.final_answer) on the answer and the gold, rule 2 (extract.is_hedge), then one function per rule:
choice_letter / choices_equal (3), value_of_assignment ("x = 12", 4), strip_units / unit_of (5), split_items /
as_interval (lists, tuples, intervals, sets, matrices, 6), and values_equal (7), which hands single expressions
and relations to answer_checking/math_equivalence.py (numeric evaluation of what answer_checking/latex_parse.py,
a bounded LaTeX parser, reads). Every function accepts any str without raising; only short candidates
(_MAX_ANSWER) are parsed.
"""
import functools
import math
import re

from answer_checking import latex_parse, math_equivalence
from answer_checking.extract import final_answer, is_hedge, is_name

_MAX_ANSWER = 1000  # candidates longer than this are only compared as text (no rules that scan them twice)
_MAX_ITEMS = 16  # lists longer than this are compared item by item as text only
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
_EQUALS = re.compile(r"(?<![<>!\\])=|\\in(?![a-zA-Z])")


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


def value_of_assignment(s: str) -> str:
    """Rule 4, "x = 12" is 12 (Geometry3K, MathVerse golds like r=24.4): a named left side is dropped,
    a chain a = b = c keeps its last part, "x \\approx 11" is 11, "1/3 \\approx 0.33" keeps the exact 1/3,
    "x \\in [0,1]" is [0,1]."""
    for approx in ("\\approx", "≈"):
        if approx in s:
            before, after = s.split(approx, 1)
            s = after if is_name(before) else before
    parts = _EQUALS.split(s)
    if len(parts) >= 3:
        return parts[-1].strip()
    if len(parts) == 2 and is_name(parts[0]) and parts[1].strip():
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
    if len(ops) == 2 and set(ops) <= {"<", "<="} and is_name(parts[1]):
        return brackets[ops[0]][0] + parts[0] + "," + parts[2] + brackets[ops[1]][1]
    if len(ops) == 2 and set(ops) <= {">", ">="} and is_name(parts[1]):
        low, high = (brackets[o.replace(">", "<")] for o in ops)
        return high[0] + parts[2] + "," + parts[0] + low[1]
    if len(ops) == 1 and ops[0] in ("<", "<=", ">", ">="):
        name_left = is_name(parts[0])
        if not (name_left or is_name(parts[1])):
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


def answer_matches(answer_text: str, ground_truth, choices=None, precision=None) -> bool:
    """True iff `answer_text` (an answer block's content, or any answer) gives an answer equal to `ground_truth`.

    The rules, in order: final_answer (extraction, both sides), is_hedge, choices_equal (letters, and with
    a row's `choices` letter = option text), then answers_equal: relations, value_of_assignment, split_items,
    strip_units, values_equal. `choices`: the row's option texts in letter order (MathVista, Geometry3K);
    `precision`: MathVista's decimals, the answer rounded to them before comparing.
    """
    if isinstance(precision, (int, float)) and math.isfinite(precision):
        precision = int(precision)  # MathVista stores 1.0, 2.0, and NaN where a row has none
    else:
        precision = None
    pred, gold = final_answer(answer_text), final_answer(str(ground_truth))
    if not pred or not gold or is_hedge(pred):
        return False
    try:
        return bool(choices_equal(pred, gold, choices, precision))
    except RecursionError:
        return False  # deeply nested lists: not an answer
