"""A toy-scale reproduction of the paper's comparison, on the offline demo task.

From the shipped demo model, train grpo, fast, thinking, no-thinking and think-after-answer with 3 seeds each,
and the three FAST ablations (no length reward, no difficulty-aware KL, no Slow-to-Fast) with 1 seed, all with
the same step budget; evaluate each, and the starting model, on the held-out synthetic test set (greedy); write
results/<run>.json, results/RESULTS.md (mean and spread over seeds, per level) and the plots.

    python reproduce.py                      # the whole study, one run at a time
    OMP_NUM_THREADS=1 python reproduce.py --shard 0/2 & OMP_NUM_THREADS=1 python reproduce.py --shard 1/2; wait
    python reproduce.py --seeds 1 --steps 5  # a quick look
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
import fast_grpo

METHODS = ["grpo", "fast", "thinking", "no-thinking", "think-after-answer"]
ABLATIONS = {"fast-no-length-reward": ["--no-length-reward"], "fast-no-dynamic-kl": ["--no-dynamic-kl"],
             "fast-no-slow-to-fast": ["--no-slow-to-fast"]}


def planned_runs(num_seeds):
    """(config name, run name, method, seed, extra flags) of every training run."""
    runs = [(m, f"{m}-seed{s}", m, s, []) for m in METHODS for s in range(num_seeds)]
    return runs + [(name, f"{name}-seed0", "fast", 0, flags) for name, flags in ABLATIONS.items()]


HERE = os.path.dirname(os.path.abspath(__file__))


def python(script, *args):
    """Run one of the project's scripts in a fresh process (one run's memory never leaks into the next)."""
    subprocess.run([sys.executable, os.path.join(HERE, script), *args], check=True)


def mean_and_spread(results, config):
    """Seed mean and standard deviation of each summary number, per level."""
    table = {}
    for group in results[0]:
        table[group] = {key: (float(np.mean([r[group][key] for r in results])),
                              float(np.std([r[group][key] for r in results])))
                        for key in ("accuracy", "tokens_mean", "well_formed", "truncated")}
    return dict(name=config, seeds=len(results), results={"data": {
        g: {k: v[0] for k, v in row.items()} for g, row in table.items()}}), table  # seed means


def write_report(output_dir, configs, started):
    lines = ["# Toy-scale reproduction: results", "",
             f"Command: `python reproduce.py --output-dir {output_dir}`; this invocation took "
             f"{(time.time() - started) / 60:.0f} min on a {os.cpu_count()}-core CPU machine (finished runs are "
             "reused, not redone). Each run: the demo defaults (60 steps of 8 questions x 8 samples, lr 3e-5). "
             "Held-out synthetic test set (300 items per level), greedy decoding. "
             "Mean ± standard deviation over seeds.", "",
             "| run | seeds | level | accuracy (%) | mean tokens | well-formed (%) |", "|---|---|---|---|---|---|"]
    for config, (seeds, table) in configs.items():
        for group, row in table.items():
            acc, tok, fmt = row["accuracy"], row["tokens_mean"], row["well_formed"]
            lines.append(f"| {config} | {seeds} | {group} | {100 * acc[0]:.1f} ± {100 * acc[1]:.1f} | "
                         f"{tok[0]:.1f} ± {tok[1]:.1f} | {100 * fmt[0]:.1f} |")
    lines += ["", "![accuracy against tokens](accuracy_vs_tokens.png)", "",
              "![tokens per level](tokens_per_level.png)", ""]
    with open(os.path.join(output_dir, "RESULTS.md"), "w") as f:
        f.write("\n".join(lines))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", default="results", help="where run folders, JSONs, RESULTS.md and plots go")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per method (ablations get one)")
    parser.add_argument("--steps", type=int, default=None, help="training steps per run (default: the demo's)")
    parser.add_argument("--shard", default="0/1", help="I/N: do only runs I, I+N, ... (run N of these at once, one "
                        "per core, with OMP_NUM_THREADS=1; the last to finish writes the report)")
    args = parser.parse_args()
    shard, num_shards = map(int, args.shard.split("/"))
    started = time.time()
    os.makedirs(os.path.join(args.output_dir, "runs"), exist_ok=True)
    steps = ["--max-steps", str(args.steps)] if args.steps else []

    # the starting model under each prompt a method uses: every method's "before"
    start_jsons = {m: os.path.join(args.output_dir, "start.json" if m == "fast" else f"start-{m}.json")
                   for m in ("fast", "thinking", "no-thinking", "think-after-answer")}
    for method, start_json in start_jsons.items():
        if shard == 0 and not os.path.exists(start_json):
            python("eval.py", "--method", method, "--max-new-tokens", "256", "--batch-size", "64",
                   "--name", f"start ({method} prompt)", "--output", start_json)
    by_config = {}
    for number, (config, run, method, seed, flags) in enumerate(planned_runs(args.seeds)):
        run_dir, result_json = os.path.join(args.output_dir, "runs", run), os.path.join(args.output_dir, f"{run}.json")
        if number % num_shards == shard and not os.path.exists(result_json):  # finished runs are kept: resumable
            shutil.rmtree(run_dir, ignore_errors=True)  # an unfinished earlier attempt starts over
            python("fast_grpo.py", "--method", method, "--seed", str(seed), "--output-dir", run_dir,
                   "--no-compare-at-end", "--log-every", "0", *steps, *flags)
            final = os.path.join(run_dir, f"checkpoint-{args.steps or fast_grpo.DEMO_DEFAULTS['max_steps']}")
            python("eval.py", "--model", final, "--method", method, "--max-new-tokens", "256",
                   "--batch-size", "64", "--name", run, "--output", result_json)
            print(f"[{(time.time() - started) / 60:.0f} min] {run} done", flush=True)
        if os.path.exists(result_json):
            with open(result_json) as f:
                by_config.setdefault(config, []).append(json.load(f)["results"]["data"])
    if sum(len(results) for results in by_config.values()) < len(planned_runs(args.seeds)):
        print("other shards are still running; the last one to finish writes the report")
        return

    configs, mean_files = {}, []
    for method, start_json in start_jsons.items():
        with open(start_json) as f:
            configs[f"start ({method} prompt)"] = (1, mean_and_spread([json.load(f)["results"]["data"]], "start")[1])
        mean_files.append(start_json)
    for config, results in by_config.items():
        mean_result, table = mean_and_spread(results, config)
        configs[config] = (len(results), table)
        path = os.path.join(args.output_dir, "runs", f"{config}-mean.json")
        with open(path, "w") as f:
            json.dump(mean_result, f, indent=2)
        mean_files.append(path)
    evaluation.compare(mean_files, args.output_dir)
    write_report(args.output_dir, configs, started)
    print(f"wrote {args.output_dir}/RESULTS.md after {(time.time() - started) / 60:.0f} min")


if __name__ == "__main__":
    main()
