"""Wrong implementations for tests/classroom/test_classroom.py, as they appear in student work and in other GRPO/FAST
repositories. Never copied into an assignment (classroom/kit.py's SKIP_PATHS): they would give the answers away."""

# Wrong implementations, as they appear in student work and in other GRPO/FAST repositories. Each is either
# (mistake, old, new): the reference function with `old` replaced by `new` (old must occur in it exactly once),
# or (mistake, source): a whole wrong function. The grader must fail that exercise, and only that one.
WRONG = {
    "advantages": [
        ("biased (population) std", "rewards.std(dim=1, keepdim=True)",
         "rewards.std(dim=1, keepdim=True, unbiased=False)"),
        ("NaN on an all-equal group (no epsilon)", "(rewards.std(dim=1, keepdim=True) + 1e-6)",
         "rewards.std(dim=1, keepdim=True)"),
        ("normalised over the whole batch, not per group", "centred / (rewards.std(dim=1, keepdim=True) + 1e-6)",
         "(rewards - rewards.mean()) / (rewards.std() + 1e-6)"),
    ],
    "k3-kl": [
        ("ratio inverted (policy over reference)", "ref_logp - logp", "logp - ref_logp"),
        ("no clamp of the log-ratio", "torch.clamp(ref_logp - logp, -20.0, 20.0)", "ref_logp - logp"),
        ("k1 instead of k3", "return torch.exp(log_ratio) - log_ratio - 1.0", "return -log_ratio"),
    ],
    "grpo-loss": [
        ("clip applied to the advantage instead of the ratio",
         "torch.clamp(ratio, 1.0 - eps_low, 1.0 + eps_high) * adv",
         "ratio * torch.clamp(adv, 1.0 - eps_low, 1.0 + eps_high)"),
        ("padding masked by multiplying (-inf * 0 = NaN)", "torch.where(response_mask.bool(), per_token, 0.0)",
         "per_token * response_mask"),
        ("max instead of min (the optimistic bound)", "torch.minimum(", "torch.maximum("),
        ("KL added to the objective instead of subtracted", "-(surrogate - beta * k3_kl(logp, ref_logp))",
         "-(surrogate + beta * k3_kl(logp, ref_logp))"),
        ("the importance level not passed on (GSPO silently per token)",
         "importance_log_ratio(logp, old_logp, response_mask, importance_level)",
         "importance_log_ratio(logp, old_logp, response_mask)"),
    ],
    "loss-aggregation": [
        ("no 1/|o_i| in 'seq'", "(per_token.sum(1) / mask.sum(1).clamp(min=1)).mean()", "per_token.sum(1).mean()"),
        ("a mean over padding", "(per_token.sum(1) / mask.sum(1).clamp(min=1)).mean()", "per_token.mean()"),
        ("Dr. GRPO over the response tokens, not the budget (that is 'token')",
         "per_token.sum() / (len(per_token) * max_new_tokens)", "per_token.sum() / mask.sum().clamp(min=1)"),
        ("Dr. GRPO over the budget alone, not rows x budget", "per_token.sum() / (len(per_token) * max_new_tokens)",
         "per_token.sum() / max_new_tokens"),
    ],
    "gspo-ratio": [
        ("the sum of the token log-ratios, not their mean (the product of the ratios)",
         "(log_ratio.sum(1, keepdim=True) / lengths)", "log_ratio.sum(1, keepdim=True)"),
        ("the mean over the padded width, not over the response's tokens",
         "lengths = response_mask.sum(1, keepdim=True).clamp(min=1)", "lengths = response_mask.shape[1]"),
        ("padding not zeroed (-inf - -inf = NaN)", "torch.where(response_mask.bool(), logp - old_logp, 0.0)",
         "logp - old_logp"),
    ],
    "token-logprobs": [
        ("log-prob shift off by one", "head(hidden.contiguous())[:, :-1]", "head(hidden.contiguous())[:, 1:]"),
        ("without the temperature", "logits = logits / (temperature if temperature > 0 else 1.0)", "pass"),
        ("vision tokens not masked out", 'logits[..., suppress_ids] = float("-inf")', "pass"),
    ],
    "thinking-reward": [
        ("no cap at 1 on the hard branch", "np.minimum(ratio[hard_wrong] - 1.0, 1.0)", "ratio[hard_wrong] - 1.0"),
        ("the cap on the wrong branch", "reward[easy_correct] = 1.0 - ratio[easy_correct]\n    "
         "reward[hard_wrong] = np.minimum(ratio[hard_wrong] - 1.0, 1.0)",
         "reward[easy_correct] = np.minimum(1.0 - ratio[easy_correct], 1.0)\n    "
         "reward[hard_wrong] = ratio[hard_wrong] - 1.0"),
        ("brevity reward clipped at 0", "1.0 - ratio[easy_correct]", "np.maximum(1.0 - ratio[easy_correct], 0.0)"),
        ("L_avg over the correct responses only", "l_avg = lengths.mean()",
         "l_avg = lengths[correct].mean() if correct.any() else 0.0"),
        ("0/0 on all-empty responses", "    if l_avg <= 0:\n        return reward  # all responses empty: no length "
         "signal, and no 0/0\n", ""),
    ],
    "dynamic-kl": [
        ("direction reversed (hard questions held tight)", "return beta_min + (beta_max - beta_min) * p",
         "return beta_max - (beta_max - beta_min) * p"),
        ("the released code's constant 0.01", "return beta_min + (beta_max - beta_min) * p",
         "return np.full_like(p, 0.01)"),
    ],
    "rank-difficulty": [
        ("ties ranked by order of appearance", """
def rank_normalise(values):
    v = _vector(values, "values")
    n = v.size
    if n == 0:
        return v
    if np.all(v == v[0]):
        return np.full(n, 0.5)
    ranks = np.argsort(np.argsort(v, kind="stable"), kind="stable")  # 0-based, ties in order of appearance
    return ranks / (n - 1)
"""),
        ("min-max scaling of the values instead of ranks", """
def rank_normalise(values):
    v = _vector(values, "values")
    if v.size == 0:
        return v
    spread = v.max() - v.min()
    return np.full(v.size, 0.5) if spread == 0 else (v - v.min()) / spread
"""),
        ("divides by n instead of n - 1", "(ranks[inverse] - 1) / (n - 1)", "(ranks[inverse] - 1) / n"),
        ("S_d from the pass rate instead of 1 - pass", "(1.0 - p) * ranks", "p * ranks"),
    ],
    "hard-threshold": [
        ("strict > theta (ties at the threshold are not hard)", "(s >= theta) & (s > 0)", "(s > theta) & (s > 0)"),
        ("without S_d > 0 (all-correct questions can be hard)", "(s >= theta) & (s > 0)", "s >= theta"),
        ("top 20% by count instead of the percentile", """
def hard_questions(s_d, percentile=80):
    s = _vector(s_d, "s_d")
    hard = np.zeros(s.size, dtype=bool)
    count = int(np.ceil(s.size * (100 - percentile) / 100))
    if count:
        hard[np.argsort(-s, kind="stable")[:count]] = True
    return hard & (s > 0)
"""),
        ("percentile by the nearest rank, not interpolated", "np.percentile(s, percentile)",
         "np.percentile(s, percentile, method='lower')"),
    ],
    "slow-to-fast": [
        ("the phases swapped (the released code's order)", "p < 0.75 - TOL if progress < 0.5 else p > 0.25 + TOL",
         "p > 0.25 + TOL if progress < 0.5 else p < 0.75 - TOL"),
        ("drops pass 0 and 1 in every phase (the released code's online rule)",
         "return p < 0.75 - TOL if progress < 0.5 else p > 0.25 + TOL",
         "keep = p < 0.75 - TOL if progress < 0.5 else p > 0.25 + TOL\n    return keep & (p > TOL) & (p < 1 - TOL)"),
        ("the released code's bounds 0.7 / 0.3", "p < 0.75 - TOL if progress < 0.5 else p > 0.25 + TOL",
         "p < 0.7 - TOL if progress < 0.5 else p > 0.3 + TOL"),
        ("switches after the half, not at it", "if progress < 0.5 else", "if progress <= 0.5 else"),
        ("exact comparison of pass rates (no tolerance)", "p < 0.75 - TOL if progress < 0.5 else p > 0.25 + TOL",
         "p < 0.75 if progress < 0.5 else p > 0.25"),
    ],
    "glcm-entropy": [
        ("no quantisation: 256 grey levels", """
def glcm_entropy(image):
    q = _grey(image)  # 256 levels, as the image comes
    patches = _patches(q)
    n, ph, pw = patches.shape
    cells = 256 * 256
    base = np.arange(n, dtype=np.int64).reshape(n, 1, 1) * cells
    counts = np.zeros(n * cells, dtype=np.int64)
    for dr, dc in OFFSETS:
        r0, r1 = max(0, -dr), ph - max(0, dr)
        c0, c1 = max(0, -dc), pw - max(0, dc)
        if r0 >= r1 or c0 >= c1:
            continue
        ref = patches[:, r0:r1, c0:c1]
        nbr = patches[:, r0 + dr : r1 + dr, c0 + dc : c1 + dc]
        counts += np.bincount((base + ref * 256 + nbr).ravel(), minlength=n * cells)
    counts = counts.reshape(n, cells).astype(np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    probs = np.divide(counts, totals, where=totals > 0, out=np.zeros_like(counts))
    return float(_entropy_bits(probs).mean())
"""),
        ("distance 1 only", "for dr, dc in OFFSETS:", "for dr, dc in ANGLE_STEPS:"),
        ("symmetrised co-occurrence matrix",
         "counts += np.bincount((base + ref * LEVELS + nbr).ravel(), minlength=n * cells)",
         "counts += np.bincount((base + ref * LEVELS + nbr).ravel(), minlength=n * cells)\n        "
         "counts += np.bincount((base + nbr * LEVELS + ref).ravel(), minlength=n * cells)"),
        ("natural log instead of bits", "return float(_entropy_bits(probs).mean())",
         "return float(_entropy_bits(probs).mean() * np.log(2))"),
        ("one matrix for the whole image, no patches", "patches = _patches(q)", "patches = q[None]"),
    ],
    "format-reward": [
        ("the released code's regex (nested tags and text inside blocks pass)", """
def format_reward(response, style="think"):
    if style not in FORMAT_STYLES:
        raise ValueError(f"unknown format style {style!r}")
    first, second = FORMAT_STYLES[style]
    pattern = rf"\\s*<{first}>.*</{first}>\\s*<{second}>.*</{second}>\\s*"
    return float(re.fullmatch(pattern, response, re.DOTALL) is not None)
"""),
        ("tags found in order, never counted (repeated tags pass)", """
def format_reward(response, style="think"):
    if style not in FORMAT_STYLES:
        raise ValueError(f"unknown format style {style!r}")
    first, second = FORMAT_STYLES[style]
    s = response.strip()
    end_first, start_second = s.find(f"</{first}>"), s.find(f"<{second}>")
    ok = s.startswith(f"<{first}>") and s.endswith(f"</{second}>") and 0 <= end_first < start_second
    return float(ok and not s[end_first + len(f"</{first}>"):start_second].strip())
"""),
        ("no strip: whitespace around the blocks fails", "s = response.strip()", "s = response"),
        ("a blank answer passes", "return float(bool(body.strip()))", "return 1.0"),
    ],
}
