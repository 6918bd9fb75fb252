"""The paper's rule-based rewards for FAST-GRPO and the "Think or Not Think" baselines (docs/paper.md §3, §6, §7).

Pure Python + numpy: the accuracy reward r_acc (§6: the single <answer> block, then one call to the answer checker),
the format reward r_fmt (§6, §7) and Adaptive-Thinking's either-format variant, No-Thinking-RL's equality reward
(§7), the character length of a response, and the adaptive thinking reward r_t of Eq. 4 (§3). The FAST total
reward r = r_acc + 0.5 * r_fmt + 0.5 * r_t is assembled by the caller. Answer checking itself (extraction,
choice letters, units, lists, numeric equivalence) lives in answer_checking/ (docs/answers.md). Every string
function accepts any str (empty, unicode, megabytes of tags) without raising.
"""
import numpy as np

from answer_checking import grade
from answer_checking.extract import unwrap_boxed

# Format styles (§6, §7): the two blocks a response must consist of, in order.
FORMAT_STYLES = {
    "think": ("think", "answer"),  # FAST, Thinking-RFT: <think>..</think><answer>..</answer>
    "answer-first": ("answer", "reason"),  # Think-After-Answer: <answer>..</answer><reason>..
}
_ALL_TAGS = ("think", "answer", "reason")


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
    return None if block is None else unwrap_boxed(block)


def accuracy_reward(response: str, ground_truth: str, choices=None, precision=None) -> float:
    """§6 r_acc: 1.0 iff the response's single <answer> block holds an answer equal to the ground truth.

    The block as extract_answer finds it (None for no complete block or a repeated tag: several answers cannot
    hedge), then one call to the answer checker, answer_checking.grade.answer_matches (docs/answers.md: the rules
    in order). `choices`: the row's option texts in letter order (MathVista, Geometry3K); `precision`:
    MathVista's decimals (a float, NaN where a row has none), the answer rounded to them before comparing.
    """
    block = _answer_block(response)
    if not block:
        return 0.0
    return float(grade.answer_matches(block, ground_truth, choices, precision))


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


_TAG_CHARS = ("<", ">", "/")


def char_length(response: str) -> int:
    """Length in characters as the released code measures it for the thinking reward (`--length-unit chars`):
    whitespace around '<', '>' and '/' removed first, so "<think> 3 </think>" counts as "<think>3</think>".

    The released code substitutes the regex `\\s*([<>/])\\s*` by its middle character: a whole run of whitespace
    goes when the character just before or just after it is '<', '>' or '/'. str.isspace is true exactly where
    `\\s` matches (tests/test_rewards.py compares the two on random unicode strings)."""
    length, i = len(response), 0
    while i < len(response):
        if not response[i].isspace():
            i += 1
            continue
        run_end = i
        while run_end < len(response) and response[run_end].isspace():
            run_end += 1
        if response[i - 1:i] in _TAG_CHARS or response[run_end:run_end + 1] in _TAG_CHARS:
            length -= run_end - i
        i = run_end
    return length


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


def overlong_penalty(lengths, max_new_tokens, buffer, penalty=1.0) -> np.ndarray:
    """DAPO's overlong reward shaping (Yu et al., 2025, Eq. 13; docs/paper.md §10), one value per response:
    0 up to L - buffer tokens, then falling linearly to -penalty at the budget L (and beyond). buffer 0: all 0.

    R = 0 if |y| <= L - buffer; ((L - buffer) - |y|) / buffer if L - buffer < |y| <= L; -1 if |y| > L; times penalty.
    """
    lengths = np.asarray(lengths, dtype=np.float64)
    if not buffer:
        return np.zeros_like(lengths)
    if not 0 < buffer <= max_new_tokens:
        raise ValueError(f"the overlong buffer must be between 1 and max_new_tokens ({max_new_tokens}), got {buffer}")
    start = max_new_tokens - buffer
    return penalty * np.clip((start - lengths) / buffer, -1.0, 0.0)

