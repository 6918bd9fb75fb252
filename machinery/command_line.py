"""The command line of fast_grpo.py: its Args dataclass as argparse flags, the defaults a flag left unset takes
(the model's, then the method preset's), the checks that stop a bad combination with one line, and the run's first
lines saying which settings came from where. The tables themselves live with the presets in methods.py.

Also the run's record: config.yaml, every resolved flag (`write_config`), which `--config FILE.yaml` reads back
through the same parser as the command line (the command line wins).
"""

import argparse
import dataclasses
import importlib.metadata
import os
import subprocess
import sys

import yaml

from machinery import logs, tracking
import methods

CONFIG_FILE = "config.yaml"  # in every run's --output-dir: its flags, which --config reads back
CONFIG_HELP = ("read flags from this YAML file of `flag: value` lines (the names of the flags, with - or _), as "
               "every run writes them to config.yaml in its --output-dir; flags on the command line win. Rerun a run: "
               "--config RUN/config.yaml --output-dir ANOTHER (without another --output-dir it refuses rather than "
               "overwrite the run)")


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
    """Command line -> `args_class`. With --config FILE, the file's flags come first and the command line's after
    them (so they win). A switch the user did not set comes from the model's defaults (methods.DEMO_DEFAULTS for
    the shipped demo model, its curriculum included; PAPER_DEFAULTS for any other), then from the method's preset
    in `presets`; then the combination is checked (one line and exit code 2 if bad)."""
    parser = build_parser(args_class, description)
    parser.add_argument("--config", metavar="FILE.yaml", help=CONFIG_HELP)
    argv = sys.argv[1:] if argv is None else list(argv)
    first = argparse.ArgumentParser(add_help=False, allow_abbrev=False)  # only what the file's handling needs
    first.add_argument("--config")
    first.add_argument("--output-dir")
    first.exit_on_error = False
    try:
        given = first.parse_known_args(argv)[0]
    except argparse.ArgumentError:  # `--config` without a file: the full parser says so below
        given = argparse.Namespace(config=None, output_dir=None)
    from_file = config_flags(given.config, parser, args_class) if given.config else []
    values = vars(parser.parse_args(from_file + argv))
    values.pop("config")
    args = args_class(**values)
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
    from_the_file = any(word.startswith("--output-dir=") for word in from_file)  # a run's own record names its folder
    if from_the_file and given.output_dir is None and not args.resume and holds_a_run(args.output_dir):
        fail(f"--config {given.config}: its output_dir {args.output_dir} already holds a run, which this would "
             "overwrite; add --output-dir ANOTHER to rerun it (or --resume auto to continue it)")
    return args


def config_flags(path, parser, args_class):
    """The flags of a --config YAML file as command-line words (`--lr=1e-06`, `--no-length-reward`...), checked by
    `parser` as the command line is (types, choices: `lr: 1e-6` is a number); a problem stops with one line naming
    the file (and the key). An empty value (null) leaves the flag to its default."""
    try:
        with open(path) as f:
            values = yaml.safe_load(f)
    except OSError as error:
        fail(f"--config {path}: {error.strerror or error}")
    except yaml.YAMLError as error:
        fail(f"--config {path}: not YAML ({' '.join(str(error).split())})")
    if not isinstance(values, dict):
        fail(f"--config {path}: not a YAML mapping of `flag: value` lines")
    fields = {f.name: f for f in dataclasses.fields(args_class)}
    words = []
    for key, value in values.items():
        name = str(key).replace("-", "_")
        if name not in fields:
            fail(f"--config {path}: unknown key {key!r}: no --{name.replace('_', '-')} flag (--help lists them)")
        flag = "--" + name.replace("_", "-")
        if value is None:
            continue
        if fields[name].metadata.get("boolean"):
            if not isinstance(value, bool):
                fail(f"--config {path}: {key} must be true or false, not {value!r}")
            words.append(flag if value else "--no-" + flag[2:])
        elif isinstance(value, (dict, list)):
            fail(f"--config {path}: {key} must be a single value, not {value!r}")
        else:
            words.append(f"{flag}={value}")  # one word: a value starting with - is not taken for a flag
    parser.exit_on_error = False  # a bad value: the parser's own message, naming the file
    try:
        parser.parse_args(words)
    except argparse.ArgumentError as error:
        fail(f"--config {path}: {error}")
    finally:
        parser.exit_on_error = True
    return words


def holds_a_run(folder):
    """Whether `folder` already holds a training run's record."""
    return any(os.path.exists(os.path.join(folder, name)) for name in (CONFIG_FILE, "metrics.jsonl"))


def write_config(args, path, start_step=0):
    """config.yaml: every flag of the run after presets and defaults (not --resume, which says how this process
    started, not what the run is), with the versions of torch and transformers and the project's commit as
    comments; `--config` reads it back."""
    versions = ", ".join(f"{package} {importlib.metadata.version(package)}" for package in ("torch", "transformers"))
    commit = project_commit()
    header = ["# fast_grpo.py's settings for this run: every flag, after the presets and defaults (--resume aside).",
              f"# Rerun it: python fast_grpo.py --config {path} --output-dir ANOTHER_FOLDER",
              f"# {versions}" + (f"; fast-grpo commit {commit}" if commit else "; fast-grpo commit unknown")]
    if start_step:
        header.append(f"# (written again when the run resumed at step {start_step})")
    settings = {key: value for key, value in dataclasses.asdict(args).items() if key != "resume"}
    body = yaml.safe_dump(settings, sort_keys=False, allow_unicode=True, width=1000)
    logs.write_atomically(path, "\n".join(header) + "\n" + body)
    return path


def project_commit():
    """The git commit of this project's code ("+ uncommitted changes" when its tracked files differ), or None when
    it is not a git checkout or git is missing."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        head = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        changed = subprocess.run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
                                 capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if head.returncode != 0:
        return None
    return head.stdout.strip() + (" + uncommitted changes" if changed.stdout.strip() else "")


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
        (not 0 <= args.overlong_buffer <= args.max_new_tokens, "--overlong-buffer must be within 0..--max-new-tokens"),
        (args.overlong_penalty < 0, "--overlong-penalty must not be negative (it is subtracted)"),
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
