"""Question difficulty for FAST-GRPO (docs/paper.md §2, §4 and §5).

Everything here is plain numpy/PIL and works on one batch of questions at a time:

- extrinsic difficulty: per-question pass rate over its G rollouts, S_ext = 1 - pass;
- intrinsic difficulty: image complexity H_img = GLCM entropy (+ classifier entropy), paper Eq. 2;
- combined difficulty S_d = S_ext * rank(H_img), paper Eq. 3, and the "hard" threshold (80th percentile);
- the difficulty-aware KL coefficient, paper Eq. 5;
- the curriculum filters: binary Slow-to-Fast (paper Algorithm 1, docs/paper.md §5) and the continuous
  variant of the paper's appendix I.

All entropies are in bits (log base 2), so a uniform two-class classifier adds exactly 1.
"""

import numpy as np
from PIL import Image

LEVELS = 64  # grey levels after quantisation
PATCH = 64  # patch side in pixels
DISTANCES = (1, 2, 3, 4)
# (row, col) unit steps for 0, 45, 90, 135 degrees; rows grow downwards, so "up" is -1.
ANGLE_STEPS = ((0, 1), (-1, 1), (-1, 0), (-1, -1))
OFFSETS = tuple((d * dr, d * dc) for d in DISTANCES for dr, dc in ANGLE_STEPS)
TOL = 1e-6  # pass rates are multiples of 1/G; compare them with a little slack


def _vector(x, name) -> np.ndarray:
    """1-D finite float array, or ValueError."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} must be finite")
    return x


def _pass_vector(pass_rate) -> np.ndarray:
    p = _vector(pass_rate, "pass_rate")
    if np.any((p < 0) | (p > 1)):
        raise ValueError("pass_rate must lie in [0, 1]")
    return p


def _entropy_bits(p: np.ndarray, axis=-1) -> np.ndarray:
    """Shannon entropy in bits of probabilities along `axis`; 0 * log 0 counts as 0."""
    logp = np.log2(p, where=p > 0, out=np.zeros_like(p))
    return -(p * logp).sum(axis=axis)


def pass_rates(correct) -> np.ndarray:
    """Per-question pass rate from a (questions, G) 0/1 matrix of rollout correctness.

    S_ext = 1 - pass is the extrinsic difficulty (docs/paper.md §2).
    """
    c = np.asarray(correct)
    if c.ndim != 2:
        raise ValueError(f"correct must be a 2-D (questions, G) matrix, got shape {c.shape}")
    if c.shape[1] == 0:
        raise ValueError("correct needs at least one rollout per question (G >= 1)")
    c = c.astype(np.float64)
    if not np.all((c == 0) | (c == 1)):
        raise ValueError("correct must contain only 0/1 (or bool) values")
    return c.mean(axis=1)


def _grey(image) -> np.ndarray:
    """8-bit grey image (H, W) as int64, from a PIL image or an (H, W[, 1|3|4]) array on the 0..255 scale."""
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("L"), dtype=np.int64)
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))):
        raise ValueError(f"image array must be HxW or HxWx3/4, got shape {a.shape}")
    # Floats are read on the 0..255 scale (not 0..1); round and clip like an 8-bit image.
    a = np.clip(np.rint(a.astype(np.float64)), 0, 255).astype(np.int64)
    if a.ndim == 2:
        return a
    # ITU-R 601 weights in PIL's own 16-bit fixed point (alpha ignored), so arrays match PIL's "L" exactly.
    r, g, b = a[..., 0], a[..., 1], a[..., 2]
    return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16


def _patches(q: np.ndarray) -> np.ndarray:
    """Cut (H, W) into non-overlapping patches, shape (P, ph, pw).

    [ours] A side shorter than PATCH is one patch along that side (its whole self), so a small image is
    a single patch. Partial patches at the right/bottom border are ignored: with at least one full patch
    per axis they would only add noisy small-sample estimates.
    """
    h, w = q.shape
    if h == 0 or w == 0:
        raise ValueError(f"image is empty, shape {q.shape}")
    ph, pw = min(PATCH, h), min(PATCH, w)
    nr, nc = h // ph, w // pw
    q = q[: nr * ph, : nc * pw]
    return q.reshape(nr, ph, nc, pw).transpose(0, 2, 1, 3).reshape(nr * nc, ph, pw)


def glcm_entropy(image) -> float:
    """Eq. 2, texture part: mean GLCM entropy (bits) over 64x64 patches of the 64-level grey image.

    Per patch, the co-occurrence counts of the 16 offsets (distances 1..4 x angles 0/45/90/135 degrees)
    are pooled into one 64x64 matrix [ours], normalised to probabilities, and its Shannon entropy taken.
    Pairs are ordered (reference, neighbour), i.e. the matrix is not symmetrised. A patch too small for
    any pair (e.g. 1x1) has entropy 0.
    """
    # Eq. 2 (a): texture part of the image complexity H_img.
    q = _grey(image) * LEVELS // 256  # quantise 256 -> 64 grey levels
    patches = _patches(q)
    n, ph, pw = patches.shape
    cells = LEVELS * LEVELS
    # One flat bin per (patch, reference level, neighbour level): bincount counts every GLCM at once.
    base = np.arange(n, dtype=np.int64).reshape(n, 1, 1) * cells
    counts = np.zeros(n * cells, dtype=np.int64)
    for dr, dc in OFFSETS:
        # Reference pixel (r, c) pairs with (r + dr, c + dc); keep only pairs with both inside the patch.
        r0, r1 = max(0, -dr), ph - max(0, dr)
        c0, c1 = max(0, -dc), pw - max(0, dc)
        if r0 >= r1 or c0 >= c1:
            continue  # patch smaller than this offset
        ref = patches[:, r0:r1, c0:c1]
        nbr = patches[:, r0 + dr : r1 + dr, c0 + dc : c1 + dc]
        counts += np.bincount((base + ref * LEVELS + nbr).ravel(), minlength=n * cells)
    counts = counts.reshape(n, cells).astype(np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    probs = np.divide(counts, totals, where=totals > 0, out=np.zeros_like(counts))
    return float(_entropy_bits(probs).mean())


def image_complexity(image, classifier=None) -> float:
    """Eq. 2: image complexity H_img = GLCM entropy + entropy of classifier(image) probabilities, both in bits.

    `classifier` is any callable returning class probabilities, or the probabilities themselves (computed
    for a batch beforehand: vlm.class_probabilities); they are renormalised here if they do not sum to 1.
    Without one, H_img is the GLCM part alone; callers should log that once and cache H_img per image,
    since it does not change during training.
    """
    # Eq. 2: H_img = H_glcm (texture) + H_sem (semantic uncertainty of a classifier).
    h = glcm_entropy(image)
    if classifier is None:
        return h
    p = np.asarray(classifier(image) if callable(classifier) else classifier, dtype=np.float64).ravel()
    if p.size == 0 or not np.all(np.isfinite(p)) or np.any(p < 0) or p.sum() <= 0:
        raise ValueError("classifier must return finite, non-negative probabilities with a positive sum")
    return h + float(_entropy_bits(p / p.sum()))


def images_complexity(images, probabilities=None) -> float:
    """H_img of a question with any number of images: the mean of its images' Eq. 2 complexities; NaN without one.

    [ours] The mean, not the sum: a question with two simple diagrams is not harder to see than one with a single
    dense photo, and the ranking (rank_normalise) then compares questions on one scale whatever their image
    count. NaN marks a text-only question; complexity_ranks gives it the middle rank. `probabilities`: one
    classifier output per image, or None (GLCM entropy alone).
    """
    if len(images) == 0:
        return float("nan")
    probabilities = [None] * len(images) if probabilities is None else probabilities
    if len(probabilities) != len(images):
        raise ValueError(f"{len(probabilities)} classifier outputs for {len(images)} images")
    values = [image_complexity(image, p) for image, p in zip(images, probabilities)]
    return values[0] if len(values) == 1 else float(np.mean(values))


def rank_normalise(values) -> np.ndarray:
    """Average ranks (ties share their mean 1-based rank) mapped to [0, 1] by (rank - 1) / (n - 1).

    All-equal values (or a single one) carry no ordering information and map to 0.5.
    """
    v = _vector(values, "values")
    n = v.size
    if n == 0:
        return v
    uniq, inverse, tie_counts = np.unique(v, return_inverse=True, return_counts=True)
    if uniq.size == 1:
        return np.full(n, 0.5)
    end = np.cumsum(tie_counts)  # 1-based rank of the last member of each tie group
    start = end - tie_counts + 1  # ... and of the first
    ranks = (start + end) / 2.0
    return (ranks[inverse] - 1) / (n - 1)


def complexity_ranks(complexity) -> np.ndarray:
    """rank_normalise over the questions that have an image; a question without one (complexity NaN) gets 0.5.

    [ours] The middle rank says "no information" and leaves S_d = S_ext / 2. (The released code fills a missing
    complexity with the raw value 0.5 before ranking; that lands in the middle only when every question lacks one,
    and otherwise ranks a text-only question as if it had the simplest image.)
    """
    h = np.asarray(complexity, dtype=np.float64)
    if h.ndim != 1:
        raise ValueError(f"complexity must be 1-D, got shape {h.shape}")
    if np.isinf(h).any():
        raise ValueError("complexity must be finite (NaN marks a question without an image)")
    ranks = np.full(h.shape, 0.5)
    has_image = ~np.isnan(h)
    ranks[has_image] = rank_normalise(h[has_image])
    return ranks


def combined_difficulty(pass_rate, complexity) -> np.ndarray:
    """Eq. 3: S_d = (1 - pass) * rank_normalise(H_img) over the questions of one batch (docs/paper.md §2);
    a question without an image (complexity NaN) has rank 0.5 (complexity_ranks)."""
    # Combined difficulty: extrinsic (rollouts) times intrinsic (image) difficulty, as in the released code.
    p = _pass_vector(pass_rate)
    ranks = complexity_ranks(complexity)
    if p.shape != ranks.shape:
        raise ValueError(f"pass_rate and complexity shapes differ: {p.shape} vs {ranks.shape}")
    return (1.0 - p) * ranks


def hard_questions(s_d, percentile=80) -> np.ndarray:
    """Hard iff S_d >= theta (the batch's `percentile`-th percentile of S_d) and S_d > 0.

    [ours] S_d > 0 keeps all-correct questions from ever being hard: otherwise a batch that is mostly
    all-correct has theta = 0 and every question would count as hard.
    """
    s = _vector(s_d, "s_d")
    if not 0 <= percentile <= 100:
        raise ValueError(f"percentile must lie in [0, 100], got {percentile}")
    if s.size == 0:
        return np.zeros(0, dtype=bool)
    theta = np.percentile(s, percentile)  # numpy's default linear interpolation
    return (s >= theta) & (s > 0)


def kl_coefficients(pass_rate, beta_min=0.001, beta_max=0.03) -> np.ndarray:
    """Eq. 5: per-question KL weight beta_q; hard questions (low pass) get beta_min, easy ones beta_max.

    A loose leash lets the policy explore where it fails; easy questions stay near the reference.
    """
    # Eq. 5: difficulty-aware KL coefficient, beta_q = beta_min + (beta_max - beta_min) * pass_q.
    if not 0 <= beta_min <= beta_max:
        raise ValueError(f"need 0 <= beta_min <= beta_max, got {beta_min}, {beta_max}")
    p = _pass_vector(pass_rate)
    return beta_min + (beta_max - beta_min) * p


CONTINUOUS_MAX_EASY = 0.4  # appendix I: p_easy(t) = 0.4 t / T


def mixed_outcomes(pass_rate) -> np.ndarray:
    """Groups with 0 < pass < 1. The released code keeps only these, online, in every phase (`--drop-pass-0-1`);
    the paper drops pass 0 and 1 only offline, when it builds its training set."""
    p = _pass_vector(pass_rate)
    return (p > TOL) & (p < 1 - TOL)


def slow_to_fast_keep(pass_rate, progress) -> np.ndarray:
    """Algorithm 1's Slow-to-Fast sampling: mask of groups kept for the update, binary schedule (docs/paper.md §5).

    Slow half (progress < 0.5): drop easy groups, pass >= 0.75, so training uses questions that need thought.
    Fast half (progress >= 0.5): instead drop hard groups, pass <= 0.25; easy groups come back to practise
    concise answers. That is the paper's whole online rule: a group every rollout solves (pass 1) is kept in
    the fast half, where its lengths still differ and the thinking reward teaches brevity; a group no rollout
    solves (pass 0) is kept in the slow half. Filter first; compute theta and L_avg over the kept groups
    (Algorithm 1).
    """
    # Curriculum: Algorithm 1, docs/paper.md §5 (the paper's order and rule, not the released code's).
    if not 0 <= progress <= 1:  # also rejects NaN
        raise ValueError(f"progress must lie in [0, 1], got {progress}")
    p = _pass_vector(pass_rate)
    return p < 0.75 - TOL if progress < 0.5 else p > 0.25 + TOL


def continuous_keep(pass_rate, progress, uniform) -> np.ndarray:
    """Appendix I's continuous curriculum: mask of groups kept (docs/paper.md §5); an easy group (pass >= 0.75)
    is admitted with probability p_easy(t) = 0.4 t / T, every other group always.

    `uniform` holds one number drawn uniformly from [0, 1) per group (the caller owns the random state, so
    this stays a pure function): an easy group is kept iff its number is below p_easy.
    """
    if not 0 <= progress <= 1:
        raise ValueError(f"progress must lie in [0, 1], got {progress}")
    p = _pass_vector(pass_rate)
    u = _vector(uniform, "uniform")
    if u.shape != p.shape:
        raise ValueError(f"uniform must hold one number per group: {u.shape} vs {p.shape}")
    # Appendix I: easy questions are admitted with a probability that grows with training progress.
    return (p < 0.75 - TOL) | (u < CONTINUOUS_MAX_EASY * progress)
