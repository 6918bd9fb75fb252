"""Answer checking, rules 1-2: what a text's final answer is (docs/answers.md, "The rules, in order").

Rule 1, extraction (`final_answer`), reads an answer block and a gold alike: the \\boxed{} content, else the part
after the last "the answer is" / "Final Answer:", else the last value of the prose. Rule 2 (`is_hedge`) marks
"A or B" answers. `unwrap_boxed` is the plain box unwrap of rewards.extract_answer (§6) and of the libraries'
inputs in tools/measure_answers.py; `is_name` ("x", "AB", "f(x)": a left-hand side that names a value) is shared
with answer_checking/grade.py's rules 4 and 6. Every function accepts any str (empty, unicode, megabytes of
tags) without raising; long text is scanned linearly and only its last _MAX_PROSE characters are read for a
final value.
"""
import re

_MAX_PROSE = 2000  # prose answers: only their last 2,000 characters are read for a final value
_BOXED = "\\boxed{"  # unwrap_boxed's box (unchanged); final_answer uses _BOX_OPEN, which also reads \fbox, \boxed {
_BOX_OPEN = re.compile(r"\\(?:boxed|fbox)\s*\{")
_MATH = re.compile(r"\$\$(.+?)\$\$|\\\[(.+?)\\\]|\$([^$\n]+)\$|\\\(([^\n]+?)\\\)", re.S)
_MARKER = re.compile(r"(?:final answer|the answer|answer|option|choice)\s*(?:is|:)\s*", re.I)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z<\\$])|\n+|<\|")
_NUMBER = re.compile(r"[-−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s*/\s*\d+)?%?|[-−]?\.\d+")
_HEDGE = re.compile(r"\bor\b|\beither\b|\\lor\b|\\vee\b", re.I)
_NAME_DROP = re.compile(r"_\{[^{}]*\}|_\w|\s")  # subscripts and spaces of a name
_NAME_COMMAND = re.compile(r"\\(?:angle|measuredangle|overline|overarc|widehat)\s*\{?\w*\}?|\\[a-zA-Z]+")


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


def unwrap_boxed(s: str) -> str:
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
        values = [(end, seg) for _, end, seg in _math_segments(sentence) if not is_name(seg)]
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


def is_name(s: str) -> bool:
    """A left-hand side that names the value: x, r, AB, m\\angle ABC, \\text{Area}, f(x), (p,q), V_1:V_2."""
    rest = _NAME_DROP.sub("", _NAME_COMMAND.sub("x", s))  # \theta, \angle 1, \text{Area}: letters of a name
    return bool(rest) and re.fullmatch(r"[a-zA-Z(){},|:'\[\]]*[a-zA-Z][a-zA-Z(){},|:'\[\]]*", rest) is not None
