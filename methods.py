"""The method presets: what each method prompts the model with, how its answers are scored, which FAST parts are on.

FAST-GRPO (Xiao & Gan, NeurIPS 2025) and the baselines of "Think or Not Think" (Li et al., 2025) differ only in
these settings; the training loop (fast_grpo.py) and the evaluation (eval.py) both read them from here, so a
number in an evaluation is scored the way training rewarded it. docs/paper.md §6 and §7 state them.
"""

import os

import numpy as np

import rewards

# The shipped demo (demo/make_model.py): a tiny model on the digit-sum task, sized to train in minutes on a CPU.
DEMO_MODEL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "demo", "model")
MAX_PIXELS = 1280 * 28 * 28  # images of real models are capped at 1,280 image tokens (the demo keeps its processor's)

# The settings a flag left unset takes, by model: the demo model's (docs/demo.md), else the paper's (docs/paper.md
# §1, with a 1,024-token response budget); then the method preset (METHODS below).
DEMO_DEFAULTS = dict(lr=7e-5, batch_size=8, group_size=8, max_steps=80, max_new_tokens=256, micro_batch_size=64,
                     curriculum="none")
PAPER_DEFAULTS = dict(lr=1e-6, batch_size=8, group_size=8, max_steps=500, max_new_tokens=1024, micro_batch_size=8,
                      max_pixels=MAX_PIXELS)
# With LoRA the update is low-rank and starts from B = 0: a larger step than full fine-tuning's (docs/scaling.md).
LORA_LR = dict(demo=1e-3, paper=1e-5)


def is_demo(model):
    """Whether `model` names the shipped demo model (its defaults are DEMO_DEFAULTS)."""
    return os.path.abspath(model) == DEMO_MODEL


def max_pixels_for(model, max_pixels=None):
    """The image-size cap training, evaluation and data preparation use for `model`: `max_pixels` if given, else
    none for the demo model (its processor's own) and MAX_PIXELS for any other; one rule, so all three agree."""
    if max_pixels is not None:
        return max_pixels
    return None if is_demo(model) else MAX_PIXELS

# The instruction that follows the question in the user turn (verbatim from the papers).
PROMPTS = {
    "fast": "You FIRST think about the reasoning process as an internal monologue and then provide the final "
            "answer. The reasoning process MUST BE enclosed within <think> </think> tags. The final answer MUST "
            "BE put in <answer> </answer> tags.",
    "thinking": "Please output the thinking process in <think> </think> and final answer in <answer> </answer> "
                "tags.",
    "no-thinking": "Please directly output the answer.",
    "think-after-answer": "Please first output the answer in <answer> </answer> tags and then output a brief "
                          "reasoning process in <reason> </reason> tags.",
    "adaptive-thinking": "Please first identify whether this problem requires intermediate thinking or calculation. "
                         "If the problem requires thinking or calculation, output the thinking and calculation "
                         "process inside <think> </think> tags and the final answer inside <answer> </answer> tags. "
                         "If no thinking or calculation is required, directly output the final answer inside "
                         "<answer> </answer> tags. Your output should follow one of two cases: (1) '<answer> ... "
                         "</answer>', (2) '<think> ... </think> <answer> ... </answer>'.",
}

# prompt: a key of PROMPTS; format_style: a rewards.FORMAT_STYLES key, or "either" (Adaptive-Thinking: the answer
# alone or think then answer, rewards.either_format_reward), or None (No-Thinking's exact match, no r_fmt);
# format_weight: r = r_acc + format_weight * r_fmt (+ 0.5 r_t with the length reward); kl_coef: the constant beta
# when dynamic_kl is off; the last three switch FAST's parts on (Eq. 4, Eq. 5, Slow-to-Fast sampling).
METHODS = {
    "fast": dict(prompt="fast", format_style="think", format_weight=0.5, kl_coef=0.01,
                 length_reward=True, dynamic_kl=True, curriculum="slow-to-fast"),
    "grpo": dict(prompt="fast", format_style="think", format_weight=0.5, kl_coef=0.01,
                 length_reward=False, dynamic_kl=False, curriculum="none"),
    "thinking": dict(prompt="thinking", format_style="think", format_weight=1.0, kl_coef=0.04,
                     length_reward=False, dynamic_kl=False, curriculum="none"),
    "no-thinking": dict(prompt="no-thinking", format_style=None, format_weight=0.0, kl_coef=0.04,
                        length_reward=False, dynamic_kl=False, curriculum="none"),
    "think-after-answer": dict(prompt="think-after-answer", format_style="answer-first", format_weight=1.0,
                               kl_coef=0.04, length_reward=False, dynamic_kl=False, curriculum="none"),
    # the study's fourth method: the model decides whether to think; either form is well formed
    "adaptive-thinking": dict(prompt="adaptive-thinking", format_style="either", format_weight=1.0, kl_coef=0.04,
                              length_reward=False, dynamic_kl=False, curriculum="none"),
}


def instruction(method):
    """The text a method appends to every question."""
    return PROMPTS[METHODS[method]["prompt"]]


def score_responses(texts, answers, method, choices=None, reward_fn=None, rows=None):
    """Rewards per response: (correct r_acc, format r_fmt, parts) as float arrays and a dict (docs/paper.md §6).
    `choices`: per response, its question's options (a `choices` column) or None. No-Thinking RL scores the whole
    output by exact match and has no format reward. `parts` is {} for the presets; with `reward_fn` (--reward-fn,
    task_rewards/reward_files.py, called with each response's data row in `rows`) it holds every part the user's
    function returned, `overall` among them, and `correct` is 1 where its `accuracy` part is > 0."""
    if reward_fn is not None:
        parts = reward_fn(texts, answers, rows)
        zeros = np.zeros(len(texts))  # no accuracy part: whatever reads pass rates was refused on the first call
        correct = (parts["accuracy"] > 0).astype(float) if "accuracy" in parts else zeros
        return correct, parts.get("format", zeros), parts
    preset = METHODS[method]
    if preset["format_style"] is None:  # No-Thinking RL: the whole output must equal the label
        correct = [rewards.equality_reward(t, a) for t, a in zip(texts, answers)]
        return np.array(correct), np.zeros(len(texts)), {}
    choices = choices if choices is not None else [None] * len(texts)
    correct = [rewards.accuracy_reward(t, a, choices=c) for t, a, c in zip(texts, answers, choices)]
    if preset["format_style"] == "either":
        fmt = [rewards.either_format_reward(t) for t in texts]
    else:
        fmt = [rewards.format_reward(t, preset["format_style"]) for t in texts]
    return np.array(correct), np.array(fmt), {}
