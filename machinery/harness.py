"""The run around the algorithm: everything fast_grpo.train does besides Algorithm 1's step.

Set up (device, seeds, data, policy, frozen reference, optimizer, the run's record config.yaml, the trackers of
--report-to) or resume from a checkpoint; before each step, set its learning rate (--lr-scheduler); after it, log
(metrics.jsonl, samples.jsonl, the trackers), save when due, and stop cleanly on Ctrl-C / SIGTERM, on three
non-finite updates in a row, or on running out of memory (after saving the last completed step). Under torchrun
(machinery/distributed.py) process 0 prints, logs and saves. None of this changes what a step computes: a run
resumed from a checkpoint continues exactly.
"""

import contextlib
import dataclasses
import math
import os
import random
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from data_loading import loader
from machinery import checkpoints, command_line, distributed, fsdp, loading, logs, lora, stopping, tracking
from model_families import families
import methods
from task_rewards import reward_files
import vlm


@dataclass
class Run:
    """What Algorithm 1's step works with, built once by `start`."""
    examples: list  # the training questions, checked up front (data_loading/loader.py)
    processor: object  # tokenizer, image processor and chat template
    policy: torch.nn.Module  # the model being trained: float32 weights (mixed precision under `autocast`)
    trainer: torch.nn.Module  # the policy as the update calls it: DistributedDataParallel under torchrun
    reference: torch.nn.Module  # the frozen starting policy of the KL term; with LoRA the policy itself, adapters off
    optimizer: torch.optim.Optimizer
    autocast: contextlib.AbstractContextManager  # bfloat16 compute on CUDA, a no-op on CPU
    instruction: str  # the method's prompt, after each question
    suppress_ids: list  # vision special tokens a response must never contain
    eos_ids: list
    max_pixels: int  # images are shrunk to this as they are decoded
    classifier: object = None  # Eq. 2's optional image classifier (model, image processor)
    complexity_cache: dict = field(default_factory=dict)  # example index -> H_img (Eq. 2)
    main_process: bool = True
    checkpoint: str = None  # the checkpoint this run resumed from
    start_step: int = 0
    stop_signal: list = field(default_factory=list)  # names the signal once Ctrl-C / SIGTERM arrived
    bad_streak: int = 0  # steps in a row whose every update was skipped as non-finite
    validation: list = None  # --eval-data's first --eval-size items, evaluated every --eval-every steps
    reward_fn: object = None  # --reward-fn's function (task_rewards/reward_files.py), or None: the method's rules
    tracker: tracking.Tracker = field(default_factory=tracking.Tracker)  # --report-to's, on process 0


def start(args, settings_lines=(), load_validation=None):
    """Build the Run: join torchrun's group, seed, check and load data and models, restore a checkpoint if asked.
    `load_validation(args)`: --eval-data's items (eval.load_validation), checked before any model loads."""
    device = distributed.setup(loading.pick_device(args.device))  # under torchrun: this process's GPU (or CPU)
    main_process = distributed.rank() == 0  # the one that prints, logs and saves
    random.seed(args.seed)
    np.random.seed(args.seed)  # the same on every process: the curriculum's draws are shared
    torch.manual_seed(args.seed + distributed.rank())  # different samples on each process
    dtype = loading.pick_dtype(args.dtype, device)
    os.makedirs(args.output_dir, exist_ok=True)

    examples = loader.load_examples(args.data, skip_bad=args.skip_bad_examples, **loader.options(args))
    loading.check_model(args.model)  # a model that cannot work: one line, before anything is loaded
    loading.check_text_model(args.model, examples, args.freeze_vision)
    checkpoint = checkpoints.find_checkpoint(args.resume, args.output_dir) if args.resume else None
    state = checkpoints.load_trainer_state(checkpoint) if checkpoint else None  # tensors and plain data only
    if state:
        checkpoints.check_resume_args(state["args"], args, checkpoint)
    validation = load_validation(args) if load_validation else None  # checked up front like the training data
    reward_fn = reward_files.load(args.reward_fn, reward_files.accuracy_users(args)) if args.reward_fn else None
    processor = loading.load_processor(args.model, args.max_pixels)
    policy, reference = load_models(args, checkpoint, dtype, device)
    policy.train()
    optimizer = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=args.lr,
                                  weight_decay=args.weight_decay)
    classifier = loading.load_image_classifier(args.complexity_model, device) if args.complexity_model else None
    run = Run(examples=examples, processor=processor, policy=policy, trainer=policy, reference=reference,
              optimizer=optimizer, autocast=torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32),
              instruction=methods.instruction(args.method), suppress_ids=vlm.vision_token_ids(policy, processor),
              eos_ids=vlm.eos_token_ids(policy, processor), max_pixels=loading.max_image_pixels(processor),
              classifier=classifier, main_process=main_process, checkpoint=checkpoint, validation=validation,
              reward_fn=reward_fn)
    if main_process:
        print(f"{len(examples)} questions from {args.data}; method {args.method}; {device} {dtype}"
              + (f" x {distributed.world_size()} processes" if distributed.world_size() > 1 else "") + "; "
              "image complexity = " + (f"GLCM entropy + entropy of {args.complexity_model}'s prediction (Eq. 2)"
                                       if classifier else "GLCM entropy only (no --complexity-model)"))
        for line in settings_lines:
            print(line)

    if checkpoint:
        restore(run, state, args)
    elif main_process:
        for path in log_paths(args):
            open(path, "w").close()
    text_only = any(not loader.example_images(example) for example in examples)
    run.trainer = policy if args.fsdp else distributed.wrap(policy, text_only)  # DDP for the update under torchrun
    run.stop_signal = stopping.catch_stop_signals()
    if main_process:  # the run's record and its live view, once everything has loaded
        command_line.write_config(args, os.path.join(args.output_dir, command_line.CONFIG_FILE), run.start_step)
        run.tracker = tracking.start(args.output_dir, args.report_to, dataclasses.asdict(args),
                                     os.path.basename(os.path.abspath(args.output_dir)),
                                     resumed_at=run.start_step if checkpoint else None, fresh=not checkpoint)
    return run


def load_models(args, checkpoint, dtype, device):
    """(policy, reference): the policy to train (from `checkpoint` when resuming) and the frozen reference of the
    KL term, each sharded under --fsdp. With LoRA the reference is the policy itself: the update and the demo's
    before/after table read it with its adapters switched off (lora.adapters_off), so the base is never copied."""
    # Mixed precision: the policy keeps float32 weights (a 1e-6 Adam step is below bf16's resolution and would
    # round away) and computes in `dtype` under autocast; the frozen reference can live in `dtype`.
    if args.lora_rank:  # the frozen base in `dtype` plus float32 adapters; the reference is the base (adapters off)
        base = loading.load_model(args.model, dtype, device)
        with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
            torch.manual_seed(args.seed)  # the same initial adapters on every process (FSDP does not broadcast)
            policy = lora.add_adapters(base, args.lora_rank, args.lora_alpha, args.lora_targets)
        if checkpoint:
            lora.load_adapter_weights(policy, checkpoint)
    else:
        policy = loading.load_model(checkpoint or args.model, torch.float32, device)
        reference = None if args.fsdp else load_reference(args, dtype, device)  # FSDP: once the policy is sharded
    if args.freeze_vision:
        families.freeze_vision(policy)
    if args.gradient_checkpointing:
        policy.gradient_checkpointing_enable()
        if args.lora_rank:  # frozen embeddings: checkpointed layers need inputs that require grad
            policy.enable_input_require_grads()
    if args.fsdp:  # 1/N of every weight on each process; the optimizer sees only this process's shards
        policy = fsdp.shard(policy, dtype)  # before the reference is loaded: one full model at a time on the GPU
        if not args.lora_rank:
            reference = fsdp.shard(load_reference(args, dtype, device), dtype)
    if args.lora_rank:
        reference = policy  # read with its adapters off: the frozen base, no second copy
    return policy, reference


def load_reference(args, dtype, device):
    """The frozen starting policy of the KL term, in the compute dtype."""
    return loading.load_model(args.model, dtype, device).eval().requires_grad_(False)


def restore(run, state, args):
    """Continue from run.checkpoint: the optimizer state (under FSDP this process's shard), this process's RNG
    states, the step, and the logs cut back to it."""
    rng = state["rng"] if isinstance(state["rng"], list) else [state["rng"]]  # one state per process
    if len(rng) != distributed.world_size():  # each process must continue its own random stream
        raise loader.DataError(run.checkpoint, "resumed with a different number of processes",
                               f"{len(rng)} when it was saved, {distributed.world_size()} now")
    if args.fsdp:
        fsdp.load_optimizer_shard(run.optimizer, checkpoints.load_optimizer_shard(run.checkpoint))
    else:
        run.optimizer.load_state_dict(state["optimizer"])
    checkpoints.set_rng_states(rng[distributed.rank()])
    run.start_step = state["step"]
    if run.main_process:
        for path in log_paths(args):
            logs.keep_steps_until(path, run.start_step)
        print(f"resumed from {run.checkpoint} at step {run.start_step}")


def learning_rate(step, args):
    """--lr-scheduler's learning rate of step `step` (0-based) of --max-steps: a pure function of the step, so a
    resumed run sets what the uninterrupted run set (a scheduler object re-created after loading the optimizer
    would restart its count). Warm-up: the first ceil(--warmup-ratio x --max-steps) steps rise linearly to --lr,
    (step + 1) / warm-up steps (not from 0 as in transformers' schedules: a step at lr 0 would cost a whole sampling
    phase for nothing); then constant, or linear or cosine down to 0 over the remaining steps (transformers'
    formulas). Constant without warm-up, the paper's choice and the default, is exactly --lr."""
    warmup = math.ceil(args.warmup_ratio * args.max_steps)
    if step < warmup:
        return args.lr * (step + 1) / warmup
    if args.lr_scheduler == "constant":
        return args.lr
    progress = (step - warmup) / max(1, args.max_steps - warmup)
    if args.lr_scheduler == "linear":
        return args.lr * (1.0 - progress)
    return args.lr * 0.5 * (1.0 + math.cos(math.pi * progress))  # cosine


def set_learning_rate(run, step, args):
    """At the start of step `step`: its scheduled learning rate on every parameter group; returns it (for the
    metrics line's `lr`)."""
    lr = learning_rate(step, args)
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    return lr


def log_paths(args):
    return os.path.join(args.output_dir, "metrics.jsonl"), os.path.join(args.output_dir, "samples.jsonl")


def log_step(run, metrics, samples, bar, args):
    """metrics.jsonl and samples.jsonl get the step's lines, the trackers its scalars (and every --log-every steps
    its samples as text); the bar its live view; every --log-every steps a line."""
    if not run.main_process:
        return
    metrics_path, samples_path = log_paths(args)
    logs.append_jsonl(metrics_path, [metrics])
    logs.append_jsonl(samples_path, samples)
    tracking.log_step(run.tracker, metrics, samples, bool(args.log_every) and metrics["step"] % args.log_every == 0)
    bar.set_postfix_str(logs.live_view(metrics))
    if args.log_every and metrics["step"] % args.log_every == 0:
        tqdm.write(logs.compact_line(metrics))


def save(run, step, args):
    """checkpoint-<step>/ with every process's RNG state (for an exact resume), written by process 0 (and under FSDP
    each process's optimizer shard)."""
    rng = distributed.gather([checkpoints.rng_states()])
    if run.main_process or fsdp.is_sharded(run.policy):  # FSDP: every process gathers weights, writes its shard
        checkpoints.save_checkpoint(args.output_dir, step, run.policy, run.processor, run.optimizer, args,
                                    rng=rng if len(rng) > 1 else rng[0])
    distributed.barrier()
    return os.path.join(args.output_dir, f"checkpoint-{step}")


def save_or_stop(run, step, metrics, args):
    """After step `step`: save when due; stop after 3 non-finite updates in a row (TrainingError) or on a signal
    (returns True: the caller ends the run)."""
    if metrics["fraction_kept"] > 0:  # a step with nothing to update neither breaks nor extends a run of bad updates
        run.bad_streak = run.bad_streak + 1 if metrics["skipped_updates"] == args.updates_per_batch else 0
    stop = distributed.any_process(run.stop_signal)  # read once: a later signal must not find `path` unset
    if (step + 1) % args.save_every == 0 or step + 1 == args.max_steps or stop or run.bad_streak >= 3:
        path = save(run, step + 1, args)
    if run.bad_streak >= 3:
        raise stopping.TrainingError(f"3 steps in a row had a non-finite loss or gradient (last: step {step + 1}); "
                                     f"stopped. The last good weights are in {path}")
    if stop:
        tqdm.write(f"{(run.stop_signal or ['a signal'])[0]}: stopped after step {step + 1}; resume with "
                   f"--resume {path}")
    return stop


def stop_out_of_memory(run, step, step_rng, args):
    """Step `step` ran out of memory: save the last completed step if that is possible and useful, then stop with
    one line (stopping.TrainingError). `step_rng`: the RNG states at the start of the failed step."""
    loaded = run.checkpoint if step == run.start_step else None  # resumed, and no step completed since
    stopping.stop_out_of_memory(step, loaded, step_rng, run.policy, run.processor, run.optimizer, args)
