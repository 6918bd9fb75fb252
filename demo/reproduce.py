"""A toy-scale reproduction of the paper's comparison, on the offline demo task.

From the shipped demo model, train grpo, fast, thinking, no-thinking and think-after-answer with 3 seeds each,
and the FAST ablations (no length reward, no difficulty-aware KL, and the curricula other than the demo's)
with 2 seeds each, all with the demo's defaults; each run ends with the demo's evaluation (greedy and sampled,
eval.demo_evaluation) of the starting and the trained model. Writes results/<run>.json, results/RESULTS.md
(seed mean and spread, per level) and the plots.

    python -m demo.reproduce                      # the whole study, one run at a time
    OMP_NUM_THREADS=1 python -m demo.reproduce --shard 0/2 &
    OMP_NUM_THREADS=1 python -m demo.reproduce --shard 1/2; wait
    python -m demo.reproduce --seeds 1 --ablation-seeds 1 --steps 5  # a quick look
    python -m demo.reproduce --shard 0/23 -- --device cuda --dtype float32   # flags after -- go to every run

`--study length-bias` runs the length-bias lab instead (docs/demo.md): GRPO, Dr. GRPO, GSPO and its GRPO control
(two updates per batch), GRPO with DAPO's overlong rules, FAST and FAST with Dr. GRPO, 2 seeds each, into
results/length-bias/ unless --output-dir says otherwise, with plots of tokens per level over training:

    OMP_NUM_THREADS=1 python -m demo.reproduce --study length-bias --shard 0/2 &
    OMP_NUM_THREADS=1 python -m demo.reproduce --study length-bias --shard 1/2; wait
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np

import eval as evaluation
from machinery import logs
import methods

METHODS = ["grpo", "fast", "thinking", "no-thinking", "think-after-answer"]
OTHER_CURRICULA = [c for c in ("slow-to-fast", "continuous", "none") if c != methods.DEMO_DEFAULTS["curriculum"]]
ABLATIONS = {"fast-no-length-reward": ["--no-length-reward"], "fast-no-dynamic-kl": ["--no-dynamic-kl"],
             **{f"fast-curriculum-{c}": ["--curriculum", c] for c in OTHER_CURRICULA}}
# The length-bias lab (docs/paper.md §10): config -> (method, flags). GSPO differs from GRPO only off-policy, so it
# and its control take two optimizer steps per batch; GSPO with its paper's clip ranges. DAPO's buffer: the last
# quarter of the demo's 256-token budget.
DR_GRPO = ["--aggregation", "dr-grpo", "--scale-rewards", "none"]
LENGTH_BIAS = {"grpo": ("grpo", []), "dr-grpo": ("grpo", DR_GRPO),
               "grpo-mu2": ("grpo", ["--updates-per-batch", "2"]),
               "gspo-mu2": ("grpo", ["--updates-per-batch", "2", "--importance-level", "sequence", "--eps-low", "3e-4",
                                     "--eps-high", "4e-4"]),
               "grpo-dapo-overlong": ("grpo", ["--mask-truncated", "--overlong-buffer", "64"]),
               "fast": ("fast", []), "fast-dr-grpo": ("fast", DR_GRPO)}


def planned_runs(num_seeds, ablation_seeds, study="paper"):
    """(config name, run name, method, seed, extra flags) of every training run, seeds interleaved so that a
    partial study already holds one seed of everything. The length-bias study: every config `num_seeds` times."""
    if study == "length-bias":
        return [(config, f"{config}-seed{seed}", method, seed, flags) for seed in range(num_seeds)
                for config, (method, flags) in LENGTH_BIAS.items()]
    configs = [(m, m, []) for m in METHODS] + [(name, "fast", flags) for name, flags in ABLATIONS.items()]
    return [(config, f"{config}-seed{seed}", method, seed, flags) for seed in range(max(num_seeds, ablation_seeds))
            for config, method, flags in configs if seed < (num_seeds if config in METHODS else ablation_seeds)]


HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the repository root: fast_grpo.py is there


def python(script, *args):
    """Run one of the project's scripts in a fresh process (one run's memory never leaks into the next)."""
    subprocess.run([sys.executable, os.path.join(HERE, script), *args], check=True)


def mean_and_spread(results):
    """{decoding: {level: {key: (seed mean, seed std)}}} of a config's before_after "final" results."""
    return {decoding: {level: {key: (float(np.mean([r[decoding][level][key] for r in results])),
                                     float(np.std([r[decoding][level][key] for r in results])))
                               for key in ("accuracy", "tokens_mean", "well_formed")}
                       for level in results[0][decoding]}
            for decoding in ("greedy", "sampled")}


def target_checks(configs, decoding):
    """The issue's targets for the reproduction (seed means; `configs` as write_report's), one markdown row each:
    what, the numbers, met or missed. A config that has no runs yet is left out."""
    def row(config, level, key="tokens_mean"):
        return configs[config][1][decoding][level][key][0]

    rows = []

    def check(what, numbers, met):
        rows.append(f"| {what} | {numbers} | {'met' if met else '**missed**'} |")

    if {"fast", "grpo"} <= set(configs):
        ratio = row("fast", "all") / row("grpo", "all")
        check("FAST mean tokens at most 0.7x GRPO's", f"{row('fast', 'all'):.1f} / {row('grpo', 'all'):.1f} = "
              f"{ratio:.2f}x", ratio <= 0.7)
        ratio = row("fast", "easy") / row("grpo", "easy")
        check("... at most 0.5x on easy items", f"{row('fast', 'easy'):.1f} / {row('grpo', 'easy'):.1f} = "
              f"{ratio:.2f}x", ratio <= 0.5)
        gaps = {level: 100 * (row("fast", level, "accuracy") - row("grpo", level, "accuracy"))
                for level in ("easy", "medium", "hard")}
        check("FAST accuracy within 1 point of GRPO's on every level",
              ", ".join(f"{level} {gap:+.1f}" for level, gap in gaps.items()), all(abs(g) <= 1 for g in gaps.values()))
        ratio = row("fast", "hard") / row("fast", "easy")
        check("FAST hard-item responses at least 2x easy-item ones", f"{row('fast', 'hard'):.1f} / "
              f"{row('fast', 'easy'):.1f} = {ratio:.1f}x", ratio >= 2)
    if "grpo" in configs and "start (grpo prompt)" in configs:
        change = row("grpo", "all") / row("start (grpo prompt)", "all") - 1
        check("GRPO longer than the start model (by more than 1%)", f"{row('grpo', 'all'):.1f} against "
              f"{row('start (grpo prompt)', 'all'):.1f} ({100 * change:+.1f}%)", change > 0.01)
    trained = [c for c in configs if not c.startswith("start")]
    if "no-thinking" in trained:
        others = min(row(c, "all") for c in trained if c != "no-thinking")
        check("No-Thinking: the shortest responses", f"{row('no-thinking', 'all'):.1f} against at least "
              f"{others:.1f}", row("no-thinking", "all") < others)
    paper = [("fast-no-length-reward", "longer than FAST (the thinking reward cut length 42%)", "tokens_mean", 1),
             ("fast-no-dynamic-kl", "less accurate than FAST (difficulty-aware KL: +1.8)", "accuracy", -1)]
    if methods.DEMO_DEFAULTS["curriculum"] == "none":  # the demo's FAST has no curriculum: adding one should help
        paper += [(f"fast-curriculum-{c}", "more accurate than FAST without it (Slow-to-Fast helps everywhere)",
                   "accuracy", 1) for c in OTHER_CURRICULA]
    for config, direction, key, sign in paper:
        if config in configs and "fast" in configs:
            scale = 100 if key == "accuracy" else 1
            ablated, fast = scale * row(config, "all", key), scale * row("fast", "all", key)
            check(f"`{config}` {direction}", f"{ablated:.1f} against {fast:.1f}", sign * (ablated - fast) > 0)
    binary, continuous = "fast-curriculum-slow-to-fast", "fast-curriculum-continuous"
    if {binary, continuous} <= set(configs):
        accuracy = [100 * row(c, "all", "accuracy") for c in (continuous, binary)]
        tokens = [row(c, "all") for c in (continuous, binary)]
        check("continuous curriculum: slightly more accurate and longer than binary (appendix I: +26% tokens)",
              f"accuracy {accuracy[0]:.1f} against {accuracy[1]:.1f}, tokens {tokens[0]:.1f} against {tokens[1]:.1f}",
              accuracy[0] >= accuracy[1] and tokens[0] > tokens[1])
    return ["| target | seed means | |", "|---|---|---|", *rows]


def plot_tokens_over_training(training_tokens, path):
    """Response tokens per difficulty level over training (seed mean, one line per config, a panel per level)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), sharey=True)
    for ax, level in zip(axes, ("easy", "medium", "hard")):
        for config, runs in training_tokens.items():
            if any(run is None for run in runs):
                continue  # written before this plot existed
            tokens = np.array([[(step or {}).get(level, np.nan) for step in run] for run in runs])
            if np.isnan(tokens).all(axis=0).any():
                continue  # a step without this level in every seed (data without levels)
            per_step = np.nanmean(tokens, axis=0)
            ax.plot(np.arange(1, len(per_step) + 1), per_step, label=config,
                    linestyle="--" if config.startswith("fast") else "-")
        ax.set(title=f"{level} questions", xlabel="training step")
    axes[0].set_ylabel("sampled response tokens (seed mean)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(output_dir, configs, started, report_only=False, study="paper"):
    steps = methods.DEMO_DEFAULTS
    timing = ("written by `--report-only` from runs already done (the README says how long they took)"
              if report_only else f"the invocation that wrote this file took {(time.time() - started) / 60:.0f} min "
              f"on a {os.cpu_count()}-core CPU machine (finished runs are reused, not redone)")
    lines = ["# Toy-scale reproduction: results", "",
             f"Command: `python -m demo.reproduce --study {study} --output-dir {output_dir}`; {timing}. "
             f"Each run: the demo defaults "
             f"({steps['max_steps']} steps of {steps['batch_size']} questions x {steps['group_size']} samples, "
             f"lr {steps['lr']}, curriculum {steps['curriculum']} for fast). "
             f"Held-out synthetic test set: greedy on all 300 items per level; sampled = "
             f"{evaluation.DEMO_EVAL['num_samples']} samples at T = 1 of the first "
             f"{evaluation.DEMO_EVAL['sampled_per_level']} items per level. Mean ± standard deviation over seeds.", ""]
    for decoding in ("sampled", "greedy"):
        lines += [f"## {decoding}", "", "| run | seeds | easy acc / tokens | medium acc / tokens | hard acc / tokens "
                  "| all acc / tokens |", "|---|---|---|---|---|---|"]
        for config, (seeds, table) in configs.items():
            cells = [f"{100 * row['accuracy'][0]:.1f} ± {100 * row['accuracy'][1]:.1f} / "
                     f"{row['tokens_mean'][0]:.1f} ± {row['tokens_mean'][1]:.1f}"
                     for row in (table[decoding][level] for level in ("easy", "medium", "hard", "all"))]
            lines.append(f"| {config} | {seeds} | " + " | ".join(cells) + " |")
        lines += ["", f"Targets ({decoding}):", "", *target_checks(configs, decoding), "",
                  f"![accuracy against tokens, {decoding}]({decoding}/accuracy_vs_tokens.png)", ""]
    with open(os.path.join(output_dir, "RESULTS.md"), "w") as f:
        f.write("\n".join(lines))


def main():
    parser = argparse.ArgumentParser(prog="python -m demo.reproduce", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--study", default="paper", choices=["paper", "length-bias"], help="paper: the methods and "
                        "FAST's ablations; length-bias: GRPO's length fixes beside FAST (docs/demo.md)")
    parser.add_argument("--output-dir", default=None, help="where run folders, JSONs, RESULTS.md and plots go "
                        "(default: results, or results/length-bias for that study)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per method (default: 3; length-bias: 2)")
    parser.add_argument("--ablation-seeds", type=int, default=2, help="seeds per ablation")
    parser.add_argument("--steps", type=int, default=None, help="training steps per run (default: the demo's)")
    parser.add_argument("--shard", default="0/1", help="I/N: do only runs I, I+N, ... (run N of these at once, one "
                        "per core, with OMP_NUM_THREADS=1; the last to finish writes the report)")
    parser.add_argument("--report-only", action="store_true", help="train nothing: report the runs already done")
    parser.add_argument("train_flags", nargs=argparse.REMAINDER, help="after --: extra fast_grpo.py flags for every run")
    args = parser.parse_args()
    args.output_dir = args.output_dir or ("results/length-bias" if args.study == "length-bias" else "results")
    args.seeds = args.seeds or (2 if args.study == "length-bias" else 3)
    train_flags = [flag for flag in args.train_flags if flag != "--"]
    shard, num_shards = map(int, args.shard.split("/"))
    started = time.time()
    os.makedirs(os.path.join(args.output_dir, "runs"), exist_ok=True)
    steps = ["--max-steps", str(args.steps)] if args.steps else []
    runs = planned_runs(args.seeds, args.ablation_seeds, args.study)

    for number, (config, run, method, seed, flags) in enumerate(runs):
        run_dir, result_json = os.path.join(args.output_dir, "runs", run), os.path.join(args.output_dir, f"{run}.json")
        todo = number % num_shards == shard and not args.report_only
        if todo and not os.path.exists(result_json):  # finished runs are kept: resumable
            shutil.rmtree(run_dir, ignore_errors=True)  # an unfinished earlier attempt starts over
            python("fast_grpo.py", "--method", method, "--seed", str(seed), "--output-dir", run_dir, "--log-every", "0",
                   "--save-every", "100000", *steps, *flags, *train_flags)
            with open(os.path.join(run_dir, "before_after.json")) as f:
                result = json.load(f)
            metrics = logs.read_jsonl(os.path.join(run_dir, "metrics.jsonl"))
            # the start is the same for every run of a method: keep it too
            logs.write_atomically(result_json, json.dumps(dict(name=run, method=method, flags=flags, seed=seed, **result,
                                                               training_accuracy=[m["accuracy"] for m in metrics],
                                                               training_tokens=[m.get("tokens_by_level") for m in metrics]),
                                                          indent=1))
            print(f"[{(time.time() - started) / 60:.0f} min] {run} done", flush=True)

    by_config, starts, training_tokens = {}, {}, {}  # read after this shard's runs: the other shards' may have finished meanwhile
    for config, run, method, seed, flags in runs:
        result_json = os.path.join(args.output_dir, f"{run}.json")
        if os.path.exists(result_json):
            with open(result_json) as f:
                result = json.load(f)
            if "final" not in result:
                sys.exit(f"error: {result_json} was written by an older reproduce.py (no 'final' results); move it away")
            by_config.setdefault(config, []).append(result["final"])
            training_tokens.setdefault(config, []).append(result.get("training_tokens"))
            starts[result["method"]] = result["start"]
    if not args.report_only and sum(len(results) for results in by_config.values()) < len(runs):
        print("other shards are still running (or runs failed); the last one to finish writes the report")
        return

    configs = {f"start ({method} prompt)": (1, mean_and_spread([start])) for method, start in starts.items()}
    configs.update({config: (len(results), mean_and_spread(results)) for config, results in by_config.items()})
    for decoding in ("sampled", "greedy"):
        mean_files = []
        for config, (_, table) in configs.items():
            path = os.path.join(args.output_dir, "runs", f"{config}-{decoding}-mean.json".replace(" ", "_"))
            with open(path, "w") as f:
                json.dump(dict(name=config, results={"data": {level: {k: v[0] for k, v in row.items()}
                                                              for level, row in table[decoding].items()}}), f)
            mean_files.append(path)
        evaluation.compare(mean_files, os.path.join(args.output_dir, decoding))
    if args.study == "length-bias":
        plot_tokens_over_training(training_tokens, os.path.join(args.output_dir, "tokens_over_training.png"))
    write_report(args.output_dir, configs, started, args.report_only, args.study)
    print(f"wrote {args.output_dir}/RESULTS.md after {(time.time() - started) / 60:.0f} min")


if __name__ == "__main__":
    main()
