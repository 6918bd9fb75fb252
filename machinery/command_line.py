"""The command line of fast_grpo.py: its Args dataclass as argparse flags, the defaults a flag left unset takes
(the model's, then the method preset's), the checks that stop a bad combination with one line, and the run's first
lines saying which settings came from where. The tables themselves live with the presets in methods.py.
"""

import argparse
import dataclasses
import os
import sys

from machinery import tracking
import methods


def build_parser(args_class, description):
    """argparse flags from a dataclass: `--name-with-dashes` per field, its metadata's help and choices; a field
    marked boolean=True becomes --flag / --no-flag."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in dataclasses.fields(args_class):
        flag, meta = "--" + f.name.replace("_", "-"), f.metadata
        if meta.get("boolean"):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default, help=meta["help"])
        else:
            parser.add_argument(flag, type=f.type, default=f.default, choices=meta.get("choices"), help=meta["help"])
    return parser


def fail(message):
    """Stop with one line on stderr and exit code 2 (a mistake in the input, not in the flags' syntax)."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def parse(args_class, argv, description, presets):
    """Command line -> `args_class`. A switch the user did not set comes from the model's defaults
    (methods.DEMO_DEFAULTS for the shipped demo model, its curriculum included; PAPER_DEFAULTS for any other), then
    from the method's preset in `presets`; then the combination is checked (one line and exit code 2 if bad)."""
    parser = build_parser(args_class, description)
    args = args_class(**vars(parser.parse_args(argv)))
    if args.slow_to_fast is not None:
        old_spelling = "slow-to-fast" if args.slow_to_fast else "none"
        if args.curriculum not in (None, old_spelling):
            flag = f"--{'' if args.slow_to_fast else 'no-'}slow-to-fast"
            parser.error(f"--curriculum {args.curriculum} contradicts {flag}")
        args.curriculum = old_spelling
    args.model = args.model or methods.DEMO_MODEL
    is_demo = methods.is_demo(args.model)
    if args.lora_rank > 0:
        args.lr = methods.LORA_LR["demo" if is_demo else "paper"] if args.lr is None else args.lr
        args.lora_alpha = 2.0 * args.lora_rank if args.lora_alpha is None else args.lora_alpha
    model_defaults = methods.DEMO_DEFAULTS if is_demo else methods.PAPER_DEFAULTS
    for key, value in [*model_defaults.items(), *presets[args.method].items()]:  # user flags first
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    for failed, message in problems(args):
        if failed:
            parser.error(message)  # one line on stderr, exit code 2
    if tracking.problem(args.report_to):  # wandb or trackio asked for but not installed: before any model loads
        fail(tracking.problem(args.report_to))
    return args


def looks_like_hub_id(name):
    return name.count("/") == 1 and not name.startswith((".", "/", "~")) and not os.path.exists(name)


def problems(args):
    """(failed, message) for every combination of flags that cannot work."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    return [
        (not os.path.isdir(args.model) and not looks_like_hub_id(args.model), f"--model: no such folder: {args.model}"),
        (args.group_size < 2, "--group-size must be at least 2 (advantages compare responses within a group)"),
        (args.batch_size < 1, "--batch-size must be at least 1"),
        (args.batch_size % world_size, "--batch-size must be a multiple of the number of torchrun processes (each "
         "samples an equal share of the questions)"),
        (not 0 <= args.hard_percentile <= 100, "--hard-percentile must be within 0..100"),
        (args.beta_min > args.beta_max, "--beta-min must not exceed --beta-max"),
        (args.updates_per_batch < 1, "--updates-per-batch must be at least 1"),
        (args.micro_batch_size < 1, "--micro-batch-size must be at least 1"),
        (args.save_every < 1, "--save-every must be at least 1"),
        (args.temperature < 0, "--temperature must not be negative"),
        (args.max_steps < 1, "--max-steps must be at least 1"),
        (args.lora_rank < 0, "--lora-rank must be 0 (no LoRA) or more"),
        (bool(args.eval_every) != bool(args.eval_data), "--eval-every and --eval-data go together"),
        (args.eval_benchmark and not args.eval_data, "--eval-benchmark needs --eval-data"),
        (args.eval_every < 0 or args.eval_size < 1, "--eval-every must be 0 or more and --eval-size at least 1"),
        (args.fsdp and world_size < 2, "--fsdp shards the model across processes: start it with torchrun "
         "--nproc_per_node N (N >= 2)"),
        (args.lora_rank > 0 and args.freeze_vision, "--freeze-vision is implied by --lora-rank (only adapters train)"),
        (not 0 <= args.warmup_ratio < 1, "--warmup-ratio must be within 0..1 (a share of --max-steps)"),
    ]


def describe_settings(args, presets):
    """The first lines of a run: the model's defaults it used, and every setting that differs from its method's
    preset in `presets`, with the reason (a flag, or the demo model's default)."""
    is_demo = methods.is_demo(args.model)
    model_defaults = methods.DEMO_DEFAULTS if is_demo else methods.PAPER_DEFAULTS
    source = "the demo model's defaults (docs/demo.md)" if is_demo else "the paper's defaults (docs/paper.md §1)"
    preset = presets[args.method]
    used = [f"{key} {getattr(args, key):g}" if isinstance(getattr(args, key), float) else f"{key} {getattr(args, key)}"
            for key, value in model_defaults.items() if getattr(args, key) == value and key not in preset]
    lines = [f"settings from {source}: " + ", ".join(used)] if used else []
    if args.lora_rank and args.lr == methods.LORA_LR["demo" if is_demo else "paper"]:
        lines.append(f"lr {args.lr:g}: the LoRA default for {'the demo model' if is_demo else 'real models'} "
                     f"(rank {args.lora_rank}, alpha {args.lora_alpha:g}; docs/scaling.md)")
    for key, preset_value in preset.items():
        value = getattr(args, key, preset_value)
        if key in dataclasses.asdict(args) and value != preset_value:
            flag = ("--no-" if value is False else "--") + key.replace("_", "-")
            why = ("the demo model's default, see docs/demo.md" if is_demo and methods.DEMO_DEFAULTS.get(key) == value
                   else f"set by {flag}")
            lines.append(f"{key} {value}, not the {args.method} preset's {preset_value}: {why}")
    return lines
