"""A reward function for a classification task, for `--reward-fn docs/examples/cls_reward.py:compute_score`.

The setting of CLS-RL in "Think or Not Think" (Li et al., 2025): each image shows one of a fixed set of classes
(a flower species, an aircraft model, a pet breed) and the ground truth is the class name, e.g. "Bengal" or
"Boeing 737-800". The model answers in FAST's format, <think>...</think><answer>class name</answer>.

The signature is EasyR1's and the FAST authors' (`compute_score(predict_str, ground_truth)`): one response and its
ground truth in, a dict out. `overall` is the reward GRPO uses (FAST adds its 0.5 r_t on top); `accuracy` > 0 marks
the response correct, which the pass rate, the curriculum, Eq. 4 and Eq. 5 read; every part is logged per step as
reward_<part>. docs/reward-functions.md says how to write your own.

Plain Python, no import from this project: copy it anywhere and edit it.
"""

import re

FORMAT_WEIGHT = 0.5  # FAST's w in r_acc + w r_fmt (CLS-RL itself weighs the format reward 1.0)
THINK_THEN_ANSWER = re.compile(r"\s*<think>.*?</think>\s*<answer>(.+?)</answer>\s*", re.DOTALL)


def normalise(name):
    """A class name as compared: lower case, without spaces, underscores, hyphens or a final full stop, so
    "Boeing 737-800", "boeing_737_800" and "Boeing 737800." are one class."""
    return re.sub(r"[\s_\-]+", "", name.strip().rstrip(".").lower())


def answer_of(response):
    """The text of the single <answer>...</answer> block, or None (none, or several: a response must not hedge)."""
    if response.count("<answer>") != 1 or response.count("</answer>") != 1:
        return None
    match = re.search(r"<answer>(.*?)</answer>", response, re.DOTALL)
    return match.group(1) if match else None


def compute_score(predict_str, ground_truth):
    """{'overall', 'accuracy', 'format'} for one response: accuracy 1.0 when its answer names the ground-truth
    class, format 1.0 when it is exactly one <think> block followed by one <answer> block."""
    answer = answer_of(predict_str)
    accuracy = float(answer is not None and normalise(answer) == normalise(str(ground_truth)))
    one_think = predict_str.count("<think>") == 1 and predict_str.count("</think>") == 1
    well_formed = float(answer is not None and one_think and THINK_THEN_ANSWER.fullmatch(predict_str) is not None)
    return {"overall": accuracy + FORMAT_WEIGHT * well_formed, "accuracy": accuracy, "format": well_formed}
