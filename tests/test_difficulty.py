"""Tests for difficulty.py: numbers small enough to check on paper."""

import math
import time
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from difficulty import (
    combined_difficulty,
    complexity_ranks,
    images_complexity,
    glcm_entropy,
    hard_questions,
    image_complexity,
    kl_coefficients,
    pass_rates,
    rank_normalise,
    slow_to_fast_keep,
    continuous_keep,
    mixed_outcomes,
)


def entropy_of_counts(counts):
    total = sum(counts)
    return -sum(c / total * math.log2(c / total) for c in counts if c)


def naive_glcm_entropy(grey):
    """Pixel-by-pixel reference for a single-patch grey image (no patching)."""
    q = np.asarray(grey, dtype=int) * 64 // 256
    h, w = q.shape
    pairs = Counter()
    for d in (1, 2, 3, 4):
        for dr, dc in ((0, d), (-d, d), (-d, 0), (-d, -d)):
            for r in range(h):
                for c in range(w):
                    if 0 <= r + dr < h and 0 <= c + dc < w:
                        pairs[q[r, c], q[r + dr, c + dc]] += 1
    return entropy_of_counts(pairs.values())


def stripes(h, w):
    """Vertical stripes of width 1: even columns 0 (level 0), odd columns 255 (level 63)."""
    return np.tile((np.arange(w) % 2) * 255, (h, 1)).astype(np.uint8)


# ---------------------------------------------------------------- pass rates, Eq. 5, curriculum


def test_pass_rates_small_matrix():
    correct = [[1, 0, 1, 1], [0, 0, 0, 0], [1, 1, 1, 1]]
    np.testing.assert_allclose(pass_rates(correct), [0.75, 0.0, 1.0])
    np.testing.assert_allclose(pass_rates(np.array([[True, False]])), [0.5])


def test_kl_coefficients_eq5_values_and_direction():
    beta = kl_coefficients([0.0, 1.0, 0.5, 0.25])
    # beta_min + (0.03 - 0.001) * pass: hard -> beta_min, easy -> beta_max, midpoint 0.0155
    np.testing.assert_allclose(beta, [0.001, 0.03, 0.0155, 0.001 + 0.029 * 0.25])
    assert beta[0] < beta[3] < beta[2] < beta[1]
    np.testing.assert_allclose(kl_coefficients([0.5], beta_min=0.0, beta_max=1.0), [0.5])


G8 = np.array([0, 1, 2, 4, 6, 7, 8]) / 8


def test_curriculum_slow_half_drops_easy_and_keeps_unsolved():
    # slow half drops pass >= 0.75 (6/8, 7/8 and 1); pass 0 stays: its wrong answers are paid for length
    keep = slow_to_fast_keep(G8, progress=0.2)
    assert keep.tolist() == [True, True, True, True, False, False, False]


def test_curriculum_fast_half_drops_hard_and_keeps_solved():
    # fast half drops pass <= 0.25 (0, 1/8, 2/8) instead; 6/8, 7/8 and pass 1 come back (brevity is learned there)
    keep = slow_to_fast_keep(G8, progress=0.8)
    assert keep.tolist() == [False, False, False, True, True, True, True]


def test_released_code_rule_drops_pass_0_and_1():
    assert mixed_outcomes(G8).tolist() == [False, True, True, True, True, True, False]
    assert (slow_to_fast_keep(G8, 0.8) & mixed_outcomes(G8)).tolist() == [False, False, False, True, True, True, False]


def test_curriculum_switches_at_half():
    assert slow_to_fast_keep([0.75, 0.25], 0.499).tolist() == [False, True]
    assert slow_to_fast_keep([0.75, 0.25], 0.5).tolist() == [True, False]
    # a pass rate one rounding step off 0.75 / 0.25 / 0 / 1 still counts as the boundary
    below_075, above_025 = np.nextafter(0.75, 0), np.nextafter(0.25, 1)
    assert slow_to_fast_keep([below_075, above_025], 0.2).tolist() == [False, True]
    assert slow_to_fast_keep([below_075, above_025], 0.8).tolist() == [True, False]
    assert not mixed_outcomes([np.nextafter(1.0, 0), 1e-12]).any()


def test_curriculum_uses_the_papers_bounds():
    # 0.75 / 0.25, not the released code's 0.7 / 0.3 (the same groups at G = 8, not at G = 10):
    # 7/10 is not easy in the slow half and 3/10 is not hard in the fast half
    assert slow_to_fast_keep([0.7, 0.3], 0.2).tolist() == [True, True]
    assert slow_to_fast_keep([0.7, 0.3], 0.8).tolist() == [True, True]


def test_continuous_curriculum_admits_easy_groups_with_probability_04_t_over_T():
    pass_rate = [0.0, 0.5, 0.75, 1.0, 0.875]
    uniform = [0.99, 0.99, 0.1, 0.3, 0.5]
    # at the start p_easy = 0: only groups with pass < 0.75 are kept, whatever their draw
    assert continuous_keep(pass_rate, 0.0, uniform).tolist() == [True, True, False, False, False]
    # halfway p_easy = 0.2: the easy group whose draw is 0.1 gets in
    assert continuous_keep(pass_rate, 0.5, uniform).tolist() == [True, True, True, False, False]
    # at the end p_easy = 0.4: 0.3 < 0.4 gets in, 0.5 does not
    assert continuous_keep(pass_rate, 1.0, uniform).tolist() == [True, True, True, True, False]
    # with many draws the admitted share of easy groups is p_easy
    draws = np.random.default_rng(0).random(20000)
    assert continuous_keep(np.ones(20000), 0.75, draws).mean() == pytest.approx(0.3, abs=0.01)


# ---------------------------------------------------------------- ranks, S_d, threshold


def test_rank_normalise_with_ties():
    # ranks [3.5, 1, 3.5, 2] -> (rank - 1) / 3
    np.testing.assert_allclose(rank_normalise([3, 1, 3, 2]), [2.5 / 3, 0, 2.5 / 3, 1 / 3])
    np.testing.assert_allclose(rank_normalise([10.0, 30.0, 20.0]), [0, 1, 0.5])


def test_rank_normalise_degenerate():
    np.testing.assert_allclose(rank_normalise([7, 7, 7]), [0.5, 0.5, 0.5])
    np.testing.assert_allclose(rank_normalise([4.2]), [0.5])
    assert rank_normalise([]).shape == (0,)


def test_combined_difficulty_by_hand():
    # h = rank_normalise([3, 1, 3, 2]) = [5/6, 0, 5/6, 1/3]; S_d = (1 - pass) * h
    s_d = combined_difficulty([0.0, 0.5, 1.0, 0.25], [3, 1, 3, 2])
    np.testing.assert_allclose(s_d, [5 / 6, 0.0, 0.0, 0.75 / 3])


def test_hard_questions_all_zero_batch_has_no_hard():
    assert hard_questions(np.zeros(6)).tolist() == [False] * 6
    assert hard_questions([]).dtype == bool and hard_questions([]).size == 0


def test_hard_questions_top_20_percent():
    s_d = [0.1, 0.2, 0.3, 0.4, 0.9, 0.05, 0.15, 0.25, 0.35, 0.8]
    # sorted index 0.8 * 9 = 7.2: theta = 0.4 + 0.2 * (0.8 - 0.4) = 0.48 -> only 0.9 and 0.8
    hard = hard_questions(s_d)
    assert np.flatnonzero(hard).tolist() == [4, 9]
    # 5 values: theta = 0.4 + 0.2 * 0.1 = 0.42 -> only the top one; ties at the top are both hard
    assert hard_questions([0.1, 0.2, 0.3, 0.4, 0.5]).tolist() == [False] * 4 + [True]
    assert hard_questions([0.5, 0.1, 0.5, 0.1, 0.1]).tolist() == [True, False, True, False, False]
    # percentile 0 -> every positive question
    assert hard_questions([0.0, 0.2, 0.1], percentile=0).tolist() == [False, True, True]


def test_hard_questions_requires_positive_sd():
    # 9 of 10 questions all-correct: theta = 0, yet only the one with S_d > 0 is hard
    s_d = [0.0] * 9 + [0.3]
    assert np.percentile(s_d, 80) == 0.0
    assert hard_questions(s_d).tolist() == [False] * 9 + [True]


# ---------------------------------------------------------------- GLCM entropy, Eq. 2 (a)


def test_constant_image_has_zero_entropy():
    assert glcm_entropy(np.full((100, 130), 77, np.uint8)) == 0.0
    # grey 0..3 all quantise to level 0 (64 levels = grey // 4)
    rng = np.random.default_rng(0)
    assert glcm_entropy(rng.integers(0, 4, (64, 64))) == 0.0
    assert glcm_entropy(rng.integers(0, 8, (64, 64))) > 0.0


def test_single_row_stripes_by_hand():
    # levels [0, 63, 0, 63, 0]; a 1-row image has only the 0-degree pairs:
    # d=1: (0,63)x2 (63,0)x2; d=2: (0,0)x2 (63,63)x1; d=3: (0,63) (63,0); d=4: (0,0)
    # -> counts 3, 3, 3, 1 of 10
    expected = -3 * 0.3 * math.log2(0.3) - 0.1 * math.log2(0.1)
    assert glcm_entropy(stripes(1, 5)) == pytest.approx(expected, abs=1e-12)


def test_8x8_stripes_by_hand():
    # Pair (ref, nbr) with column shift s: same level iff s even. With R rows and n valid columns:
    #            (0,0)          (63,63)       (0,63)            (63,0)
    # 90 deg:    4*(7+6+5+4)=88  88            -                 -          (all shifts 0)
    # 0 deg:     d2: 24, d4: 16  same          d1: 4*8, d3: 3*8   d1: 3*8, d3: 2*8
    # 45 deg:    d2: 18, d4: 8   same          d1: 4*7, d3: 3*5   d1: 3*7, d3: 2*5
    # 135 deg:   d2: 18, d4: 8   same          d1: 3*7, d3: 2*5   d1: 4*7, d3: 3*5
    # totals:    180             180           130               114        (sum 604)
    expected = entropy_of_counts([180, 180, 130, 114])
    assert glcm_entropy(stripes(8, 8)) == pytest.approx(expected, abs=1e-12)
    assert naive_glcm_entropy(stripes(8, 8)) == pytest.approx(expected, abs=1e-12)


def test_matches_naive_reference():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (20, 17)).astype(np.uint8)
    assert glcm_entropy(img) == pytest.approx(naive_glcm_entropy(img), abs=1e-12)
    assert glcm_entropy(stripes(64, 64)) == pytest.approx(naive_glcm_entropy(stripes(64, 64)), abs=1e-12)


def test_mean_over_patches_and_ignored_border():
    one = glcm_entropy(stripes(64, 64))
    # two patches (stripes above, constant below) average to half; no pairs cross the patch border
    two = np.vstack([stripes(64, 64), np.zeros((64, 64), np.uint8)])
    assert glcm_entropy(two) == pytest.approx(one / 2, abs=1e-12)
    # a noisy partial border beyond the one full patch is ignored
    big = np.random.default_rng(2).integers(0, 256, (70, 90)).astype(np.uint8)
    big[:64, :64] = stripes(64, 64)
    assert glcm_entropy(big) == pytest.approx(one, abs=1e-12)
    # a side shorter than 64 is one patch along that side: 100x30 -> one 64x30 patch
    tall = np.random.default_rng(3).integers(0, 256, (100, 30)).astype(np.uint8)
    assert glcm_entropy(tall) == pytest.approx(naive_glcm_entropy(tall[:64]), abs=1e-12)


def test_noise_has_more_entropy_than_gradient():
    gradient = np.tile(np.linspace(0, 255, 128), (128, 1)).astype(np.uint8)
    noise = np.random.default_rng(4).integers(0, 256, (128, 128)).astype(np.uint8)
    h_grad, h_noise = glcm_entropy(gradient), glcm_entropy(noise)
    assert 0 < h_grad < h_noise <= 12.0  # at most log2(64 * 64) bits
    assert h_noise > 11.0


def test_small_images_work():
    assert glcm_entropy(np.zeros((1, 1), np.uint8)) == 0.0  # no pairs at all
    assert glcm_entropy(stripes(3, 40)) > 0.0
    assert glcm_entropy(Image.new("RGB", (10, 7), (200, 30, 90))) == 0.0


def test_pil_and_numpy_agree():
    rng = np.random.default_rng(5)
    rgb = rng.integers(0, 256, (100, 150, 3)).astype(np.uint8)
    assert glcm_entropy(Image.fromarray(rgb)) == glcm_entropy(rgb)
    rgba = np.dstack([rgb, rng.integers(0, 256, (100, 150)).astype(np.uint8)])
    assert glcm_entropy(Image.fromarray(rgba)) == glcm_entropy(rgba)
    grey = rgb[..., 0]
    assert glcm_entropy(Image.fromarray(grey)) == glcm_entropy(grey)
    assert glcm_entropy(grey.astype(np.float64)) == glcm_entropy(grey)


def test_fast_enough():
    img = np.random.default_rng(6).integers(0, 256, (448, 448, 3)).astype(np.uint8)
    glcm_entropy(img)
    start = time.perf_counter()
    glcm_entropy(img)
    assert time.perf_counter() - start < 0.5  # typically a few tens of ms


# ---------------------------------------------------------------- image complexity, Eq. 2


def test_image_complexity_adds_classifier_entropy():
    img = stripes(8, 8)
    base = glcm_entropy(img)
    assert image_complexity(img) == base
    seen = []

    def stub(x):
        seen.append(x)
        return [0.5, 0.5]

    assert image_complexity(img, stub) == pytest.approx(base + 1.0, abs=1e-12)
    assert seen[0] is img
    assert image_complexity(img, lambda x: [1, 1, 1, 1]) == pytest.approx(base + 2.0)  # renormalised
    assert image_complexity(img, lambda x: np.array([0.0, 1.0])) == pytest.approx(base)


def test_several_images_enter_eq2_as_their_mean():
    flat, striped = np.zeros((8, 8), dtype=np.uint8), stripes(8, 8)
    assert glcm_entropy(flat) == 0.0 and glcm_entropy(striped) > 0
    assert images_complexity([flat, striped]) == pytest.approx((0.0 + glcm_entropy(striped)) / 2)
    # with a classifier, each image adds the entropy of its own prediction: 1 bit and 0 bits here
    assert images_complexity([flat, striped], [[0.5, 0.5], [1.0, 0.0]]) == pytest.approx(
        (0.0 + 1.0 + glcm_entropy(striped) + 0.0) / 2)
    assert images_complexity([striped]) == image_complexity(striped)  # one image: Eq. 2 exactly as before
    assert math.isnan(images_complexity([]))  # text-only: no complexity
    with pytest.raises(ValueError):
        images_complexity([flat, striped], [[0.5, 0.5]])


def test_a_question_without_an_image_gets_the_middle_rank():
    # the questions with images are ranked among themselves, [3, 1] -> [1, 0]; the text-only one gets 0.5
    np.testing.assert_allclose(complexity_ranks([3.0, np.nan, 1.0]), [1.0, 0.5, 0.0])
    np.testing.assert_allclose(complexity_ranks([np.nan, np.nan]), [0.5, 0.5])
    np.testing.assert_allclose(complexity_ranks([2.0, 2.0, 5.0]), rank_normalise([2.0, 2.0, 5.0]))  # no NaN: as before
    # S_d = (1 - pass) * rank: [1 * 1, 0.5 * 0.5, 0.75 * 0]
    np.testing.assert_allclose(combined_difficulty([0.0, 0.5, 0.25], [3.0, np.nan, 1.0]), [1.0, 0.25, 0.0])
    with pytest.raises(ValueError):
        complexity_ranks([1.0, np.inf])


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "call",
    [
        lambda: pass_rates([1, 0, 1]),
        lambda: pass_rates([[1, 2]]),
        lambda: pass_rates(np.zeros((3, 0))),
        lambda: kl_coefficients([0.5], beta_min=0.03, beta_max=0.001),
        lambda: kl_coefficients([1.5]),
        lambda: hard_questions([0.1, 0.2], percentile=101),
        lambda: hard_questions([0.1, 0.2], percentile=-1),
        lambda: hard_questions([[0.1, 0.2]]),
        lambda: slow_to_fast_keep([0.5], 1.5),
        lambda: slow_to_fast_keep([0.5], -0.1),
        lambda: slow_to_fast_keep([0.5], float("nan")),
        lambda: continuous_keep([0.5], 1.5, [0.1]),
        lambda: continuous_keep([0.5, 0.9], 0.5, [0.1]),
        lambda: combined_difficulty([0.5, 0.5], [1.0]),
        lambda: combined_difficulty([-0.1], [1.0]),
        lambda: rank_normalise([1.0, float("nan")]),
        lambda: glcm_entropy(np.zeros((8, 8, 2))),
        lambda: glcm_entropy(np.zeros((0, 8))),
        lambda: image_complexity(np.zeros((8, 8)), lambda x: [-0.5, 1.5]),
        lambda: image_complexity(np.zeros((8, 8)), lambda x: [0.0, 0.0]),
    ],
)
def test_validation_errors(call):
    with pytest.raises(ValueError):
        call()
