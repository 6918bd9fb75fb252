"""The GRPO math of fast_grpo.py on numbers small enough to check by hand."""

import numpy as np
import pytest
import torch

import fast_grpo
from fast_grpo import Args, group_advantages, grpo_loss, k3_kl, parse_args, shape_rewards
import methods


def test_group_advantages_by_hand():
    # group [1, 0, 0, 1]: mean 0.5, unbiased std sqrt(4 * 0.25 / 3) = 0.57735
    advantages = group_advantages([[1.0, 0.0, 0.0, 1.0], [2.0, 2.0, 2.0, 2.0]])
    expected = 0.5 / (np.sqrt(1 / 3) + 1e-6)
    by_hand = torch.tensor([expected, -expected, -expected, expected], dtype=torch.float32)
    assert torch.allclose(advantages[0], by_hand, atol=1e-6)
    assert torch.equal(advantages[1], torch.zeros(4))  # an all-equal group: exactly 0, not NaN


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


@pytest.fixture
def own_k3(monkeypatch):
    """grpo_loss tests run with known_good_k3 in place of fast_grpo.k3_kl (which has its own test): a wrong
    k3_kl must fail that test only (python -m classroom grades them as separate exercises)."""
    monkeypatch.setattr(fast_grpo, "k3_kl", known_good_k3)


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


@pytest.mark.parametrize("aggregation", ["seq", "token"])
def test_gradient_is_reinforce_with_mu_1_and_no_kl(aggregation, own_k3):
    logp_values, mask, advantages = rollout_batch()
    logp = logp_values.clone().requires_grad_(True)
    grpo_loss(logp, logp.detach(), logp.detach(), advantages, mask, 0.0, aggregation=aggregation).backward()
    # REINFORCE: loss = -mean(A * logp) with the same weights: 1/(N |o_i|) per token for "seq",
    # 1/(total tokens) for "token"
    lengths = mask.sum(1, keepdim=True).float()
    weight = 1 / (2 * lengths) if aggregation == "seq" else torch.full_like(lengths, 1 / 4)
    expected = -advantages[:, None] * weight * mask
    assert torch.allclose(logp.grad, expected, atol=1e-7)
    # by hand for "seq": response 1 has one token, A = +1 -> -1/2; response 2: A = -1 over 3 tokens -> +1/6
    if aggregation == "seq":
        assert logp.grad[0, 0].item() == pytest.approx(-0.5)
        assert logp.grad[1, 2].item() == pytest.approx(1 / 6)


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
                                   ["--fsdp"], ["--lora-rank", "-2"]])
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
