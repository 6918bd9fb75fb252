"""FAST-GRPO: Fast-Slow Thinking GRPO for vision-language models, in one plain PyTorch loop.

Xiao & Gan, "Fast-Slow Thinking GRPO for Large Vision-Language Model Reasoning" (NeurIPS 2025). Every formula
and constant is stated in docs/paper.md ("§n" in this project always means its sections); each equation is one
function, named there.

Read top to bottom: Args (every flag), the GRPO objective, then `training_step`, one iteration of the paper's
Algorithm 1:
    sample G responses per question -> score them (r_acc, r_fmt) -> image complexity (Eq. 2)
    -> pass rate, Slow-to-Fast filter, S_d (Eq. 3), hard flags -> thinking reward (Eq. 4), KL coefficient (Eq. 5)
    -> group-normalised advantages -> mu clipped policy updates with the KL penalty
and last `train`, the harness that runs it (set-up, resume, logs, checkpoints, signals: machinery/).

    python fast_grpo.py                                                          # the offline demo
    python fast_grpo.py --model Qwen/Qwen2-VL-2B-Instruct --data train.jsonl     # a real model and data
"""

import math
import os
import signal
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from benchmarks import protocol
from data_loading import loader
import difficulty
import eval as evaluation
from machinery import checkpoints, command_line, distributed, fsdp, harness, loading, logs, lora, stopping
import methods
import rewards
import vlm

# ----------------------------------------------------------------------------------------------------------
# Arguments: every flag, with its default and what it does (`python fast_grpo.py --help`)


def arg(default, help, **kwargs):
    return field(default=default, metadata={"help": help, **kwargs})


@dataclass
class Args:
    # what to train, on what
    method: str = arg("fast", "preset (methods.py): " + " | ".join(methods.METHODS), choices=list(methods.METHODS))
    model: str = arg(None, "hub id (e.g. Qwen/Qwen2-VL-2B-Instruct) or local folder of a Qwen2-VL/Qwen2.5-VL "
                     "model (default: the shipped demo/model/)")
    data: str = arg("synthetic", "a .jsonl/.json/.parquet file, a folder of them (DIR@split), a hub dataset "
                    "owner/name@split (split default: train), or 'synthetic' for the demo task; the schemas of "
                    "Geometry3K, ViRL39K, ShareGPT, LLaVA and TRL are read unchanged (docs/data.md)")
    image_dir: str = arg(None, loader.OPTIONS["image_dir"])
    question_key: str = arg(None, loader.OPTIONS["question_key"])
    answer_key: str = arg(None, loader.OPTIONS["answer_key"])
    image_key: str = arg(None, loader.OPTIONS["image_key"])
    max_images: int = arg(None, loader.OPTIONS["max_images"])
    reward_fn: str = arg(None, "your task's reward, path.py:function (EasyR1's signature): function(response, "
                         "ground_truth) -> a float, or a dict with 'overall' (replaces r_acc + w r_fmt; FAST's 0.5 "
                         "r_t is still added) and parts such as 'accuracy' (> 0: correct; the pass rate, Eq. 4 and 5 "
                         "and the curriculum need it) and 'format', each logged as reward_<part> "
                         "(docs/reward-functions.md)")
    output_dir: str = arg("runs/fast-grpo", "where metrics.jsonl, samples.jsonl and checkpoint-<step>/ go")
    # sampling
    batch_size: int = arg(None, "questions per step (default: 8)")
    group_size: int = arg(None, "G: responses sampled per question (default: 8 as in the paper)")
    temperature: float = arg(1.0, "sampling temperature; log-probs use logits / temperature too (paper: 1.0)")
    max_new_tokens: int = arg(None, "longest response; longer ones are cut and counted as truncated "
                              f"(default: demo {methods.DEMO_DEFAULTS['max_new_tokens']}, otherwise 1024)")
    max_pixels: int = arg(None, "resize images to at most this many pixels (default: demo the processor's, "
                          "otherwise 1003520 = 1280 image tokens)")
    skip_bad_examples: bool = arg(False, "skip unusable data lines and report them, instead of stopping", boolean=True)
    complexity_model: str = arg(None, "image classifier folder or hub id (the paper: a ViT, for example "
                                "google/vit-base-patch16-224) whose prediction entropy Eq. 2 adds to the GLCM entropy "
                                "(default: GLCM entropy alone)")
    # optimisation
    max_steps: int = arg(None, "training steps, one batch of questions each (default: demo "
                         f"{methods.DEMO_DEFAULTS['max_steps']}, "
                         "otherwise 500)")
    updates_per_batch: int = arg(1, "mu: optimizer steps on each sampled batch (1 = on-policy, ratio == 1)")
    lr: float = arg(None, f"AdamW learning rate (default: demo {methods.DEMO_DEFAULTS['lr']:g}, otherwise 1e-6 as in "
                    "the paper)")
    lr_scheduler: str = arg("constant", "the learning rate over the run, a function of the step: constant (the paper), "
                            "or linear or cosine decay to 0 after the warm-up (docs/tracking.md)",
                            choices=["constant", "linear", "cosine"])
    warmup_ratio: float = arg(0.0, "share of --max-steps over which the learning rate first rises linearly to --lr "
                              "(0: no warm-up, the paper)")
    weight_decay: float = arg(0.01, "AdamW weight decay (EasyR1's default)")
    max_grad_norm: float = arg(1.0, "clip the gradient norm to this")
    micro_batch_size: int = arg(None, "rows per forward/backward pass: gradient accumulation, saves memory "
                                "(default: demo 64, otherwise 8)")
    eps_low: float = arg(0.2, "clip range below 1 of the probability ratio")
    eps_high: float = arg(0.2, "clip range above 1 of the probability ratio (DAPO uses 0.28)")
    lora_rank: int = arg(0, "LoRA rank r (0: train every weight). Adapters go on the language model only; the KL "
                         "reference is the policy with its adapters off; without --lr, lr is "
                         f"{methods.LORA_LR['paper']:g} (demo {methods.LORA_LR['demo']:g})")
    lora_alpha: float = arg(None, "LoRA scale: an adapter adds (alpha / r) B A to its weight (default 2 r)")
    lora_targets: str = arg(lora.DEFAULT_TARGETS, "comma-separated names of the language model's Linear modules "
                            "that get adapters")
    # FAST components; None = the preset's value
    length_reward: bool = arg(None, "add the adaptive thinking reward, Eq. 4", boolean=True)
    dynamic_kl: bool = arg(None, "difficulty-aware KL coefficient, Eq. 5 (off: constant --kl-coef)", boolean=True)
    curriculum: str = arg(None, "which groups the update uses (docs/paper.md §5): slow-to-fast = the paper's "
                          "binary schedule (first half drops pass >= 0.75, second half pass <= 0.25), continuous = "
                          "appendix I (a group with pass >= 0.75 is kept with probability 0.4 t/T), none = every group "
                          "(default: the method's; the demo model's is "
                          f"{methods.DEMO_DEFAULTS['curriculum']}, see docs/demo.md)",
                          choices=["slow-to-fast", "continuous", "none"])
    slow_to_fast: bool = arg(None, "old spelling: --slow-to-fast = --curriculum slow-to-fast, --no-slow-to-fast = "
                             "--curriculum none", boolean=True)
    drop_pass_0_1: bool = arg(False, "also drop groups that every or no rollout solves, in every phase (the released "
                              "code's online filter; the paper does this only offline)", boolean=True)
    kl_coef: float = arg(None, "constant KL coefficient when --no-dynamic-kl")
    beta_min: float = arg(0.001, "Eq. 5: KL coefficient of a question no rollout solves")
    beta_max: float = arg(0.03, "Eq. 5: KL coefficient of a question every rollout solves")
    hard_percentile: float = arg(80.0, "questions with S_d at or above this percentile of the batch are hard")
    length_unit: str = arg("tokens", "thinking-reward length: tokens (paper) or chars (released code: characters after "
                           "removing whitespace around <, > and /)",
                           choices=["tokens", "chars"])
    # the field's later fixes to GRPO's lengths (docs/paper.md §10); the defaults are the paper's GRPO
    aggregation: str = arg("seq", "loss average: seq = per response then mean (paper), token = over all tokens "
                           "(released code, DAPO), dr-grpo = the token sum over rows x --max-new-tokens (Dr. GRPO)",
                           choices=["seq", "token", "dr-grpo"])
    scale_rewards: str = arg("group", "divide the centred rewards by the group's std (paper), the batch's, or none "
                             "(Dr. GRPO)", choices=["group", "batch", "none"])
    importance_level: str = arg("token", "probability ratio and clipping per token (paper) or per response, the "
                                "geometric mean of its token ratios (GSPO; differs only with --updates-per-batch > 1)",
                                choices=["token", "sequence"])
    mask_truncated: bool = arg(False, "leave truncated responses out of the loss, KL term and normalisers included "
                               "(DAPO's overlong filtering); their rewards still shape their groups' advantages",
                               boolean=True)
    overlong_buffer: int = arg(0, "DAPO's soft overlong penalty over the last this many tokens of --max-new-tokens: "
                               "the reward falls linearly to -P at the budget (0: off)")
    overlong_penalty: float = arg(1.0, "P, the overlong penalty at the budget (with --overlong-buffer)")
    # machinery
    seed: int = arg(0, "seed of data order, sampling and initialisation")
    device: str = arg("auto", "cpu, cuda, cuda:1, ... (auto: cuda if available)")
    dtype: str = arg("auto", "compute dtype, float32 | bfloat16 | float16 (auto: float32 on CPU, bfloat16 on "
                     "CUDA); the trained weights stay float32 (mixed precision)")
    gradient_checkpointing: bool = arg(False, "recompute activations in backward to save memory", boolean=True)
    fsdp: bool = arg(False, "under torchrun: shard weights, gradients and optimizer state across the processes "
                     "(FSDP2, machinery/fsdp.py) instead of a full copy on each (DDP)", boolean=True)
    freeze_vision: bool = arg(False, "train only the language model, not the vision tower", boolean=True)
    save_every: int = arg(50, "write checkpoint-<step>/ every this many steps (and at the end)")
    resume: str = arg(None, "continue from this checkpoint folder, or 'auto' for the newest in --output-dir")
    log_every: int = arg(10, "print a compact metrics line every this many steps (0: never); metrics.jsonl has "
                         "every step")
    eval_data: str = arg(None, "validation during training: a held-out file or folder in any --data format, or a "
                         "benchmark's files with --eval-benchmark")
    eval_benchmark: str = arg(None, "score --eval-data by this benchmark's own rules (docs/evaluation.md)",
                              choices=sorted(protocol.BENCHMARKS))
    eval_every: int = arg(0, "evaluate the policy greedily on --eval-data every this many steps (0: never); "
                          "val_accuracy and val_tokens go to metrics.jsonl, validation.png at the end")
    eval_size: int = arg(64, "how many items of --eval-data (its first ones, the same every time) to evaluate")
    report_to: str = arg("tensorboard", "where to watch the run live besides metrics.jsonl: a comma list of "
                         "tensorboard (event files in --output-dir: tensorboard --logdir runs), wandb, trackio "
                         "(neither is a requirement: pip install it), or none (docs/tracking.md)")
    compare_at_end: bool = arg(True, "with --data synthetic: evaluate the held-out set before and after training",
                               boolean=True)


def parse_args(argv=None):
    """Command line -> Args. A flag the user did not set comes from the model's defaults (methods.DEMO_DEFAULTS for
    the shipped demo model, PAPER_DEFAULTS for any other), then from the method preset; a combination that cannot
    work stops with one line (machinery/command_line.py)."""
    return command_line.parse(Args, argv, __doc__, methods.METHODS)


# ==========================================================================================================
# ALGO LOGIC: the GRPO objective (docs/paper.md §1). Pure torch, no model.


def group_advantages(rewards, scale_rewards="group"):
    """§1: A_i = (r_i - mean(group)) / (std(group) + 1e-6), per question; (questions, G) -> (questions, G).

    torch's default (unbiased) std. An all-equal group gives 0, never NaN, when its float32 mean is exact (§1's
    known issue: not always with FAST's thinking reward). `scale_rewards` (§10): "group"
    divides by each group's std (the paper); "batch" by the std of all the given rewards (TRL's "batch"); "none"
    does not divide (Dr. GRPO: the std scaling weights questions that are nearly all right or all wrong more).
    """
    rewards = torch.as_tensor(rewards, dtype=torch.float32)
    centred = rewards - rewards.mean(dim=1, keepdim=True)
    if scale_rewards == "group":
        return centred / (rewards.std(dim=1, keepdim=True) + 1e-6)
    if scale_rewards == "batch":
        return centred / (rewards.std() + 1e-6) if rewards.numel() > 1 else centred
    if scale_rewards == "none":
        return centred
    raise ValueError(f"scale_rewards must be 'group', 'batch' or 'none', got {scale_rewards!r}")


def k3_kl(logp, ref_logp):
    """§1: k3 estimator of KL(policy || reference) per token, exp(d) - d - 1 with d = ref - policy (>= 0)."""
    log_ratio = torch.clamp(ref_logp - logp, -20.0, 20.0)  # exp of a huge gap would overflow to inf
    return torch.exp(log_ratio) - log_ratio - 1.0


def importance_log_ratio(logp, old_logp, response_mask, importance_level="token"):
    """log rho, (N, T): per token log pi - log pi_old (§1); with importance_level "sequence", GSPO's (§10): every
    token of a response gets the mean of its response's token log-ratios, log s_i, so s_i is their geometric mean.
    0 on padding."""
    log_ratio = torch.where(response_mask.bool(), logp - old_logp, 0.0)  # padding may hold -inf - -inf = NaN
    if importance_level == "token":
        return log_ratio
    if importance_level == "sequence":
        lengths = response_mask.sum(1, keepdim=True).clamp(min=1)
        return (log_ratio.sum(1, keepdim=True) / lengths).expand_as(logp)
    raise ValueError(f"importance_level must be 'token' or 'sequence', got {importance_level!r}")


def aggregate_loss(per_token, response_mask, aggregation="seq", max_new_tokens=None):
    """The loss from per-token losses (N, T), zero on padding: "seq" = mean over each response's tokens, then over
    responses (the paper's 1/|o_i|, §1); "token" = mean over all response tokens (the released code, DAPO);
    "dr-grpo" = the sum divided by the constant N x max_new_tokens (Dr. GRPO, §10)."""
    mask = response_mask.to(per_token.dtype)
    if aggregation == "seq":
        return (per_token.sum(1) / mask.sum(1).clamp(min=1)).mean()
    if aggregation == "token":
        return per_token.sum() / mask.sum().clamp(min=1)
    if aggregation == "dr-grpo":
        if not max_new_tokens:
            raise ValueError("aggregation 'dr-grpo' divides by rows x max_new_tokens: give max_new_tokens")
        return per_token.sum() / (len(per_token) * max_new_tokens)
    raise ValueError(f"aggregation must be 'seq', 'token' or 'dr-grpo', got {aggregation!r}")


def grpo_loss(logp, old_logp, ref_logp, advantages, response_mask, kl_coef, eps_low=0.2, eps_high=0.2,
              aggregation="seq", importance_level="token", max_new_tokens=None):
    """Minus the GRPO objective of docs/paper.md §1 (clipped surrogate and k3 KL, with Eq. 5's per-question beta).

    Per token: min(rho * A, clip(rho, 1 - eps_low, 1 + eps_high) * A) - beta * KL_t, rho = exp(logp - old_logp),
    or GSPO's one ratio per response (importance_log_ratio); then averaged by `aggregation` (aggregate_loss).
    Shapes: logp, old_logp, ref_logp, response_mask (N, T); advantages (N,); kl_coef (N,) or a scalar.
    """
    ratio = torch.exp(importance_log_ratio(logp, old_logp, response_mask, importance_level))
    adv = advantages.to(logp.dtype).unsqueeze(1)
    surrogate = torch.minimum(ratio * adv, torch.clamp(ratio, 1.0 - eps_low, 1.0 + eps_high) * adv)
    beta = torch.as_tensor(kl_coef, dtype=logp.dtype, device=logp.device)
    beta = beta.unsqueeze(1) if beta.dim() == 1 else beta
    per_token = -(surrogate - beta * k3_kl(logp, ref_logp))
    per_token = torch.where(response_mask.bool(), per_token, 0.0)  # not `* mask`: padding may hold -inf logps
    return aggregate_loss(per_token, response_mask, aggregation, max_new_tokens)


# ==========================================================================================================
# ALGO LOGIC: one training step, the paper's Algorithm 1


THINKING_WEIGHT = 0.5  # Eq. 4's weight in FAST's total reward r = r_acc + 0.5 r_fmt + 0.5 r_t


def shape_rewards(correct, fmt, lengths, complexity, progress, *, curriculum="none", drop_pass_0_1=False,
                  hard_percentile=80.0, length_reward=True, format_weight=0.5, dynamic_kl=True, kl_coef=0.01,
                  beta_min=0.001, beta_max=0.03, overlong=None, overall=None, trace=None):
    """Algorithm 1's middle: pass rate -> Slow-to-Fast filter -> S_d (Eq. 3) and hard flags -> thinking reward
    (Eq. 4) -> total reward, and the KL coefficients (Eq. 5). Pure numpy.

    correct, fmt, lengths: (questions, G); complexity: (questions,) H_img of Eq. 2; progress: t / T; overlong:
    (questions, G) or None, DAPO's overlong penalty (§10), added to every response's reward; overall: (questions, G)
    or None, a --reward-fn's `overall`, in place of r_acc + w r_fmt.
    The filter comes first; theta (the hard threshold) and L_avg are then computed over the kept groups only.
    Returns pass_rate, keep, hard (questions,); reward (questions, G); kl_coef (questions,). `trace`: None, or a dict
    that gets the kept groups' s_d (Eq. 3) and thinking, r_t of Eq. 4 (None without the length reward).
    """
    num_questions, group_size = correct.shape
    pass_rate = difficulty.pass_rates(correct)  # extrinsic difficulty S_ext = 1 - pass (§2)
    if curriculum == "slow-to-fast":  # §5: Algorithm 1's binary schedule
        keep = difficulty.slow_to_fast_keep(pass_rate, progress)
    elif curriculum == "continuous":  # §5: the paper's appendix I
        keep = difficulty.continuous_keep(pass_rate, progress, np.random.random(num_questions))
    else:
        keep = np.ones(num_questions, dtype=bool)
    if drop_pass_0_1:  # the released code's online rule
        keep &= difficulty.mixed_outcomes(pass_rate)
    hard = np.zeros(num_questions, dtype=bool)
    reward = correct + format_weight * fmt if overall is None else overall.copy()  # r_acc + w r_fmt, or --reward-fn
    if keep.any():
        s_d = difficulty.combined_difficulty(pass_rate[keep], complexity[keep])  # Eq. 3: S_d = S_ext * rank(H_img)
        hard[keep] = difficulty.hard_questions(s_d, hard_percentile)  # S_d >= theta (80th percentile)
        if length_reward:  # Eq. 4: r = r_acc + 0.5 r_fmt + 0.5 r_t
            thinking = rewards.thinking_reward(lengths[keep].ravel(), correct[keep].ravel() > 0,
                                               np.repeat(hard[keep], group_size))
            reward[keep] += THINKING_WEIGHT * thinking.reshape(-1, group_size)
        if trace is not None:  # what the notebook shows is what the step used, not a recomputation
            trace.update(s_d=s_d, thinking=thinking.reshape(-1, group_size) if length_reward else None)
    if overlong is not None:
        reward = reward + overlong
    if dynamic_kl:  # Eq. 5: beta_q = beta_min + (beta_max - beta_min) * pass_q
        kl_coef = difficulty.kl_coefficients(pass_rate, beta_min, beta_max)
    else:
        kl_coef = np.full(num_questions, kl_coef)
    return dict(pass_rate=pass_rate, keep=keep, hard=hard, reward=reward, kl_coef=kl_coef)


def reward_settings(args):
    """The fields of Args that shape_rewards uses."""
    keys = ("curriculum", "drop_pass_0_1", "hard_percentile", "length_reward", "dynamic_kl", "kl_coef", "beta_min",
            "beta_max")
    return dict({key: getattr(args, key) for key in keys}, format_weight=methods.METHODS[args.method]["format_weight"])


def training_step(run, step, args, trace=None):
    """One iteration of Algorithm 1 on this process's share of the step's questions; returns (metrics, samples).

    `run` (machinery/harness.py's Run) holds the models, the optimizer, the data and what is computed once (the
    prompts' instruction, suppressed token ids, the image-complexity cache). Under torchrun, the quantities the paper
    defines over the batch (the filter, theta, L_avg, ranks) are computed on every process from the whole batch
    (machinery/distributed.py). `trace`: None, or a dict the step fills with what it computed along the way (for
    notebooks/one_training_step.ipynb); it changes nothing else.
    """
    group_size = args.group_size
    # 1. A batch of questions; sample G responses to each with the current policy (rows i*G .. i*G+G-1: question i)
    indices = distributed.my_share(loader.batch_indices(len(run.examples), args.batch_size, step, args.seed))
    questions = [run.examples[i] for i in indices]
    encoded, images = vlm.encode_questions(run.processor, questions, run.instruction, run.max_pixels)  # a list each
    group_rows = np.repeat(np.arange(len(questions)), group_size)
    prompts = vlm.take_rows(encoded, group_rows)
    stopping.doing("sampling", len(group_rows), prompts["input_ids"].shape[1] + args.max_new_tokens)
    with run.autocast, fsdp.gathered(run.policy):  # FSDP: every weight gathered for the sampling phase
        rollout = vlm.sample(run.policy, run.processor, prompts, args.max_new_tokens, args.temperature,
                             run.suppress_ids, run.eos_ids)

    # 2. Rule-based rewards of each response: accuracy r_acc and format r_fmt (§6), or the parts of --reward-fn's
    #    function (task_rewards/); its length L (Eq. 4)
    answers, choices = [questions[i]["answer"] for i in group_rows], [questions[i].get("choices") for i in group_rows]
    correct, fmt, parts = methods.score_responses(rollout["texts"], answers, args.method, choices=choices,
                                                  reward_fn=run.reward_fn, rows=np.asarray(indices)[group_rows])
    token_lengths = rollout["response_mask"].sum(1).numpy()
    lengths = token_lengths if args.length_unit == "tokens" else np.array([rewards.char_length(t)
                                                                           for t in rollout["texts"]])
    grid = (len(questions), group_size)
    correct, fmt, lengths = correct.reshape(grid), fmt.reshape(grid), lengths.reshape(grid).astype(float)

    # 3. Intrinsic difficulty: the image complexity H_img of Eq. 2 (computed once per image)
    complexity = image_complexities(run, indices, images)

    # 4. Difficulty and rewards over the whole batch: pass rate, Slow-to-Fast filter, S_d (Eq. 3), hard flags,
    #    thinking reward (Eq. 4), KL coefficients (Eq. 5); and DAPO's overlong penalty if asked for (§10, 0 by default)
    overlong = rewards.overlong_penalty(token_lengths, args.max_new_tokens, args.overlong_buffer,
                                        args.overlong_penalty).reshape(grid)
    correct, fmt, lengths, complexity, overlong = distributed.whole_batch(correct, fmt, lengths, complexity, overlong)
    parts = dict(zip(parts, distributed.whole_batch(*(part.reshape(grid) for part in parts.values()))))
    shaped = shape_rewards(correct, fmt, lengths, complexity, step / args.max_steps, overlong=overlong,
                           overall=parts.get("overall"), **reward_settings(args), trace=trace)

    # 5. GRPO: advantages normalised within each kept group (by its std, the batch's or none: --scale-rewards)
    mine = distributed.my_questions(len(questions))
    kept_here = shaped["keep"][mine]
    kept_rewards = shaped["reward"][shaped["keep"]]  # every kept group's, every process's (the batch's std needs all)
    advantages = group_advantages(kept_rewards, args.scale_rewards) if len(kept_rewards) else torch.zeros(0, group_size)
    advantages = advantages[shaped["keep"][:mine.start].sum() + np.arange(kept_here.sum())].flatten()  # this process's
    kl_coef = torch.as_tensor(np.repeat(shaped["kl_coef"][mine][kept_here], group_size), dtype=torch.float32)

    # 6. Policy update on the kept groups' responses: clipped objective, KL weighted by beta_q (§1, Eq. 5)
    stats = dict(loss=None, kl=None, clip_fraction=None, grad_norm=None, skipped_updates=0, entropy=None)
    rows = np.flatnonzero(np.repeat(kept_here, group_size))  # the responses to the kept questions
    if args.mask_truncated:  # DAPO's overlong filtering (§10): truncated responses leave the loss entirely
        complete = ~rollout["truncated"].numpy()[rows]
        rows, advantages, kl_coef = rows[complete], advantages[complete], kl_coef[complete]
    if distributed.any_process(len(rows)):  # kept anywhere: under torchrun every process takes part in the update
        responses = dict(completion_ids=rollout["completion_ids"][rows], response_mask=rollout["response_mask"][rows],
                         advantages=advantages, kl_coef=kl_coef)
        rows, responses = distributed.rows_for_update(rows, responses, rollout, group_size, equal_rows=args.fsdp)
        with run.autocast:
            stats = policy_update(run.trainer, run.reference, run.optimizer, vlm.take_rows(prompts, rows), responses,
                                  run.suppress_ids, **update_settings(args))
    token_lengths, truncated, groups = distributed.whole_batch(  # for the metrics line only
        token_lengths.reshape(grid), rollout["truncated"].numpy(), [logs.group_of(example) for example in questions])
    metrics = logs.step_metrics(step, shaped, correct, fmt, token_lengths, truncated, stats, groups, parts)
    if trace is not None:  # the rows and advantages of the update; kl_coef per question is shaped's beta_q (Eq. 5)
        trace.update(questions=questions, images=images, texts=rollout["texts"], correct=correct, fmt=fmt,
                     lengths=lengths, complexity=complexity, rows=rows, advantages=advantages, stats=stats, **shaped)
    return metrics, logs.sample_records(step, questions, rollout["texts"], shaped["reward"], group_size)


def image_complexities(run, indices, images):
    """Eq. 2 per question: H_img of its images (several: their mean; none: NaN, which gets the middle rank),
    cached by example index (it does not change during training); a step's new images go through the optional
    classifier as one batch."""
    new = [(index, image_list) for index, image_list in zip(indices, images) if index not in run.complexity_cache]
    for (index, _), h_img in zip(new, vlm.question_complexities(run.classifier, [i for _, i in new])):
        run.complexity_cache[index] = h_img
    return np.array([run.complexity_cache[index] for index in indices])


def update_settings(args):
    """The fields of Args that policy_update uses."""
    keys = ("updates_per_batch", "micro_batch_size", "temperature", "eps_low", "eps_high", "aggregation",
            "importance_level", "max_new_tokens", "max_grad_norm")
    return {key: getattr(args, key) for key in keys}


def policy_update(trainer, reference, optimizer, prompts, responses, suppress_ids, *, updates_per_batch=1,
                  micro_batch_size=8, temperature=1.0, eps_low=0.2, eps_high=0.2, aggregation="seq",
                  importance_level="token", max_new_tokens=None, max_grad_norm=1.0):
    """mu = `updates_per_batch` optimizer steps of the clipped objective (grpo_loss) on the kept responses.

    trainer: the policy as the update calls it (DistributedDataParallel under torchrun); reference: the frozen
    starting policy, or with LoRA the policy itself, read with its adapters off (lora.adapters_off leaves a model
    without adapters as it is). prompts: the responses' encoded prompts; responses: completion_ids, response_mask
    (rows, T), advantages, kl_coef (rows,), and total_rows and total_tokens, the rows and response tokens of the
    whole update (every process's under torchrun). Rows go through the model `micro_batch_size` at a time, each
    micro-batch's loss weighted by its share of the whole (rows for "seq" and "dr-grpo", tokens for "token"): the
    gradient is the whole batch's.
    Returns the mean statistics: loss, kl, clip_fraction, grad_norm, skipped_updates, entropy.
    """
    device = next(trainer.parameters()).device
    micro_batches = split_micro_batches(prompts, responses, micro_batch_size, aggregation, device)

    def logprobs(model, mb, work="the update's forward pass", entropy=False):
        stopping.doing(work, len(mb["rows"]), mb["tokens"])
        return vlm.token_logprobs(model, vlm.take_rows(prompts, mb["rows"]), mb["completion_ids"],
                                  mb["response_mask"], temperature, suppress_ids, entropy)

    with torch.no_grad():
        with lora.adapters_off(reference):  # LoRA: the reference is the base model, the adapters switched off
            ref_logp = [logprobs(reference, mb, "the reference's forward pass") for mb in micro_batches]
        # With mu = 1 the sampling policy is the current one (rho == 1); otherwise freeze it now.
        old_logp = [logprobs(trainer, mb, "the policy's forward pass") for mb in micro_batches] \
            if updates_per_batch > 1 else None

    stats = dict(loss=0.0, kl=0.0, clip_fraction=0.0, grad_norm=0.0, skipped_updates=0, entropy=0.0)
    for _ in range(updates_per_batch):
        optimizer.zero_grad(set_to_none=True)
        sums = dict(loss=0.0, kl=0.0, clipped=0.0, entropy=0.0)  # this update's statistics, over the micro-batches
        for i, mb in enumerate(micro_batches):
            with distributed.syncing(trainer, last=i == len(micro_batches) - 1):  # forward and backward inside
                logp, entropy = logprobs(trainer, mb, entropy=True)
                old = old_logp[i] if old_logp is not None else logp.detach()
                loss = grpo_loss(logp, old, ref_logp[i], mb["advantages"], mb["mask"], mb["kl_coef"], eps_low,
                                 eps_high, aggregation, importance_level, max_new_tokens) * mb["share"]  # of the whole
                stopping.doing("the update's backward pass", len(mb["rows"]), mb["mask"].shape[1])
                loss.backward()
            add_statistics(sums, loss, logp, old, ref_logp[i], entropy, mb["mask"], eps_low, eps_high,
                           importance_level)
        sums = {key: distributed.total(value) for key, value in sums.items()}  # every process's micro-batches
        params = [p for p in trainer.parameters() if p.requires_grad]
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, max_grad_norm))
        finite = math.isfinite(sums["loss"]) and math.isfinite(grad_norm)
        if finite:  # a non-finite loss or gradient would poison the weights: that step is skipped
            stopping.doing("the optimizer step", int(responses["total_rows"]), weights_changed=True)
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        clip_units = responses["total_rows" if importance_level == "sequence" else "total_tokens"]
        record_update(stats, sums, grad_norm, finite, responses["total_tokens"], clip_units, updates_per_batch)
    return stats


def split_micro_batches(prompts, responses, micro_batch_size, aggregation, device):
    """The update's rows, `micro_batch_size` at a time. Each micro-batch: `rows`, its positions in `prompts` and
    `responses`; its completions and response mask cut to its longest response (the mask is a prefix); `mask`, that
    mask on `device` for the loss; its advantages and KL coefficients on `device`; and its `share` of the whole update
    (rows for "seq" and "dr-grpo", tokens for "token") times the number of processes, whose gradients DDP / FSDP
    average: the shares' gradients add up to the one-process gradient of the whole batch."""
    processes = distributed.world_size()
    micro_batches = []
    for start in range(0, len(responses["advantages"]), micro_batch_size):
        rows = list(range(start, min(start + micro_batch_size, len(responses["advantages"]))))
        width = max(1, int(responses["response_mask"][rows].sum(1).max()))  # no row needs columns past its longest
        response_mask = responses["response_mask"][rows][:, :width]
        mask = response_mask.to(device)
        share = (len(rows) / responses["total_rows"] if aggregation in ("seq", "dr-grpo")
                 else mask.sum() / max(responses["total_tokens"], 1.0))
        micro_batches.append(dict(rows=rows, completion_ids=responses["completion_ids"][rows][:, :width],
                                  response_mask=response_mask, mask=mask, share=processes * share,
                                  advantages=responses["advantages"][rows].to(device),
                                  kl_coef=responses["kl_coef"][rows].to(device),
                                  tokens=prompts["input_ids"].shape[1] + width))
    return micro_batches


def add_statistics(sums, weighted_loss, logp, old_logp, ref_logp, entropy, mask, eps_low, eps_high,
                   importance_level="token"):
    """Adds a micro-batch's share of the loss, and its summed k3 KL, clipped tokens (GSPO: clipped responses) and
    policy entropy over the response tokens to `sums` (logging only)."""
    with torch.no_grad():
        sums["entropy"] += float(torch.where(mask, entropy, 0.0).sum())
        sums["loss"] += float(weighted_loss) / distributed.world_size()
        sums["kl"] += float(torch.where(mask, k3_kl(logp, ref_logp), 0.0).sum())
        ratio = torch.exp(importance_log_ratio(logp, old_logp, mask, importance_level))
        if importance_level == "sequence":  # one ratio per response; a padded row counts as none
            ratio, mask = ratio[:, 0], mask.any(1)
        sums["clipped"] += float((((ratio < 1 - eps_low) | (ratio > 1 + eps_high)) & mask).sum())


def record_update(stats, sums, grad_norm, finite, total_tokens, clip_units, updates_per_batch):
    """Adds one optimizer step's statistics to the update's means (KL and entropy per response token, the clip
    fraction per `clip_units`: tokens, or GSPO's responses); a skipped step (not `finite`) is counted in
    skipped_updates."""
    total_tokens = max(total_tokens, 1.0)
    stats["skipped_updates"] += 0 if finite else 1
    stats["loss"] += sums["loss"] / updates_per_batch
    stats["grad_norm"] += grad_norm / updates_per_batch
    stats["kl"] += sums["kl"] / total_tokens / updates_per_batch
    stats["clip_fraction"] += sums["clipped"] / max(clip_units, 1.0) / updates_per_batch
    stats["entropy"] += sums["entropy"] / total_tokens / updates_per_batch


# ==========================================================================================================
# HARNESS: the run around the step (set-up, resume, logging, saving, signals, out of memory: machinery/)


def train(args):
    """Algorithm 1's step for steps start..max_steps, with the run around it; returns the trained policy."""
    settings = command_line.describe_settings(args, methods.METHODS)  # the run's first lines
    run = harness.start(args, settings, evaluation.load_validation)  # data, models, optimizer; or from a checkpoint
    bar = tqdm(range(run.start_step, args.max_steps), initial=run.start_step, total=args.max_steps, desc="FAST-GRPO",
               **({} if run.main_process else dict(disable=True)))  # process 0: TQDM_DISABLE=1 may switch it off
    with run.tracker:  # TensorBoard / wandb / trackio (machinery/tracking.py): closed however the loop ends
        for step in bar:
            started, step_rng = time.time(), checkpoints.rng_states()  # the RNG a redo of this step starts from
            stopping.new_step()
            learning_rate = harness.set_learning_rate(run, step, args)  # --lr-scheduler: a function of the step
            try:
                metrics, samples = training_step(run, step, args)
                metrics["lr"] = learning_rate
                metrics["seconds"] = round(time.time() - started, 3)
                if args.eval_every and (step + 1) % args.eval_every == 0:  # validation on the fixed held-out subset
                    metrics.update(evaluation.validate(run, args))
            except torch.OutOfMemoryError:  # what it holds (the step's activations) is freed when this block ends
                metrics = None
            if metrics is None:
                harness.stop_out_of_memory(run, step, step_rng, args)  # saves the last completed step, then one line
            harness.log_step(run, metrics, samples, bar, args)
            if harness.save_or_stop(run, step, metrics, args):  # Ctrl-C / SIGTERM: saved, end here
                return run.policy
    if args.eval_every and run.main_process:
        tqdm.write(f"wrote {evaluation.plot_validation(*harness.log_paths(args)[:1], args.output_dir)}")
    if args.data == "synthetic" and args.compare_at_end and args.fsdp:  # one process cannot run a sharded model
        if run.main_process:
            tqdm.write(f"--fsdp: no before/after table; evaluate the saved model with python eval.py --model "
                       f"{os.path.join(args.output_dir, f'checkpoint-{args.max_steps}')} --data synthetic")
    elif args.data == "synthetic" and args.compare_at_end and run.main_process:  # the demo's before/after table
        evaluation.before_and_after(run.reference, run.policy, run.processor, args.model, args.method,
                                    args.max_new_tokens, args.output_dir)
    return run.policy


def main(argv=None):
    args = parse_args(argv)
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        train(args)
    except (loader.DataError, loading.ModelError, lora.LoraError) as error:  # bad input: one line, no traceback
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except (stopping.TrainingError, checkpoints.CheckpointError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    finally:
        for signum, handler in handlers.items():  # train() catches them; give them back
            signal.signal(signum, handler)
        distributed.cleanup()


if __name__ == "__main__":
    main()
