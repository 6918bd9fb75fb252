"""FAST-GRPO: Fast-Slow Thinking GRPO for vision-language models, in one plain PyTorch loop.

Xiao & Gan, "Fast-Slow Thinking GRPO for Large Vision-Language Model Reasoning" (NeurIPS 2025).
The specification of every formula and constant is ../shared/paper-notes.md ("§n" below points there).

One training step (paper Algorithm 1):
    sample G responses per question -> score them -> difficulty (pass rate x image complexity)
    -> Slow-to-Fast filtering -> thinking reward + group advantages -> mu clipped updates with KL -> log

    python fast_grpo.py --model Qwen/Qwen2-VL-2B-Instruct --data train.jsonl
"""

import argparse
import dataclasses
import math
import os
import random
import signal
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

import checkpoints
import data
import difficulty
import distributed
import logs
import methods
import rewards
import stopping
import vlm

# ----------------------------------------------------------------------------------------------------------
# Arguments


DEMO_DEFAULTS = dict(lr=7e-5, batch_size=8, group_size=8, max_steps=80, max_new_tokens=256, micro_batch_size=64,
                     curriculum="none")
PAPER_DEFAULTS = dict(lr=1e-6, batch_size=8, group_size=8, max_steps=500, max_new_tokens=1024, micro_batch_size=8,
                      max_pixels=1280 * 28 * 28)


def arg(default, help, **kwargs):
    return field(default=default, metadata={"help": help, **kwargs})


DATA_OPTIONS = data.OPTIONS  # help of --image-dir etc.; inside Args, `data` is the --data field


@dataclass
class Args:
    # what to train, on what
    method: str = arg("fast", "preset: fast | grpo | thinking | no-thinking | think-after-answer",
                      choices=["fast", "grpo", "thinking", "no-thinking", "think-after-answer"])
    model: str = arg(None, "hub id (e.g. Qwen/Qwen2-VL-2B-Instruct) or local folder of a Qwen2-VL/Qwen2.5-VL "
                     "model (default: the shipped demo_model/)")
    data: str = arg("synthetic", "a .jsonl/.json/.parquet file, a folder of them (DIR@split), a hub dataset "
                    "owner/name@split (split default: train), or 'synthetic' for the demo task; the schemas of "
                    "Geometry3K, ViRL39K, ShareGPT, LLaVA and TRL are read unchanged (docs/data.md)")
    image_dir: str = arg(None, DATA_OPTIONS["image_dir"])
    question_key: str = arg(None, DATA_OPTIONS["question_key"])
    answer_key: str = arg(None, DATA_OPTIONS["answer_key"])
    image_key: str = arg(None, DATA_OPTIONS["image_key"])
    max_images: int = arg(None, DATA_OPTIONS["max_images"])
    output_dir: str = arg("runs/fast-grpo", "where metrics.jsonl, samples.jsonl and checkpoint-<step>/ go")
    # sampling
    batch_size: int = arg(None, "questions per step (default: 8)")
    group_size: int = arg(None, "G: responses sampled per question (default: 8 as in the paper)")
    temperature: float = arg(1.0, "sampling temperature; log-probs use logits / temperature too (paper: 1.0)")
    max_new_tokens: int = arg(None, "longest response; longer ones are cut and counted as truncated "
                              f"(default: demo {DEMO_DEFAULTS['max_new_tokens']}, otherwise 1024)")
    max_pixels: int = arg(None, "resize images to at most this many pixels (default: demo the processor's, "
                          "otherwise 1003520 = 1280 image tokens)")
    skip_bad_examples: bool = arg(False, "skip unusable data lines and report them, instead of stopping", boolean=True)
    complexity_model: str = arg(None, "image classifier folder or hub id (the paper: a ViT, for example "
                                "google/vit-base-patch16-224) whose prediction entropy Eq. 2 adds to the GLCM entropy "
                                "(default: GLCM entropy alone)")
    # optimisation
    max_steps: int = arg(None, f"training steps, one batch of questions each (default: demo {DEMO_DEFAULTS['max_steps']}, "
                         "otherwise 500)")
    updates_per_batch: int = arg(1, "mu: optimizer steps on each sampled batch (1 = on-policy, ratio == 1)")
    lr: float = arg(None, f"AdamW learning rate (default: demo {DEMO_DEFAULTS['lr']:g}, otherwise 1e-6 as in the "
                     "paper)")
    weight_decay: float = arg(0.01, "AdamW weight decay (EasyR1's default)")
    max_grad_norm: float = arg(1.0, "clip the gradient norm to this")
    micro_batch_size: int = arg(None, "rows per forward/backward pass: gradient accumulation, saves memory "
                                "(default: demo 64, otherwise 8)")
    eps_low: float = arg(0.2, "clip range below 1 of the probability ratio")
    eps_high: float = arg(0.2, "clip range above 1 of the probability ratio (DAPO uses 0.28)")
    # FAST components; None = the preset's value
    length_reward: bool = arg(None, "add the adaptive thinking reward, Eq. 4", boolean=True)
    dynamic_kl: bool = arg(None, "difficulty-aware KL coefficient, Eq. 5 (off: constant --kl-coef)", boolean=True)
    curriculum: str = arg(None, "which groups the update uses (§5): slow-to-fast = the paper's binary schedule (first "
                          "half drops pass >= 0.75, second half pass <= 0.25), continuous = appendix I (a group with "
                          "pass >= 0.75 is kept with probability 0.4 t/T), none = every group (default: the method's; the "
                          f"demo model's is {DEMO_DEFAULTS['curriculum']}, see README)",
                          choices=["slow-to-fast", "continuous", "none"])
    slow_to_fast: bool = arg(None, "old spelling: --slow-to-fast = --curriculum slow-to-fast, --no-slow-to-fast = "
                             "--curriculum none", boolean=True)
    drop_pass_0_1: bool = arg(False, "also drop groups that every or no rollout solves, in every phase (the released "
                              "code's online filter; the paper does this only offline)", boolean=True)
    kl_coef: float = arg(None, "constant KL coefficient when --no-dynamic-kl")
    beta_min: float = arg(0.001, "Eq. 5: KL coefficient of a question no rollout solves")
    beta_max: float = arg(0.03, "Eq. 5: KL coefficient of a question every rollout solves")
    hard_percentile: float = arg(80.0, "questions with S_d at or above this percentile of the batch are hard")
    aggregation: str = arg("seq", "loss average: seq = per response then mean (paper), token = over all tokens "
                           "(released code, DAPO)", choices=["seq", "token"])
    length_unit: str = arg("tokens", "thinking-reward length: tokens (paper) or chars (released code: characters after "
                           "removing whitespace around <, > and /)",
                           choices=["tokens", "chars"])
    # machinery
    seed: int = arg(0, "seed of data order, sampling and initialisation")
    device: str = arg("auto", "cpu, cuda, cuda:1, ... (auto: cuda if available)")
    dtype: str = arg("auto", "compute dtype, float32 | bfloat16 | float16 (auto: float32 on CPU, bfloat16 on "
                     "CUDA); the trained weights stay float32 (mixed precision)")
    gradient_checkpointing: bool = arg(False, "recompute activations in backward to save memory", boolean=True)
    freeze_vision: bool = arg(False, "train only the language model, not the vision tower", boolean=True)
    save_every: int = arg(50, "write checkpoint-<step>/ every this many steps (and at the end)")
    resume: str = arg(None, "continue from this checkpoint folder, or 'auto' for the newest in --output-dir")
    log_every: int = arg(10, "print a compact metrics line every this many steps (0: never); metrics.jsonl has "
                         "every step")
    compare_at_end: bool = arg(True, "with --data synthetic: evaluate the held-out set before and after training",
                               boolean=True)


def parse_args(argv=None):
    """Command line -> Args. A switch the user did not set comes from the model's defaults (DEMO_DEFAULTS for the
    shipped demo model, its curriculum included; PAPER_DEFAULTS for any other), then from the method preset."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in dataclasses.fields(Args):
        flag, meta = "--" + f.name.replace("_", "-"), f.metadata
        if meta.get("boolean"):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default, help=meta["help"])
        else:
            parser.add_argument(flag, type=f.type, default=f.default, choices=meta.get("choices"), help=meta["help"])
    args = Args(**vars(parser.parse_args(argv)))
    if args.slow_to_fast is not None:
        old_spelling = "slow-to-fast" if args.slow_to_fast else "none"
        if args.curriculum not in (None, old_spelling):
            parser.error(f"--curriculum {args.curriculum} contradicts --{'' if args.slow_to_fast else 'no-'}slow-to-fast")
        args.curriculum = old_spelling
    args.model = args.model or methods.DEMO_MODEL
    is_demo = os.path.abspath(args.model) == methods.DEMO_MODEL
    # user flags first, then the model's defaults (the demo's curriculum included), then the method preset
    for key, value in [*(DEMO_DEFAULTS if is_demo else PAPER_DEFAULTS).items(), *methods.METHODS[args.method].items()]:
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    check_args(args, parser)
    return args


def looks_like_hub_id(name):
    return name.count("/") == 1 and not name.startswith((".", "/", "~")) and not os.path.exists(name)


def check_args(args, parser):
    problems = [
        (not os.path.isdir(args.model) and not looks_like_hub_id(args.model), f"--model: no such folder: {args.model}"),
        (args.group_size < 2, "--group-size must be at least 2 (advantages compare responses within a group)"),
        (args.batch_size < 1, "--batch-size must be at least 1"),
        (args.batch_size % int(os.environ.get("WORLD_SIZE", "1")), "--batch-size must be a multiple of the number "
         "of torchrun processes (each samples an equal share of the questions)"),
        (not 0 <= args.hard_percentile <= 100, "--hard-percentile must be within 0..100"),
        (args.beta_min > args.beta_max, "--beta-min must not exceed --beta-max"),
        (args.updates_per_batch < 1, "--updates-per-batch must be at least 1"),
        (args.micro_batch_size < 1, "--micro-batch-size must be at least 1"),
        (args.save_every < 1, "--save-every must be at least 1"),
        (args.temperature < 0, "--temperature must not be negative"),
        (args.max_steps < 1, "--max-steps must be at least 1"),
    ]
    for failed, message in problems:
        if failed:
            parser.error(message)  # one line on stderr, exit code 2


# ----------------------------------------------------------------------------------------------------------
# GRPO math (§1): pure torch, no model


def group_advantages(rewards):
    """§1: A_i = (r_i - mean(group)) / (std(group) + 1e-6), per question; (questions, G) -> (questions, G).

    torch's default (unbiased) std. An all-equal group gives exactly 0, never NaN.
    """
    rewards = torch.as_tensor(rewards, dtype=torch.float32)
    centred = rewards - rewards.mean(dim=1, keepdim=True)
    return centred / (rewards.std(dim=1, keepdim=True) + 1e-6)


def k3_kl(logp, ref_logp):
    """§1: k3 estimator of KL(policy || reference) per token, exp(d) - d - 1 with d = ref - policy (>= 0)."""
    log_ratio = torch.clamp(ref_logp - logp, -20.0, 20.0)  # exp of a huge gap would overflow to inf
    return torch.exp(log_ratio) - log_ratio - 1.0


def grpo_loss(logp, old_logp, ref_logp, advantages, response_mask, kl_coef, eps_low=0.2, eps_high=0.2,
              aggregation="seq"):
    """Minus the GRPO objective of paper-notes §1 (clipped surrogate and k3 KL, with Eq. 5's per-question beta).

    Per token: min(rho * A, clip(rho, 1 - eps_low, 1 + eps_high) * A) - beta * KL_t, rho = exp(logp - old_logp).
    Shapes: logp, old_logp, ref_logp, response_mask (N, T); advantages (N,); kl_coef (N,) or a scalar.
    aggregation "seq": mean over each response's tokens, then over responses (the paper's 1/|o_i|);
    "token": mean over all response tokens of the batch (the released code, DAPO).
    """
    mask = response_mask.to(logp.dtype)
    ratio = torch.exp(logp - old_logp)
    adv = advantages.to(logp.dtype).unsqueeze(1)
    surrogate = torch.minimum(ratio * adv, torch.clamp(ratio, 1.0 - eps_low, 1.0 + eps_high) * adv)
    beta = torch.as_tensor(kl_coef, dtype=logp.dtype, device=logp.device)
    beta = beta.unsqueeze(1) if beta.dim() == 1 else beta
    per_token = -(surrogate - beta * k3_kl(logp, ref_logp))
    per_token = torch.where(response_mask.bool(), per_token, 0.0)  # not `* mask`: padding may hold -inf logps
    if aggregation == "seq":
        return (per_token.sum(1) / mask.sum(1).clamp(min=1)).mean()
    if aggregation == "token":
        return per_token.sum() / mask.sum().clamp(min=1)
    raise ValueError(f"aggregation must be 'seq' or 'token', got {aggregation!r}")


# ----------------------------------------------------------------------------------------------------------
# Scoring, difficulty and filtering for one batch (Algorithm 1): pure numpy, no model


def shape_rewards(correct, fmt, lengths, complexity, progress, args):
    """Difficulty -> Slow-to-Fast filter -> thinking reward -> total reward and KL coefficients.

    correct, fmt, lengths: (questions, G); complexity: (questions,); progress: fraction of training done.
    Filtering comes first; the hard threshold and L_avg are then computed over the kept groups only.
    Returns keep, hard (questions,) bool; reward (questions, G); kl_coef (questions,).
    """
    num_questions, group_size = correct.shape
    pass_rate = difficulty.pass_rates(correct)
    if args.curriculum == "slow-to-fast":  # §5
        keep = difficulty.slow_to_fast_keep(pass_rate, progress)
    elif args.curriculum == "continuous":  # §5, the paper's appendix I
        keep = difficulty.continuous_keep(pass_rate, progress, np.random.random(num_questions))
    else:
        keep = np.ones(num_questions, dtype=bool)
    if args.drop_pass_0_1:  # the released code's online rule
        keep &= difficulty.mixed_outcomes(pass_rate)
    hard = np.zeros(num_questions, dtype=bool)
    reward = correct + methods.METHODS[args.method]["format_weight"] * fmt
    if keep.any():
        s_d = difficulty.combined_difficulty(pass_rate[keep], complexity[keep])  # S_d = S_ext * rank(H_img)
        hard[keep] = difficulty.hard_questions(s_d, args.hard_percentile)
        if args.length_reward:  # Eq. 4, r = r_acc + 0.5 r_fmt + 0.5 r_t
            thinking = rewards.thinking_reward(lengths[keep].ravel(), correct[keep].ravel() > 0,
                                               np.repeat(hard[keep], group_size))
            reward[keep] += 0.5 * thinking.reshape(-1, group_size)
    if args.dynamic_kl:  # Eq. 5
        kl_coef = difficulty.kl_coefficients(pass_rate, args.beta_min, args.beta_max)
    else:
        kl_coef = np.full(num_questions, args.kl_coef)
    return dict(pass_rate=pass_rate, keep=keep, hard=hard, reward=reward, kl_coef=kl_coef)


# ----------------------------------------------------------------------------------------------------------
# The policy update: mu optimizer steps on the clipped objective


def policy_update(policy, reference, optimizer, inputs, rollout, advantages, kl_coef, args, suppress_ids,
                  batch_totals=None):
    """`args.updates_per_batch` optimizer steps on the rows of `inputs`/`rollout`; returns mean statistics.

    Rows go through the model `args.micro_batch_size` at a time; each micro-batch's loss is weighted by its
    share of the batch (rows for "seq", tokens for "token"), so the gradient is that of the whole batch.
    Under torchrun the batch is every process's kept rows (`batch_totals`: their number and their response
    tokens), `policy` is wrapped in DistributedDataParallel, and the statistics are summed over processes.
    """
    num_rows, total_tokens = batch_totals or (len(advantages), float(rollout["response_mask"].sum()))
    total_tokens = max(total_tokens, 1.0)
    processes = distributed.world_size()  # DDP averages the processes' gradients: each share is of the whole batch
    device = next(policy.parameters()).device
    size = args.micro_batch_size
    chunks = [list(range(i, min(i + size, len(advantages)))) for i in range(0, len(advantages), size)]

    def micro_batch(chunk):
        mask = rollout["response_mask"][chunk]
        width = max(1, int(mask.sum(1).max()))  # the mask is a prefix: no row needs columns past its longest
        return vlm.take_rows(inputs, chunk), rollout["completion_ids"][chunk][:, :width], mask[:, :width]

    def logprobs(model, chunk, work="the update's forward pass"):
        rows, completion_ids, mask = micro_batch(chunk)
        tokens = rows["input_ids"].shape[1] + completion_ids.shape[1]
        with stopping.naming_out_of_memory(work, len(chunk), tokens, weights_changed=update > 0):
            return vlm.token_logprobs(model, rows, completion_ids, mask, args.temperature, suppress_ids)

    update = 0  # which of the mu updates runs: an out-of-memory error in a later one finds the weights changed
    with torch.no_grad():
        ref_logp = [logprobs(reference, chunk, "the reference's forward pass") for chunk in chunks]
        # With mu = 1 the sampling policy is the current one (rho == 1); otherwise freeze it now.
        old_logp = [logprobs(policy, chunk, "the policy's forward pass") for chunk in chunks] \
            if args.updates_per_batch > 1 else None

    stats = dict(loss=0.0, kl=0.0, clip_fraction=0.0, grad_norm=0.0, skipped_updates=0)
    for update in range(args.updates_per_batch):
        optimizer.zero_grad(set_to_none=True)
        loss_sum, kl_sum, clipped = 0.0, 0.0, 0.0
        for i, chunk in enumerate(chunks):
            with distributed.syncing(policy, last=i == len(chunks) - 1):  # forward and backward in the context
                _, _, mask = micro_batch(chunk)
                mask = mask.to(device)
                logp = logprobs(policy, chunk)
                old = old_logp[i] if old_logp is not None else logp.detach()
                adv, beta = advantages[chunk].to(device), kl_coef[chunk].to(device)
                loss = grpo_loss(logp, old, ref_logp[i], adv, mask, beta, args.eps_low, args.eps_high,
                                 args.aggregation)
                share = processes * (len(chunk) / num_rows if args.aggregation == "seq" else mask.sum() / total_tokens)
                with stopping.naming_out_of_memory("the update's backward pass", len(chunk), mask.shape[1],
                                                   update > 0):
                    (loss * share).backward()
            with torch.no_grad():
                loss_sum += float(loss * share) / processes
                kl_sum += float(torch.where(mask, k3_kl(logp, ref_logp[i]), 0.0).sum())
                ratio = torch.exp(logp - old)
                clipped += float((((ratio < 1 - args.eps_low) | (ratio > 1 + args.eps_high)) & mask).sum())
        loss_sum, kl_sum, clipped = (distributed.total(x) for x in (loss_sum, kl_sum, clipped))
        params = [p for p in policy.parameters() if p.requires_grad]
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, args.max_grad_norm))
        if math.isfinite(loss_sum) and math.isfinite(grad_norm):
            with stopping.naming_out_of_memory("the optimizer step", int(num_rows), 0, weights_changed=True):
                optimizer.step()
        else:  # a non-finite loss or gradient would poison the weights: skip this step
            stats["skipped_updates"] += 1
        optimizer.zero_grad(set_to_none=True)
        stats["loss"] += loss_sum / args.updates_per_batch
        stats["grad_norm"] += grad_norm / args.updates_per_batch
        stats["kl"] += kl_sum / total_tokens / args.updates_per_batch
        stats["clip_fraction"] += clipped / total_tokens / args.updates_per_batch
    return stats


def update_on_kept_groups(policy, reference, optimizer, inputs, rollout, reward, kl_coef, keep, args, suppress_ids):
    """Advantages (§1) of this process's kept groups, then policy_update on their rows.

    reward: (questions, G); kl_coef, keep: (questions,). Under torchrun the batch is every process's kept groups:
    shares are of their total rows and tokens, and a process that kept none still runs one backward pass (DDP
    needs it) on a group with an empty response mask, which teaches nothing.
    """
    kept_rows = np.flatnonzero(np.repeat(keep, args.group_size))
    kept_rollout = {k: rollout[k][kept_rows] for k in ("completion_ids", "response_mask")}
    batch_totals = (distributed.total(len(kept_rows)), distributed.total(kept_rollout["response_mask"].sum()))
    if keep.any():
        advantages = group_advantages(reward[keep]).flatten()
        kl_coef = torch.as_tensor(np.repeat(kl_coef[keep], args.group_size), dtype=torch.float32)
    else:
        kept_rows = np.arange(args.group_size)
        kept_rollout = dict(completion_ids=rollout["completion_ids"][kept_rows],
                            response_mask=torch.zeros_like(rollout["response_mask"][kept_rows]))
        advantages, kl_coef = torch.zeros(args.group_size), torch.zeros(args.group_size)
    return policy_update(policy, reference, optimizer, vlm.take_rows(inputs, kept_rows), kept_rollout, advantages,
                         kl_coef, args, suppress_ids, batch_totals)


# ----------------------------------------------------------------------------------------------------------
# The training loop


def train(args):
    device = distributed.setup(vlm.pick_device(args.device))  # under torchrun: this process's GPU (or CPU)
    main_process = distributed.rank() == 0  # the one that prints, logs and saves
    random.seed(args.seed)
    np.random.seed(args.seed)  # the same on every process: the curriculum's draws are shared
    torch.manual_seed(args.seed + distributed.rank())  # different samples on each process
    dtype = vlm.pick_dtype(args.dtype, device)
    preset = methods.METHODS[args.method]
    os.makedirs(args.output_dir, exist_ok=True)

    # --- model and data
    examples = data.load_examples(args.data, skip_bad=args.skip_bad_examples, **data.options(args))
    vlm.check_model(args.model)  # a model that cannot work: one line, before anything is loaded
    checkpoint = checkpoints.find_checkpoint(args.resume, args.output_dir) if args.resume else None
    state = torch.load(os.path.join(checkpoint, "trainer_state.pt"), weights_only=False) if checkpoint else None
    if state:
        checkpoints.check_resume_args(state["args"], args, checkpoint)
    processor = vlm.load_processor(args.model, args.max_pixels)
    # Mixed precision: the policy keeps float32 weights (a 1e-6 Adam step is below bf16's resolution and would
    # round away) and computes in `dtype` under autocast; the frozen reference can live in `dtype`.
    policy = vlm.load_model(checkpoint or args.model, torch.float32, device)
    reference = vlm.load_model(args.model, dtype, device).eval().requires_grad_(False)  # the starting policy
    autocast = torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)
    if args.freeze_vision:
        policy.model.visual.requires_grad_(False)
    if args.gradient_checkpointing:
        policy.gradient_checkpointing_enable()
    policy.train()
    trainable = [p for p in policy.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=args.lr, weight_decay=args.weight_decay)
    suppress_ids = vlm.vision_token_ids(policy, processor)
    eos_ids = vlm.eos_token_ids(policy, processor)
    instruction = methods.PROMPTS[preset["prompt"]]
    complexity_cache = {}  # example index -> H_img; it does not change during training
    classifier = vlm.load_image_classifier(args.complexity_model, device) if args.complexity_model else None
    max_pixels = vlm.max_image_pixels(processor)  # a larger image is shrunk as it is decoded
    if main_process:
        print(f"{len(examples)} questions from {args.data}; method {args.method}; {device} {dtype}"
              + (f" x {distributed.world_size()} processes" if distributed.world_size() > 1 else "") + "; "
              "image complexity = " + (f"GLCM entropy + entropy of {args.complexity_model}'s prediction (Eq. 2)"
                                       if classifier else "GLCM entropy only (no --complexity-model)"))

    start_step = 0
    metrics_path = os.path.join(args.output_dir, "metrics.jsonl")
    samples_path = os.path.join(args.output_dir, "samples.jsonl")
    if checkpoint:
        optimizer.load_state_dict(state["optimizer"])
        rng = state["rng"] if isinstance(state["rng"], list) else [state["rng"]]  # one state per process
        if len(rng) != distributed.world_size():  # each process must continue its own random stream
            raise data.DataError(checkpoint, "resumed with a different number of processes",
                                 f"{len(rng)} when it was saved, {distributed.world_size()} now")
        checkpoints.set_rng_states(rng[distributed.rank()])
        start_step = state["step"]
        if main_process:
            logs.keep_steps_until(metrics_path, start_step)
            logs.keep_steps_until(samples_path, start_step)
            print(f"resumed from {checkpoint} at step {start_step}")
    elif main_process:
        for path in (metrics_path, samples_path):
            open(path, "w").close()
    trainer = distributed.wrap(policy)  # DistributedDataParallel for the update under torchrun, else the policy

    stop_signal, bad_streak, out_of_memory = stopping.catch_stop_signals(), 0, None
    bar = tqdm(range(start_step, args.max_steps), initial=start_step, total=args.max_steps, desc="FAST-GRPO",
               disable=not main_process)
    try:
        for step in bar:
            started, step_rng = time.time(), checkpoints.rng_states()  # the RNG a redo of this step starts from
            # --- sample G responses per question
            indices = distributed.my_share(data.batch_indices(len(examples), args.batch_size, step, args.seed))
            batch = [examples[i] for i in indices]
            encoded, images = vlm.encode_questions(processor, batch, instruction, max_pixels)  # images: a list each
            group_rows = np.repeat(np.arange(len(batch)), args.group_size)  # question i -> rows i*G .. i*G+G-1
            inputs = vlm.take_rows(encoded, group_rows)
            width = inputs["input_ids"].shape[1] + args.max_new_tokens
            with autocast, stopping.naming_out_of_memory("sampling", len(group_rows), width):
                rollout = vlm.sample(policy, processor, inputs, args.max_new_tokens, args.temperature, suppress_ids,
                                     eos_ids)

            # --- score
            answers = [batch[i]["answer"] for i in group_rows]
            correct, fmt = methods.score_responses(rollout["texts"], answers, args.method)
            token_lengths = rollout["response_mask"].sum(1).numpy()
            lengths = token_lengths if args.length_unit == "tokens" else np.array([rewards.char_length(t)
                                                                                    for t in rollout["texts"]])
            grid = (len(batch), args.group_size)
            correct, fmt, lengths = correct.reshape(grid), fmt.reshape(grid), lengths.reshape(grid).astype(float)

            # --- difficulty, filter, thinking reward, KL coefficients
            new = [(index, image_list) for index, image_list in zip(indices, images) if index not in complexity_cache]
            for (index, _), h_img in zip(new, vlm.question_complexities(classifier, [i for _, i in new])):
                complexity_cache[index] = h_img  # Eq. 2; several images: their mean; none: NaN, the middle rank
            complexity = np.array([complexity_cache[index] for index in indices])
            # under torchrun: the whole batch's groups, on every process (one process: these arrays as they are)
            mine = slice(distributed.rank() * len(batch), (distributed.rank() + 1) * len(batch))
            correct, fmt, lengths, complexity, token_lengths, truncated, levels = (distributed.gather(x) for x in (
                correct, fmt, lengths, complexity, token_lengths.reshape(grid), rollout["truncated"].numpy(),
                [example.get("level") for example in batch]))
            shaped = shape_rewards(correct, fmt, lengths, complexity, step / args.max_steps, args)
            keep = shaped["keep"][mine]

            # --- advantages and update, on the kept groups only
            stats = dict(loss=None, kl=None, clip_fraction=None, grad_norm=None, skipped_updates=0)
            if shaped["keep"].any():  # anywhere: under torchrun every process takes part in the update
                with autocast:
                    stats = update_on_kept_groups(trainer, reference, optimizer, inputs, rollout,
                                                  shaped["reward"][mine], shaped["kl_coef"][mine], keep, args,
                                                  suppress_ids)

            # --- log, save, and stop if asked to or if the numbers went bad
            metrics = logs.step_metrics(step, shaped, correct, fmt, token_lengths, truncated, stats, started, levels)
            if main_process:
                logs.write_logs(metrics_path, samples_path, metrics, batch, rollout, shaped, args.group_size)
                bar.set_postfix_str(logs.live_view(metrics))
                if args.log_every and (step + 1) % args.log_every == 0:
                    tqdm.write(logs.compact_line(metrics))
            if shaped["keep"].any():  # a step with nothing to update neither breaks nor extends a run of bad updates
                bad_streak = bad_streak + 1 if stats["skipped_updates"] == args.updates_per_batch else 0
            stop = distributed.any_process(stop_signal)  # read once: a later signal must not find `path` unset
            if (step + 1) % args.save_every == 0 or step + 1 == args.max_steps or stop or bad_streak >= 3:
                rng = distributed.gather([checkpoints.rng_states()])  # every process's, for an exact resume
                path = os.path.join(args.output_dir, f"checkpoint-{step + 1}")
                if main_process:
                    checkpoints.save_checkpoint(args.output_dir, step + 1, policy, processor, optimizer, args,
                                                rng=rng if len(rng) > 1 else rng[0])
                distributed.barrier()
            if bad_streak >= 3:
                raise stopping.TrainingError(f"3 steps in a row had a non-finite loss or gradient (last: step "
                                             f"{step + 1}); stopped. The last good weights are in {path}")
            if stop:
                tqdm.write(f"{(stop_signal or ['a signal'])[0]}: stopped after step {step + 1}; resume with "
                           f"--resume {path}")
                return policy
    except stopping.OutOfMemory as error:  # what the error holds (activations) is freed when this block ends
        out_of_memory = (str(error), error.weights_changed)
    if out_of_memory:
        loaded = checkpoint if step == start_step else None  # resumed, and no step completed since
        stopping.stop_out_of_memory(out_of_memory, step, loaded, step_rng, policy, processor, optimizer, args)
    if args.data == "synthetic" and args.compare_at_end and main_process:
        import eval as evaluation  # eval.py imports this module: import it late

        evaluation.before_and_after(reference, policy, processor, args.model, args.method, args.max_new_tokens,
                                    args.output_dir)
    return policy


def main(argv=None):
    args = parse_args(argv)
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        train(args)
    except (data.DataError, vlm.ModelError) as error:  # bad input: one line, no traceback
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
