"""The exercises: the table a teacher edits. One `Exercise` per idea a course teaches, in the order a course takes
them; `python -m classroom table` prints it as docs/teaching.md's table (tests/classroom/test_classroom.py checks
that they agree, and that the grader catches wrong implementations of each).

An exercise's functions are "module.function" (a top-level module, module.py) or "package.module.function"
(package/module.py); its tests are pytest node ids, relative to the repository root, of tests that import them.
"""

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Exercise:
    """One idea a course teaches: the function(s) a student writes and the project tests that grade them."""
    id: str
    functions: tuple  # "module.function" or "package.module.function", blanked together
    reference: str  # the section of docs/paper.md (the specification, copied into every assignment) defining it
    points: int
    minutes: int  # a fair time for a student who has read the reference
    prerequisites: str
    hint: str  # shapes and what the tests check; goes into the blanked body
    tests: tuple  # pytest node ids (without parameters) relative to the project root


def _tests(file, *names):
    """Node ids of tests in tests/`file`."""
    return tuple(f"tests/{file}::{name}" for name in names)


EXERCISES = [
    Exercise(
        "advantages", ("fast_grpo.group_advantages",), "§1", 2, 15, "torch basics",
        "rewards: (questions, G) -> float32 tensor (questions, G), one advantage per response, normalised "
        "within its own question's group. The tests check a group worked by hand (torch's default, unbiased "
        "std) and that an all-equal group gives exactly 0, not NaN.",
        _tests("test_fast_grpo.py", "test_group_advantages_by_hand")),
    Exercise(
        "k3-kl", ("fast_grpo.k3_kl",), "§1", 2, 15, "torch basics, log-probabilities",
        "logp, ref_logp: (N, T) per-token log-probs of the policy and of the frozen reference -> (N, T). "
        "The tests check 0 where the two agree, one value by hand (mind which way round the ratio goes), "
        "and finite values for log-ratios of +-1000 in either direction (clamp to [-20, 20]).",
        _tests("test_fast_grpo.py", "test_k3_kl_zero_when_policies_match_and_positive_otherwise")),
    Exercise(
        "grpo-loss", ("fast_grpo.grpo_loss",), "§1", 5, 45, "advantages, k3-kl",
        "logp, old_logp, ref_logp, response_mask: (N, T); advantages: (N,); kl_coef: (N,) or a scalar -> a "
        "scalar to minimise. Use importance_log_ratio for rho and aggregate_loss for the average. The tests "
        "check the on-policy value for each aggregation, where the clip acts (per token and GSPO's per "
        "response), the per-question KL weight, the gradient (REINFORCE weights 1/(N |o_i|) for 'seq'), and "
        "that -inf log-probs on padding do not leak into the loss. They use known-good k3_kl, "
        "importance_log_ratio and aggregate_loss.",
        _tests("test_fast_grpo.py", "test_grpo_loss_on_policy_equals_minus_mean_advantage",
               "test_grpo_loss_kl_term_per_question_coefficient", "test_grpo_loss_clips_the_ratio",
               "test_seq_and_token_aggregation_differ_on_unequal_lengths",
               "test_gradient_is_reinforce_with_mu_1_and_no_kl",
               "test_dr_grpo_divides_the_token_sum_by_rows_times_the_budget",
               "test_gspo_clips_the_geometric_mean_of_a_responses_token_ratios",
               "test_padding_with_minus_infinity_log_probs_does_not_poison_the_loss")),
    Exercise(
        "loss-aggregation", ("fast_grpo.aggregate_loss",), "§1, §10 (Dr. GRPO)", 2, 20, "grpo-loss",
        "per_token: (N, T) losses, 0 on padding; response_mask: (N, T) -> a scalar. 'seq' averages each "
        "response over its own tokens, then the responses; 'token' averages over all response tokens; "
        "'dr-grpo' divides the sum by the constant N x max_new_tokens, whatever the lengths (and needs it: "
        "ValueError without). The tests check all three by hand on responses of 1 and 3 tokens.",
        _tests("test_fast_grpo.py", "test_aggregate_loss_seq_token_and_dr_grpo_by_hand")),
    Exercise(
        "gspo-ratio", ("fast_grpo.importance_log_ratio",), "§10 (GSPO)", 2, 20, "grpo-loss",
        "logp, old_logp, response_mask: (N, T) -> log rho (N, T), 0 on padding (which may hold -inf). 'token': "
        "each token's own log-ratio; 'sequence': every token of a response gets log s_i, the mean of its "
        "response's token log-ratios (s_i is their geometric mean). The tests check both by hand and the "
        "on-policy gradient (1 / |o_i| per token: GRPO's 'seq' gradient).",
        _tests("test_fast_grpo.py", "test_importance_log_ratio_per_token_and_per_sequence_by_hand",
               "test_gspo_ratio_on_policy_is_1_with_the_gradient_of_the_mean_log_prob")),
    Exercise(
        "token-logprobs", ("vlm.completion_logprobs",), "§1 (log-probs)", 4, 45, "grpo-loss; a causal LM's logits",
        "head: the model's output layer (hidden states -> logits); hidden: (N, T + 1, H), the final hidden states "
        "of the positions before each of the T completion tokens and one more; completion_ids: (N, T) -> "
        "(float32 log-probs (N, T), entropies (N, T) or None). The logit at position t predicts token t + 1; "
        "divide by the temperature (0 counts as 1) and mask the vision tokens (suppress_ids) with -inf, as "
        "`sample` does. With entropy=True also return -sum p log p at each position, without gradient (p log p "
        "is 0 where p is 0). The tests sample at temperatures 1.0 and 0.7 and check that your log-probs equal "
        "the ones `generate` sampled with, to 1e-4, and the entropy against the whole logits.",
        _tests("test_vlm.py", "test_training_logprobs_match_generate_scores",
               "test_entropy_is_the_policys_at_each_position")),
    Exercise(
        "thinking-reward", ("rewards.thinking_reward",), "Eq. 4 (§3)", 3, 30, "numpy boolean masks",
        "lengths, correct, hard: one value per response of the batch -> float64 array of r_t. The tests "
        "check each branch by hand: easy and correct (no lower clip), hard and wrong (capped at 1), the "
        "zero cases, all-empty responses (no 0/0) and an empty batch.",
        _tests("test_rewards.py", "test_thinking_easy_correct_shorter_than_average_is_rewarded",
               "test_thinking_easy_correct_longer_than_average_is_negative_without_clip",
               "test_thinking_hard_wrong_capped_at_one", "test_thinking_hard_wrong_below_cap",
               "test_thinking_zero_cases", "test_thinking_all_zero_lengths_and_empty",
               "test_thinking_returns_float_array_and_accepts_numpy")),
    Exercise(
        "dynamic-kl", ("difficulty.kl_coefficients",), "Eq. 5 (§4)", 1, 10, "numpy basics",
        "pass_rate: (questions,) in [0, 1] -> beta per question. The tests check values by hand and the "
        "direction: which questions get the loose leash?",
        _tests("test_difficulty.py", "test_kl_coefficients_eq5_values_and_direction")),
    Exercise(
        "rank-difficulty", ("difficulty.rank_normalise", "difficulty.combined_difficulty"), "Eq. 3 (§2)", 3, 30,
        "numpy sorting (np.unique)",
        "rank_normalise: values (n,) -> (n,) in [0, 1]; combined_difficulty: pass_rate, complexity (n,) -> "
        "S_d (n,). The tests check ties (they share their average rank), all-equal values (0.5), one value, "
        "an empty batch, and S_d by hand.",
        _tests("test_difficulty.py", "test_rank_normalise_with_ties", "test_rank_normalise_degenerate",
               "test_combined_difficulty_by_hand")),
    Exercise(
        "hard-threshold", ("difficulty.hard_questions",), "§2", 2, 20, "rank-difficulty (S_d)",
        "s_d: (questions,) -> bool (questions,). theta is numpy's default (linear) percentile. The tests "
        "check the top 20% by hand, ties at the threshold, percentile 0, and that S_d = 0 is never hard.",
        _tests("test_difficulty.py", "test_hard_questions_all_zero_batch_has_no_hard",
               "test_hard_questions_top_20_percent", "test_hard_questions_requires_positive_sd")),
    Exercise(
        "slow-to-fast", ("difficulty.slow_to_fast_keep",), "§5", 2, 15, "pass rates (§2)",
        "pass_rate: (groups,), progress in [0, 1] -> bool keep mask. The tests check both halves on G = 8 "
        "pass rates, the switch at progress 0.5, pass rates a rounding step off the bounds (compare with "
        "the tolerance TOL), and pass rates of 0.7 and 0.3 (the paper's bounds, not the released code's).",
        _tests("test_difficulty.py", "test_curriculum_slow_half_drops_easy_and_keeps_unsolved",
               "test_curriculum_fast_half_drops_hard_and_keeps_solved", "test_curriculum_switches_at_half",
               "test_curriculum_uses_the_papers_bounds")),
    Exercise(
        "glcm-entropy", ("difficulty.glcm_entropy",), "Eq. 2 (§2)", 4, 60, "numpy indexing, np.bincount",
        "image: PIL image or array -> float, bits. Use the helpers _grey, _patches, _entropy_bits and the "
        "constants LEVELS, OFFSETS. The tests check constant and 2-level images by hand, quantisation to "
        "64 levels, a pixel-by-pixel reference, the mean over patches, tiny images, PIL and numpy inputs.",
        _tests("test_difficulty.py", "test_constant_image_has_zero_entropy", "test_single_row_stripes_by_hand",
               "test_8x8_stripes_by_hand", "test_matches_naive_reference", "test_mean_over_patches_and_ignored_border",
               "test_noise_has_more_entropy_than_gradient", "test_small_images_work", "test_pil_and_numpy_agree",
               "test_image_complexity_adds_classifier_entropy")),
    Exercise(
        "format-reward", ("rewards.format_reward",), "§6, §7", 2, 30, "Python strings",
        "response: str, style 'think' or 'answer-first' -> 1.0 or 0.0. The tests check accepted and rejected "
        "responses (text between or around the blocks, nested, repeated or foreign tags, a blank answer), "
        "both styles, an unknown style (ValueError) and random hostile strings (never raise). Keep it "
        "linear-time: str.count / str.find, no backtracking regex.",
        _tests("test_rewards.py", "test_format_think_ok", "test_format_think_rejects", "test_format_answer_first",
               "test_format_unknown_style", "test_hostile_random_strings_never_raise", "test_hostile_edge_strings")),
]
BY_ID = {exercise.id: exercise for exercise in EXERCISES}


def function_path(qualified):
    """(file relative to the repository root, function name) of "module.function" or "package.module.function"."""
    *modules, name = qualified.split(".")
    if not modules or not all(part.isidentifier() for part in (*modules, name)):
        raise ValueError(f"{qualified!r}: expected module.function or package.module.function")
    return os.path.join(*modules) + ".py", name
