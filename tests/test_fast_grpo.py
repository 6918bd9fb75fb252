"""The GRPO math of fast_grpo.py on numbers small enough to check by hand."""

import numpy as np
import pytest
import torch

import fast_grpo
from helpers import run
from fast_grpo import Args, group_advantages, grpo_loss, k3_kl, parse_args, shape_rewards
import methods


def test_group_advantages_by_hand():
    # group [1, 0, 0, 1]: mean 0.5, unbiased std sqrt(4 * 0.25 / 3) = 0.57735
    advantages = group_advantages([[1.0, 0.0, 0.0, 1.0], [2.0, 2.0, 2.0, 2.0]])
    expected = 0.5 / (np.sqrt(1 / 3) + 1e-6)
    by_hand = torch.tensor([expected, -expected, -expected, expected], dtype=torch.float32)
    assert torch.allclose(advantages[0], by_hand, atol=1e-6)
    assert torch.equal(advantages[1], torch.zeros(4))  # an all-equal group: exactly 0, not NaN


def test_group_advantages_scaled_by_the_batch_or_not_at_all():
    rewards = [[1.0, 0.0, 0.0, 1.0], [3.0, 3.0, 3.0, 1.0]]
    centred = torch.tensor([[0.5, -0.5, -0.5, 0.5], [0.5, 0.5, 0.5, -1.5]])
    assert torch.equal(group_advantages(rewards, scale_rewards="none"), centred)  # Dr. GRPO: no division
    # "batch": one std over all 8 rewards (mean 1.5; squares 0.25+2.25+2.25+0.25+3*2.25+0.25 = 12; 12/7)
    batch = group_advantages(rewards, scale_rewards="batch")
    assert torch.allclose(batch, centred / (np.sqrt(12 / 7) + 1e-6), atol=1e-6)
    with pytest.raises(ValueError):
        group_advantages(rewards, scale_rewards="question")


def test_k3_kl_zero_when_policies_match_and_positive_otherwise():
    logp = torch.log(torch.tensor([[0.5, 0.25, 0.125]]))
    assert torch.equal(k3_kl(logp, logp), torch.zeros(1, 3))
    # d = log(0.25) - log(0.5) = -log 2: exp(d) - d - 1 = 0.5 + 0.693147 - 1
    kl = k3_kl(torch.log(torch.tensor([[0.5]])), torch.log(torch.tensor([[0.25]])))
    assert kl.item() == pytest.approx(0.5 + np.log(2) - 1, abs=1e-6)
    # the log-ratio is clamped to [-20, 20]: finite both ways, exp(-20) + 20 - 1 and exp(20) - 20 - 1
    far_below = k3_kl(torch.tensor([[0.0]]), torch.tensor([[-1000.0]]))
    far_above = k3_kl(torch.tensor([[-1000.0]]), torch.tensor([[0.0]]))  # exp(1000) would be inf
    assert far_below.item() == pytest.approx(np.exp(-20.0) + 19.0, rel=1e-6)
    assert far_above.item() == pytest.approx(np.exp(20.0) - 21.0, rel=1e-6)


def known_good_k3(logp, ref_logp):
    """The k3 estimator, written out here so that the grpo_loss tests check grpo_loss alone."""
    log_ratio = torch.clamp(ref_logp - logp, -20.0, 20.0)
    return torch.exp(log_ratio) - log_ratio - 1.0


def known_good_log_ratio(logp, old_logp, response_mask, importance_level="token"):
    """importance_log_ratio, written out here for the same reason."""
    log_ratio = torch.where(response_mask.bool(), logp - old_logp, 0.0)
    if importance_level == "sequence":
        lengths = response_mask.sum(1, keepdim=True).clamp(min=1)
        return (log_ratio.sum(1, keepdim=True) / lengths).expand_as(logp)
    if importance_level != "token":
        raise ValueError(importance_level)
    return log_ratio


def known_good_aggregate(per_token, response_mask, aggregation="seq", max_new_tokens=None):
    """aggregate_loss, written out here for the same reason."""
    mask = response_mask.to(per_token.dtype)
    if aggregation == "seq":
        return (per_token.sum(1) / mask.sum(1).clamp(min=1)).mean()
    if aggregation == "token":
        return per_token.sum() / mask.sum().clamp(min=1)
    if aggregation == "dr-grpo" and max_new_tokens:
        return per_token.sum() / (len(per_token) * max_new_tokens)
    raise ValueError(aggregation)


@pytest.fixture
def own_k3(monkeypatch):
    """grpo_loss tests run with known-good k3_kl, importance_log_ratio and aggregate_loss in place of fast_grpo's
    (which have their own tests): a wrong one must fail its own tests only (python -m classroom grades them as
    separate exercises)."""
    monkeypatch.setattr(fast_grpo, "k3_kl", known_good_k3)
    monkeypatch.setattr(fast_grpo, "importance_log_ratio", known_good_log_ratio)
    monkeypatch.setattr(fast_grpo, "aggregate_loss", known_good_aggregate)


def rollout_batch():
    """Two responses: lengths 1 and 3 tokens, advantages +1 and -1."""
    logp = torch.log(torch.tensor([[0.5, 0.9, 0.9], [0.25, 0.5, 0.125]]))
    mask = torch.tensor([[1, 0, 0], [1, 1, 1]], dtype=torch.bool)
    return logp, mask, torch.tensor([1.0, -1.0])


def test_grpo_loss_on_policy_equals_minus_mean_advantage(own_k3):
    logp, mask, advantages = rollout_batch()
    # rho == 1, no KL: per-token objective = A; "seq": mean over responses of A = 0
    loss = grpo_loss(logp, logp, logp, advantages, mask, kl_coef=0.0)
    assert loss.item() == pytest.approx(0.0, abs=1e-7)
    # "token": (1*1 + (-1)*3) / 4 tokens = -0.5, so the loss is +0.5
    loss = grpo_loss(logp, logp, logp, advantages, mask, kl_coef=0.0, aggregation="token")
    assert loss.item() == pytest.approx(0.5, abs=1e-7)


def test_grpo_loss_kl_term_per_question_coefficient(own_k3):
    logp, mask, _ = rollout_batch()
    ref_logp = logp - np.log(2)  # reference half as likely everywhere: k3 = 0.5 + log 2 - 1 per token
    per_token_kl = 0.5 + np.log(2) - 1
    loss = grpo_loss(logp, logp, ref_logp, torch.zeros(2), mask, kl_coef=torch.tensor([0.1, 0.3]))
    assert loss.item() == pytest.approx((0.1 + 0.3) / 2 * per_token_kl, abs=1e-6)


def test_grpo_loss_clips_the_ratio(own_k3):
    old_logp = torch.log(torch.tensor([[0.5], [0.5]]))
    logp = torch.log(torch.tensor([[0.8], [0.8]]))  # rho = 1.6
    loss = grpo_loss(logp, old_logp, logp, torch.tensor([1.0, -1.0]), torch.ones(2, 1, dtype=torch.bool), 0.0)
    # A = +1: min(1.6, 1.2) = 1.2; A = -1: min(-1.6, -1.2) = -1.6; objective mean = -0.2
    assert loss.item() == pytest.approx(0.2, abs=1e-6)


def test_seq_and_token_aggregation_differ_on_unequal_lengths(own_k3):
    logp, mask, advantages = rollout_batch()
    seq = grpo_loss(logp, logp, logp, advantages, mask, 0.0, aggregation="seq")
    token = grpo_loss(logp, logp, logp, advantages, mask, 0.0, aggregation="token")
    assert seq.item() != pytest.approx(token.item())
    with pytest.raises(ValueError):
        grpo_loss(logp, logp, logp, advantages, mask, 0.0, aggregation="sum")


@pytest.mark.parametrize("aggregation", ["seq", "token", "dr-grpo"])
def test_gradient_is_reinforce_with_mu_1_and_no_kl(aggregation, own_k3):
    logp_values, mask, advantages = rollout_batch()
    logp = logp_values.clone().requires_grad_(True)
    grpo_loss(logp, logp.detach(), logp.detach(), advantages, mask, 0.0, aggregation=aggregation,
              max_new_tokens=5).backward()
    # REINFORCE: loss = -mean(A * logp) with the same weights: 1/(N |o_i|) per token for "seq",
    # 1/(total tokens) for "token", 1/(N x budget) for "dr-grpo"
    lengths = mask.sum(1, keepdim=True).float()
    weight = {"seq": 1 / (2 * lengths), "token": torch.full_like(lengths, 1 / 4),
              "dr-grpo": torch.full_like(lengths, 1 / (2 * 5))}[aggregation]
    expected = -advantages[:, None] * weight * mask
    assert torch.allclose(logp.grad, expected, atol=1e-7)
    # by hand for "seq": response 1 has one token, A = +1 -> -1/2; response 2: A = -1 over 3 tokens -> +1/6
    if aggregation == "seq":
        assert logp.grad[0, 0].item() == pytest.approx(-0.5)
        assert logp.grad[1, 2].item() == pytest.approx(1 / 6)


def test_dr_grpo_divides_the_token_sum_by_rows_times_the_budget(own_k3):
    logp, mask, advantages = rollout_batch()
    # on policy, no KL: token sum of -A = -(1 * 1) + (3 * 1) = 2, over 2 rows x 10 tokens of budget
    loss = grpo_loss(logp, logp, logp, advantages, mask, 0.0, aggregation="dr-grpo", max_new_tokens=10)
    assert loss.item() == pytest.approx(2 / 20, abs=1e-7)
    with pytest.raises(ValueError):  # the constant must be given
        grpo_loss(logp, logp, logp, advantages, mask, 0.0, aggregation="dr-grpo")


def test_gspo_clips_the_geometric_mean_of_a_responses_token_ratios(own_k3):
    old_logp = torch.log(torch.tensor([[0.5, 0.5], [0.5, 0.5]]))
    logp = torch.log(torch.tensor([[0.8, 0.5], [0.8, 0.5]]))  # token ratios 1.6 and 1 (token level: one clipped)
    mask = torch.ones(2, 2, dtype=torch.bool)
    advantages = torch.tensor([1.0, -1.0])
    # s = sqrt(1.6 * 1) = 1.264911; A = +1: min(s, 1.2) = 1.2; A = -1: min(-s, -1.2) = -s; objective (1.2 - s) / 2
    s = np.sqrt(1.6)
    loss = grpo_loss(logp, old_logp, logp, advantages, mask, 0.0, importance_level="sequence")
    assert loss.item() == pytest.approx(-(1.2 - s) / 2, abs=1e-6)
    # token level for comparison: A = +1: (1.2 + 1) / 2; A = -1: (-1.6 - 1) / 2; mean over rows
    token = grpo_loss(logp, old_logp, logp, advantages, mask, 0.0)
    assert token.item() == pytest.approx(-((1.2 + 1) / 2 + (-1.6 - 1) / 2) / 2, abs=1e-6)
    with pytest.raises(ValueError):
        grpo_loss(logp, old_logp, logp, advantages, mask, 0.0, importance_level="group")


def test_importance_log_ratio_per_token_and_per_sequence_by_hand():
    old_logp = torch.log(torch.tensor([[0.5, 0.5, 0.5], [0.5, 0.5, 0.5]]))
    logp = torch.log(torch.tensor([[0.8, 0.5, 0.9], [0.25, 1.0, 0.9]]))
    logp[0, 2] = float("-inf")  # padding after the first response's 2 tokens may hold anything
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]], dtype=torch.bool)
    token = fast_grpo.importance_log_ratio(logp, old_logp, mask)
    assert torch.allclose(token, torch.log(torch.tensor([[1.6, 1.0, 1.0], [0.5, 2.0, 1.8]])), atol=1e-6)
    # GSPO: response 1: (log 1.6 + log 1) / 2 = log sqrt(1.6); response 2: log (0.5 * 2 * 1.8) / 3 = log 1.8 / 3
    sequence = fast_grpo.importance_log_ratio(logp, old_logp, mask, "sequence")
    expected = torch.tensor([np.log(np.sqrt(1.6))] * 3 + [np.log(1.8) / 3] * 3, dtype=torch.float32).view(2, 3)
    assert torch.allclose(sequence, expected, atol=1e-6)
    with pytest.raises(ValueError):
        fast_grpo.importance_log_ratio(logp, old_logp, mask, "group")


def test_gspo_ratio_on_policy_is_1_with_the_gradient_of_the_mean_log_prob():
    """On policy s_i = 1 and d s_i = mean_t d logp: GSPO's gradient is GRPO's with "seq" averaging (§10)."""
    logp_values, mask, advantages = rollout_batch()
    logp = logp_values.clone().requires_grad_(True)
    ratio = torch.exp(fast_grpo.importance_log_ratio(logp, logp.detach(), mask, "sequence"))
    assert torch.allclose(ratio, torch.ones_like(ratio))
    (ratio[:, 0] * advantages).sum().backward()
    # response 1 (one token, A = +1): d/d logp = 1; response 2 (three tokens, A = -1): -1/3 each
    assert torch.allclose(logp.grad, torch.tensor([[1.0, 0.0, 0.0], [-1 / 3, -1 / 3, -1 / 3]]), atol=1e-7)


def test_aggregate_loss_seq_token_and_dr_grpo_by_hand():
    per_token = torch.tensor([[2.0, 0.0, 0.0], [1.0, 1.0, 4.0]])  # zero on padding
    mask = torch.tensor([[1, 0, 0], [1, 1, 1]], dtype=torch.bool)
    assert fast_grpo.aggregate_loss(per_token, mask, "seq").item() == pytest.approx((2 / 1 + 6 / 3) / 2)
    assert fast_grpo.aggregate_loss(per_token, mask, "token").item() == pytest.approx(8 / 4)
    # Dr. GRPO: the sum over a constant, 2 rows x a budget of 10 tokens, whatever the lengths
    assert fast_grpo.aggregate_loss(per_token, mask, "dr-grpo", max_new_tokens=10).item() == pytest.approx(8 / 20)
    with pytest.raises(ValueError):  # the constant must be given
        fast_grpo.aggregate_loss(per_token, mask, "dr-grpo")
    with pytest.raises(ValueError):
        fast_grpo.aggregate_loss(per_token, mask, "sum")


def shaping_args(**overrides):
    """shape_rewards' keyword settings (fast_grpo.reward_settings) of the fast preset, with `overrides`."""
    args = Args(method="fast", length_reward=True, dynamic_kl=True, curriculum="slow-to-fast", kl_coef=0.01)
    for key, value in overrides.items():
        setattr(args, key, value)
    return fast_grpo.reward_settings(args)


def test_shape_rewards_filters_first_then_pays_thinking_reward():
    # four questions, G = 4; pass rates 1.0, 0.5, 0.25, 0.75
    correct = np.array([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 1, 0]], dtype=float)
    fmt = np.ones((4, 4))
    lengths = np.array([[10, 10, 10, 10], [10, 30, 20, 20], [20, 20, 40, 40], [5, 5, 5, 5]], dtype=float)
    complexity = np.array([1.0, 2.0, 3.0, 4.0])
    out = shape_rewards(correct, fmt, lengths, complexity, progress=0.1, **shaping_args())
    # slow half: drop easy groups, pass >= 0.75 (q0 with pass 1, q3)
    assert out["keep"].tolist() == [False, True, True, False]
    # S_d over kept: q1 (1-0.5) * 0 = 0, q2 (1-0.25) * 1 = 0.75 -> only q2 is hard
    assert out["hard"].tolist() == [False, False, True, False]
    # L_avg over the 8 kept responses = (80 + 120) / 8 = 25
    # q1 is easy: correct responses get 1 - L/25 -> 0.6, -0.2; wrong ones 0
    np.testing.assert_allclose(out["reward"][1], [1.5 + 0.5 * 0.6, 1.5 + 0.5 * -0.2, 0.5, 0.5])
    # q2 is hard: wrong responses get min(L/25 - 1, 1) -> -0.2, 0.6, 0.6; the correct one 0
    np.testing.assert_allclose(out["reward"][2], [1.5, 0.5 + 0.5 * -0.2, 0.5 + 0.5 * 0.6, 0.5 + 0.5 * 0.6])
    # Eq. 5 per question from its pass rate
    np.testing.assert_allclose(out["kl_coef"], 0.001 + 0.029 * np.array([1.0, 0.5, 0.25, 0.75]))


def test_shape_rewards_fast_half_keeps_solved_groups_and_teaches_them_brevity():
    # pass 1 (q0), 0.5 (q1), 0 (q2); fast half drops only q2 (pass <= 0.25)
    correct = np.array([[1, 1], [1, 0], [0, 0]], dtype=float)
    lengths = np.array([[10.0, 30.0], [20.0, 20.0], [5.0, 5.0]])
    out = shape_rewards(correct, np.ones((3, 2)), lengths, np.array([1.0, 2.0, 3.0]), 0.7, **shaping_args())
    assert out["keep"].tolist() == [True, True, False]
    # L_avg over the 4 kept responses = 20; q0 is easy (S_d = 0): 1 - 10/20 = 0.5 and 1 - 30/20 = -0.5
    np.testing.assert_allclose(out["reward"][0], [1.5 + 0.25, 1.5 - 0.25])
    # the released code's rule drops q0 too
    released = shape_rewards(correct, np.ones((3, 2)), lengths, np.array([1.0, 2.0, 3.0]), 0.7,
                             **shaping_args(drop_pass_0_1=True))
    assert released["keep"].tolist() == [False, True, False]


def test_shape_rewards_continuous_curriculum_uses_the_seeded_numpy_state():
    correct = np.array([[1, 1]] * 6 + [[1, 0]] * 2, dtype=float)  # six solved (easy) groups, two mixed
    args = shaping_args(curriculum="continuous")
    np.random.seed(3)
    draws = np.random.random(8)
    np.random.seed(3)
    out = shape_rewards(correct, np.ones((8, 2)), np.ones((8, 2)), np.arange(8.0), 0.9, **args)
    # easy groups are kept iff their draw is below 0.4 * 0.9; the mixed ones always
    assert out["keep"].tolist() == [bool(d < 0.36) for d in draws[:6]] + [True, True]
    assert 0 < out["keep"][:6].sum() < 6  # seed 3 admits some, not all (checks the test itself)


def test_shape_rewards_plain_grpo_keeps_everything_and_pays_no_length_reward():
    correct = np.array([[1, 0], [1, 1]], dtype=float)
    fmt = np.array([[1, 0], [1, 1]], dtype=float)
    args = shaping_args(method="grpo", length_reward=False, dynamic_kl=False, curriculum="none", kl_coef=0.02)
    out = shape_rewards(correct, fmt, np.array([[3.0, 9.0], [1.0, 2.0]]), np.array([1.0, 2.0]), 0.9, **args)
    assert out["keep"].all()
    np.testing.assert_allclose(out["reward"], [[1.5, 0.0], [1.5, 1.5]])  # r_acc + 0.5 r_fmt
    np.testing.assert_allclose(out["kl_coef"], [0.02, 0.02])


def test_a_truncated_wrong_answer_to_a_hard_question_and_the_overlong_penalty():
    """docs/paper.md §10: Eq. 4 pays a hard question's wrong responses for length, capped at 1, so a truncated one
    (the longest) earns the most; DAPO's penalty at the budget takes that back."""
    correct = np.array([[0.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0]])  # question 0: hard (pass 0.25)
    fmt = np.ones_like(correct)
    lengths = np.array([[100.0, 40.0, 40.0, 20.0], [20.0, 20.0, 20.0, 20.0]])  # response (0, 0): truncated at 100
    settings = shaping_args(curriculum="none", hard_percentile=50.0)
    plain = shape_rewards(correct, fmt, lengths, np.array([0.5, 0.5]), 0.0, **settings)
    assert plain["hard"].tolist() == [True, False]
    # L_avg = 280 / 8 = 35: r_t = min(100 / 35 - 1, 1) = 1, the cap; r = 0 + 0.5 * 1 + 0.5 * 1 = 1.0
    assert plain["reward"][0, 0] == pytest.approx(1.0)
    assert plain["reward"][0, 0] > plain["reward"][0, 1]  # more than a shorter wrong answer (40 / 35 - 1 = 1/7)
    overlong = fast_grpo.rewards.overlong_penalty(lengths, 100, 50)  # -1 at the budget, -0 at 40 and below
    penalised = shape_rewards(correct, fmt, lengths, np.array([0.5, 0.5]), 0.0, overlong=overlong, **settings)
    assert penalised["reward"][0, 0] == pytest.approx(0.0)  # 1.0 - 1
    assert penalised["reward"][0, 0] < penalised["reward"][0, 1] == plain["reward"][0, 1]
    assert np.array_equal(penalised["reward"][1], plain["reward"][1])


def test_presets_fill_switches_and_flags_override_them(tmp_path):
    base = ["--model", "Qwen/Qwen2-VL-2B-Instruct", "--data", "d.jsonl"]
    fast = parse_args(base)
    assert (fast.length_reward, fast.dynamic_kl, fast.curriculum) == (True, True, "slow-to-fast")
    grpo = parse_args(base + ["--method", "grpo"])
    assert (grpo.length_reward, grpo.dynamic_kl, grpo.curriculum, grpo.kl_coef) == (False, False, "none", 0.01)
    assert parse_args(base + ["--curriculum", "continuous"]).curriculum == "continuous"
    assert parse_args(base + ["--no-slow-to-fast"]).curriculum == "none"  # the old spelling still works
    assert parse_args(base + ["--method", "grpo", "--slow-to-fast"]).curriculum == "slow-to-fast"
    ablation = parse_args(base + ["--no-length-reward", "--aggregation", "token"])
    assert (ablation.length_reward, ablation.dynamic_kl, ablation.aggregation) == (False, True, "token")
    assert parse_args(base + ["--method", "thinking"]).kl_coef == 0.04


def test_the_demo_model_gets_demo_defaults_and_any_other_model_the_papers():
    demo = parse_args([])
    assert (demo.model, demo.data, demo.method) == (methods.DEMO_MODEL, "synthetic", "fast")
    assert demo.lr == methods.DEMO_DEFAULTS["lr"] != 1e-6
    real = parse_args(["--model", "Qwen/Qwen2-VL-2B-Instruct"])
    assert (real.lr, real.group_size, real.max_new_tokens) == (1e-6, 8, 1024)
    assert parse_args(["--model", "Qwen/Qwen2-VL-2B-Instruct", "--lr", "3e-6"]).lr == 3e-6


@pytest.mark.parametrize("flags", [["--group-size", "1"], ["--beta-min", "0.5"], ["--hard-percentile", "120"],
                                   ["--method", "nope"], ["--batch-size", "0"], ["--model", "./no/such/folder"],
                                   ["--curriculum", "continuous", "--no-slow-to-fast"], ["--curriculum", "binary"],
                                   ["--fsdp"], ["--lora-rank", "-2"], ["--overlong-buffer", "2000"],
                                   ["--overlong-penalty", "-1"], ["--importance-level", "group"],
                                   ["--scale-rewards", "question"]])
def test_bad_flags_exit_with_code_2(flags, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--model", "Qwen/Qwen2-VL-2B-Instruct", "--data", "d.jsonl"] + flags)
    assert exit_info.value.code == 2
    assert "error" in capsys.readouterr().err


def test_padding_with_minus_infinity_log_probs_does_not_poison_the_loss(own_k3):
    logp, mask, advantages = rollout_batch()
    logp = logp.clone()
    logp[0, 1:] = float("-inf")  # after the first response's end: e.g. a suppressed pad token
    loss = grpo_loss(logp, logp.detach(), logp.detach(), advantages, mask, kl_coef=0.1)
    assert torch.isfinite(loss)


# ----------------------------------------------------------------------------------------------------------
# The variants in the update, on the session's tiny model


def update_once(model_dir, dataset, micro_batch_size, **settings):
    """policy_update (SGD, lr 0.1) on 4 questions x G = 2 sampled responses with fixed advantages, `micro_batch_size`
    rows at a time; returns the weights after it."""
    from data_loading import loader
    from machinery import loading
    import vlm

    torch.manual_seed(0)
    processor, policy = loading.load_processor(model_dir), loading.load_model(model_dir)
    examples = loader.load_examples(dataset)[:4]
    encoded, _ = vlm.encode_questions(processor, examples, methods.PROMPTS["fast"])
    prompts = vlm.take_rows(encoded, np.repeat(np.arange(4), 2))
    suppress = vlm.vision_token_ids(policy, processor)
    rollout = vlm.sample(policy, processor, prompts, 12, 1.0, suppress, vlm.eos_token_ids(policy, processor))
    lengths = torch.tensor([12, 3, 7, 12, 5, 9, 2, 11])  # unequal: "seq", "token" and "dr-grpo" weigh tokens apart
    mask = rollout["response_mask"] & (torch.arange(12) < lengths[:, None])
    responses = dict(completion_ids=rollout["completion_ids"], response_mask=mask,
                     advantages=torch.tensor([1.0, -1.0, 0.5, -0.5, 1.5, -1.5, 0.2, -0.2]),
                     kl_coef=torch.full((8,), 0.05), total_rows=8, total_tokens=float(mask.sum()))
    reference = loading.load_model(model_dir).eval().requires_grad_(False)
    fast_grpo.policy_update(policy, reference, torch.optim.SGD(policy.parameters(), lr=0.1), prompts, responses,
                            suppress, micro_batch_size=micro_batch_size, max_new_tokens=12, **settings)
    return {name: p.detach().clone() for name, p in policy.named_parameters()}


@pytest.mark.parametrize("settings", [dict(aggregation="seq"), dict(aggregation="token"),
                                      dict(aggregation="dr-grpo"),
                                      dict(importance_level="sequence", updates_per_batch=2, eps_low=3e-4,
                                           eps_high=4e-4)])
def test_micro_batches_do_not_change_the_update(warm_model_dir, dataset, settings):
    together = update_once(warm_model_dir, dataset, 8, **settings)
    one_by_one = update_once(warm_model_dir, dataset, 1, **settings)
    before = dict(fast_grpo.loading.load_model(warm_model_dir).named_parameters())
    assert any(not torch.equal(together[k], before[k]) for k in before)  # the update moved the weights
    assert max(float((together[k] - one_by_one[k]).abs().max()) for k in together) < 1e-6


def test_mask_truncated_leaves_truncated_responses_out_of_the_update(warm_model_dir, dataset, tmp_path, monkeypatch):
    real_update, seen = fast_grpo.policy_update, []

    def recording_update(trainer, reference, optimizer, prompts, responses, *args, **kwargs):
        seen.append(responses)
        return real_update(trainer, reference, optimizer, prompts, responses, *args, **kwargs)

    monkeypatch.setattr(fast_grpo, "policy_update", recording_update)
    metrics = run(warm_model_dir, dataset, tmp_path, "--method", "grpo", "--max-new-tokens", "16", "--mask-truncated",
                  steps=1)
    truncated = round(metrics[0]["fraction_truncated"] * 16)  # grpo keeps every group: 4 questions x 4 responses
    assert 0 < truncated < 16, truncated  # some of each: a test that can tell
    assert seen[0]["total_rows"] == 16 - truncated == len(seen[0]["advantages"])
    assert bool(seen[0]["response_mask"].any(1).all())  # every row left is a response with tokens in the loss


def test_shape_rewards_traces_the_s_d_and_thinking_reward_it_used():
    correct = np.array([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 1, 0]], dtype=float)  # as in the first test
    lengths = np.array([[10, 10, 10, 10], [10, 30, 20, 20], [20, 20, 40, 40], [5, 5, 5, 5]], dtype=float)
    trace = {}
    out = shape_rewards(correct, np.ones((4, 4)), lengths, np.array([1.0, 2.0, 3.0, 4.0]), 0.1, trace=trace,
                        **shaping_args())
    assert out.keys() == {"pass_rate", "keep", "hard", "reward", "kl_coef"}  # the result is as without a trace
    np.testing.assert_allclose(trace["s_d"], [0.0, 0.75])  # the kept q1, q2 (the first test's by-hand values)
    np.testing.assert_allclose(trace["thinking"], [[0.6, -0.2, 0, 0], [0, -0.2, 0.6, 0.6]])
    no_length = {}
    shape_rewards(correct, np.ones((4, 4)), lengths, np.ones(4), 0.1, trace=no_length,
                  **shaping_args(length_reward=False))
    assert no_length["thinking"] is None


def started_run(model_dir, dataset, output_dir, *flags):
    """(run, args): harness.start's run of 4 questions x G = 4, as fast_grpo.train starts it, and the signal
    handlers given back to pytest."""
    import signal

    args = parse_args(["--model", model_dir, "--data", dataset, "--output-dir", str(output_dir), "--batch-size", "4",
                       "--group-size", "4", "--max-new-tokens", "16", "--lr", "1e-3", "--report-to", "none", *flags])
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        return fast_grpo.harness.start(args), args
    finally:  # start() catches Ctrl-C for a training run: give pytest its own back
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


def test_the_update_gets_the_advantages_of_the_kept_groups_in_order(warm_model_dir, dataset, tmp_path):
    """A group dropped before a kept one (--drop-pass-0-1 here, the Slow-to-Fast filter alike): the update's
    advantages are the kept groups', in order (a regression: they were indexed by batch position, past the end)."""
    run, args = started_run(warm_model_dir, dataset, tmp_path, "--method", "grpo", "--drop-pass-0-1")
    dropped_before_kept = False
    for step in range(4):
        trace = {}
        fast_grpo.training_step(run, step, args, trace=trace)
        keep = trace["keep"]
        dropped_before_kept |= bool(keep.any() and not keep[:np.flatnonzero(keep)[-1]].all())
        expected = group_advantages(trace["reward"][keep]).flatten() if keep.any() else torch.zeros(0)
        assert torch.equal(trace["advantages"], expected)
    assert dropped_before_kept  # the case that failed happened


def test_a_step_with_a_trace_computes_what_one_without_computes(tiny_model_dir, dataset, tmp_path):
    """training_step(trace=dict) fills the dict and changes nothing: same metrics, samples and updated weights."""
    def one_step(trace):
        run, args = started_run(tiny_model_dir, dataset, tmp_path / "run")
        metrics, samples = fast_grpo.training_step(run, 0, args, trace=trace)
        return metrics, samples, {name: p.detach().clone() for name, p in run.policy.named_parameters()}

    plain, trace = one_step(None), {}
    traced = one_step(trace)
    assert plain[:2] == traced[:2]
    assert all(torch.equal(plain[2][name], traced[2][name]) for name in plain[2])
    assert len(trace["questions"]) == 4 and len(trace["texts"]) == 16 and trace["reward"].shape == (4, 4)
    assert traced[0]["reward_mean"] == pytest.approx(trace["reward"].mean())
    assert traced[0]["loss"] == trace["stats"]["loss"] and len(trace["advantages"]) == len(trace["rows"])
    keep = trace["keep"]
    np.testing.assert_allclose(trace["s_d"], fast_grpo.difficulty.combined_difficulty(trace["pass_rate"][keep],
                                                                                     trace["complexity"][keep]))
