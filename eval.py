"""Evaluate a checkpoint: accuracy and response length, per benchmark and per difficulty level.

Uses the prompts, answer checking and model loading of training, so numbers match what training optimised. Also
the demo's before/after table at the end of a run, and validation during training (--eval-data, --eval-every).

    python eval.py --model runs/fast-grpo/checkpoint-100 --data synthetic
    python eval.py --model DIR --data test.jsonl --method no-thinking --output results.json
    python eval.py --compare results/*.json             # side-by-side table and plots
    python eval.py --benchmark mathvista --data testmini.parquet --model DIR --output out.json   # docs/evaluation.md
    python eval.py --benchmark mathvista --data testmini.parquet --score responses.jsonl --output out.json
"""

import argparse
import json
import os
import re
import sys

import numpy as np
import torch
from tqdm import tqdm

from benchmarks import protocol
from data_loading import loader
from machinery import distributed, fsdp, loading, logs, lora, stopping, tracking
import methods
from task_rewards import reward_files
import vlm


def generate_records(model, processor, examples, method="fast", max_new_tokens=1024, batch_size=32,
                     num_samples=1, temperature=0.0, reward_fn=None):
    """Answer every example `num_samples` times; one record per response (correct, format, tokens, ...). With
    `reward_fn` (--reward-fn) the user's function scores them as in training, its parts kept as reward_<part>."""
    preset = methods.METHODS[method]
    instruction = methods.PROMPTS[preset["prompt"]]
    suppress_ids, eos_ids = vlm.vision_token_ids(model, processor), vlm.eos_token_ids(model, processor)
    records, max_pixels = [], loading.max_image_pixels(processor)
    for start in tqdm(range(0, len(examples), batch_size), desc="eval", leave=False):
        batch = examples[start:start + batch_size]
        inputs, _ = vlm.encode_questions(processor, batch, instruction, max_pixels)
        inputs = vlm.take_rows(inputs, np.repeat(np.arange(len(batch)), num_samples))
        out = vlm.sample(model, processor, inputs, max_new_tokens, temperature, suppress_ids, eos_ids)
        answers = [e["answer"] for e in batch for _ in range(num_samples)]
        rows = [start + row // num_samples for row in range(len(answers))]
        correct, fmt, parts = methods.score_responses(out["texts"], answers, method, reward_fn=reward_fn, rows=rows,
                                                      choices=[e.get("choices") for e in batch
                                                               for _ in range(num_samples)])
        has_format = "format" in parts if reward_fn else preset["format_style"]  # without one, all count as formed
        for row, text in enumerate(out["texts"]):
            example = batch[row // num_samples]
            records.append(dict(index=rows[row], level=example.get("level"),
                                benchmark=example.get("benchmark"), correct=float(correct[row]),
                                format=float(fmt[row] > 0) if has_format else 1.0,
                                tokens=int(out["response_mask"][row].sum()),
                                truncated=bool(out["truncated"][row]), response=text,
                                **{f"reward_{name}": float(values[row]) for name, values in parts.items()}))
    return records


def summarise(records):
    """accuracy, mean/median tokens, well-formed share, truncated share and count of a list of records, and the
    mean of each --reward-fn part (reward_<part>)."""
    tokens = [r["tokens"] for r in records]
    return dict(accuracy=float(np.mean([r["correct"] for r in records])), tokens_mean=float(np.mean(tokens)),
                tokens_median=float(np.median(tokens)), well_formed=float(np.mean([r["format"] for r in records])),
                truncated=float(np.mean([r["truncated"] for r in records])), count=len(records),
                **{key: float(np.mean([r[key] for r in records])) for key in records[0] if key.startswith("reward_")})


def group_key(records, num_samples):
    """Records -> their group: the `level` field, else (K > 1) bins of the model's own pass rate, else 'all'."""
    if all(r["level"] is not None for r in records):
        return [r["level"] for r in records]
    if num_samples > 1:
        pass_rate = {}
        for r in records:
            pass_rate.setdefault(r["index"], []).append(r["correct"])
        bins = {i: ("pass<=0.25" if np.mean(c) <= 0.25 else "pass>=0.75" if np.mean(c) >= 0.75 else "0.25<pass<0.75")
                for i, c in pass_rate.items()}
        return [bins[r["index"]] for r in records]
    return ["all"] * len(records)


def evaluate(model, processor, examples, num_samples=1, **kwargs):
    """{benchmark: {group: summary, 'all': summary}} over the examples."""
    records = generate_records(model, processor, examples, num_samples=num_samples, **kwargs)
    results = {}
    for benchmark in sorted({r["benchmark"] or "data" for r in records}):
        subset = [r for r in records if (r["benchmark"] or "data") == benchmark]
        keys = group_key(subset, num_samples)
        results[benchmark] = {key: summarise([r for r, k in zip(subset, keys) if k == key])
                              for key in sorted(set(keys), key=level_order)}
        results[benchmark]["all"] = summarise(subset)
    return results


def load_validation(args):
    """--eval-data's first --eval-size items (a benchmark's with --eval-benchmark), their images checked now, or
    None without --eval-every."""
    if not args.eval_every:
        return None
    if args.eval_benchmark:
        rows = protocol.load_benchmark(args.eval_benchmark, args.eval_data, images=True)[:args.eval_size]
        for row in rows if protocol.BENCHMARKS[args.eval_benchmark]["image"] else ():  # GSM8K, ...: no images
            protocol.decode_image(row)  # a bad image stops the run now, not at the first validation
        return rows
    return loader.load_examples(args.eval_data, split="test", image_dir=args.image_dir)[:args.eval_size]


def validate(run, args):
    """Greedy accuracy and mean response tokens of the policy on the validation items (EasyR1's val_freq):
    {"val_accuracy", "val_tokens"} for the step's metrics line, on process 0 ({} on the others). Under torchrun
    every process answers its share of the items (under FSDP with the weights gathered)."""
    items = run.validation[distributed.rank()::distributed.world_size()]
    stopping.doing("validation", len(items))
    common = dict(method=args.method, max_new_tokens=args.max_new_tokens, batch_size=args.micro_batch_size)
    with run.autocast, fsdp.gathered(run.policy):
        if args.eval_benchmark:
            correct, tokens = protocol.validate(run.policy, run.processor, items, args.eval_benchmark, **common)
        else:
            records = generate_records(run.policy, run.processor, items, reward_fn=run.reward_fn, **common)
            correct, tokens = [r["correct"] for r in records], [r["tokens"] for r in records]
    correct, tokens = distributed.whole_batch(correct, tokens)
    return dict(val_accuracy=float(np.mean(correct)), val_tokens=float(np.mean(tokens))) if run.main_process else {}


def level_order(key):
    order = {"easy": 0, "medium": 1, "hard": 2}
    return (order.get(key, 3), str(key))


def markdown_table(results, title="model"):
    lines = [f"| {title} | group | accuracy | tokens (mean) | tokens (median) | well-formed | truncated | n |",
             "|---|---|---|---|---|---|---|---|"]
    for benchmark, groups in results.items():
        for group, s in groups.items():
            lines.append(f"| {benchmark} | {group} | {100 * s['accuracy']:.1f} | {s['tokens_mean']:.1f} | "
                         f"{s['tokens_median']:.0f} | {100 * s['well_formed']:.1f} | {100 * s['truncated']:.1f} | "
                         f"{s['count']} |")
    return "\n".join(lines)


# The demo's verdict (the default run ends with it): greedy decoding of every held-out item, and K samples at
# T = 1 of the first SAMPLED_PER_LEVEL items of each level, the distribution RL actually changes. The same
# settings for every method, so runs compare.
DEMO_EVAL = dict(num_samples=4, temperature=1.0, sampled_per_level=150, batch_size=64, seed=0)


def first_per_level(examples, count):
    """The first `count` examples of each level, in their order."""
    counts, subset = {}, []
    for example in examples:
        counts[example["level"]] = counts.get(example["level"], 0) + 1
        if counts[example["level"]] <= count:
            subset.append(example)
    return subset


def demo_evaluation(model, processor, method, max_new_tokens, per_level=None):
    """{"greedy": {level: summary}, "sampled": {level: summary}} on the held-out synthetic test set; `per_level`:
    on its first this many items of each level only, both decodings (a quick look, as in notebooks/)."""
    test_set = loader.load_examples("synthetic", split="test")
    if per_level is not None:
        test_set = first_per_level(test_set, per_level)
    subset = first_per_level(test_set, DEMO_EVAL["sampled_per_level"])
    torch.manual_seed(DEMO_EVAL["seed"])
    common = dict(method=method, max_new_tokens=max_new_tokens, batch_size=DEMO_EVAL["batch_size"])
    greedy = evaluate(model, processor, test_set, **common)["data"]
    sampled = evaluate(model, processor, subset, num_samples=DEMO_EVAL["num_samples"],
                       temperature=DEMO_EVAL["temperature"], **common)["data"]
    return dict(greedy=greedy, sampled=sampled)


def cache_key(model_dir, method, max_new_tokens, runtime=None):
    """A hash of the model's files and every evaluation setting (`runtime`: the model's dtype and device and the
    processor's image size; the method's preset and prompt): a cached result is reused only if none changed."""
    import hashlib

    from data_loading import synthetic

    digest = hashlib.sha256()
    for name in sorted(os.listdir(model_dir)):
        if not name.startswith(START_CACHE) and os.path.isfile(os.path.join(model_dir, name)):
            digest.update(name.encode())
            with open(os.path.join(model_dir, name), "rb") as f:
                digest.update(hashlib.sha256(f.read()).digest())
    # the method's own preset and prompt only: adding or editing another method leaves this one's cache valid
    settings = dict(DEMO_EVAL, method=method, max_new_tokens=max_new_tokens, preset=methods.METHODS[method],
                    prompt=methods.instruction(method), runtime=runtime,
                    test=[synthetic.TEST_PER_LEVEL, synthetic.LEVELS, synthetic.SEEDS["test"]])
    digest.update(json.dumps(settings, sort_keys=True).encode())
    return digest.hexdigest()


START_CACHE = "start_eval"  # <model folder>/start_eval-<method>.json


def start_evaluation(reference, processor, model_dir, method, max_new_tokens):
    """`demo_evaluation` of the starting model, cached in its folder (recomputed when the key differs)."""
    runtime = None if reference is None else dict(
        dtype=str(next(reference.parameters()).dtype), device=reference.device.type,
        image_size=dict(processor.image_processor.size) if processor.image_processor else None)
    key = cache_key(model_dir, method, max_new_tokens, runtime) if os.path.isdir(model_dir) else None
    path = os.path.join(model_dir, f"{START_CACHE}-{method}.json") if key else None
    if path and os.path.exists(path):
        with open(path) as f:
            cached = json.load(f)
        if cached.get("key") == key:
            print(f"starting model: evaluation reused from {path} (same model files and settings)")
            return cached["results"]
    results = demo_evaluation(reference, processor, method, max_new_tokens)
    if path and os.access(model_dir, os.W_OK):  # runs side by side may write it at once: never a half-written file
        logs.write_atomically(path, json.dumps(dict(key=key, method=method, results=results), indent=1))
    return results


def plot_tokens_per_level(metrics_path, plot_path):
    """PNG of the mean response tokens per level over training steps (metrics.jsonl's `tokens_by_level`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = logs.read_jsonl(metrics_path)
    figure, axes = plt.subplots(figsize=(6, 4))
    levels = sorted({level for m in metrics for level in (m.get("tokens_by_level") or {})}, key=level_order)
    for level in levels:
        points = [(m["step"], m["tokens_by_level"][level]) for m in metrics
                  if level in (m.get("tokens_by_level") or {})]
        axes.plot(*zip(*points), label=level, lw=1.2)
    axes.set(xlabel="training step", ylabel="mean response tokens (training samples, T = 1)",
             title="Response length per level during training")
    if levels:
        axes.legend()
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(plot_path, dpi=120)
    plt.close(figure)
    return plot_path


def plot_validation(metrics_path, output_dir):
    """validation.png: the validation accuracy and mean tokens (metrics.jsonl's val_accuracy / val_tokens) against
    the training step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [(m["step"], m["val_accuracy"], m["val_tokens"]) for m in logs.read_jsonl(metrics_path)
              if "val_accuracy" in m]
    figure, accuracy_axes = plt.subplots(figsize=(6, 4))
    tokens_axes = accuracy_axes.twinx()
    if points:
        steps, accuracy, tokens = zip(*points)
        accuracy_axes.plot(steps, [100 * a for a in accuracy], "o-", color="tab:blue", label="accuracy")
        tokens_axes.plot(steps, tokens, "s--", color="tab:orange", label="tokens")
    accuracy_axes.set(xlabel="training step", ylabel="validation accuracy (%, greedy)", title="Validation")
    tokens_axes.set_ylabel("mean response tokens")
    accuracy_axes.grid(alpha=0.3)
    figure.tight_layout()
    path = os.path.join(output_dir, "validation.png")
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def before_and_after(reference, policy, processor, model_dir, method, max_new_tokens, output_dir):
    """The end of a run on --data synthetic: `demo_evaluation` of the starting and the trained model, written to
    before_after.json, a plot of tokens per level over training, and the table, printed last. With LoRA `reference`
    is the policy itself: its adapters are switched off for the starting model."""
    with lora.adapters_off(reference):
        start = start_evaluation(reference, processor, model_dir, method, max_new_tokens)
    results = dict(start=start, final=demo_evaluation(policy, processor, method, max_new_tokens))
    logs.write_atomically(os.path.join(output_dir, "before_after.json"), json.dumps(results, indent=2))
    plot = plot_tokens_per_level(os.path.join(output_dir, "metrics.jsonl"),
                                 os.path.join(output_dir, "tokens_per_level.png"))
    print(before_after_table(results))
    print(f"wrote {os.path.join(output_dir, 'before_after.json')} and {plot}")
    return results


def before_after_table(results, per_level=None):
    """Markdown: accuracy and mean tokens per level, start -> final, greedy and sampled (`per_level`: the
    demo_evaluation subset both came from, named in the title)."""
    k, n = DEMO_EVAL["num_samples"], DEMO_EVAL["sampled_per_level"]
    greedy = "every item" if per_level is None else f"the first {per_level} items per level"
    n = n if per_level is None else min(per_level, n)
    lines = ["", f"held-out synthetic test set: greedy on {greedy}; sampled = {k} samples at T = 1 of the first {n} "
             "items per level", "| decoding | level | accuracy start -> final | tokens start -> final | n |",
             "|---|---|---|---|---|"]
    for decoding in ("greedy", "sampled"):
        for level, start in results["start"][decoding].items():
            final = results["final"][decoding][level]
            lines.append(f"| {decoding} | {level} | {100 * start['accuracy']:.1f} -> {100 * final['accuracy']:.1f} | "
                         f"{start['tokens_mean']:.1f} -> {final['tokens_mean']:.1f} | {final['count']} |")
    return "\n".join(lines)


def load_runs(paths):
    """Result JSON files -> {run name: {group: summary}} (a file's first benchmark; name = its 'name' or stem)."""
    runs = {}
    for path in paths:
        try:
            with open(path) as f:
                result = json.load(f)
            name = result.get("name") or os.path.splitext(os.path.basename(path))[0]
            runs[name] = next(iter(result["results"].values()))
        except (OSError, ValueError, KeyError, AttributeError, StopIteration) as error:
            raise loader.DataError(path, "not a results file of eval.py --output", str(error) or "no results") from None
    return runs


def compare(paths, plot_dir):
    """One side-by-side table of several result files, and two PNG plots: accuracy against mean tokens, one point
    per run (the paper's Figure 1), and mean tokens per difficulty level per run. Returns the plot paths."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    runs = load_runs(paths)
    groups = [g for g in sorted({g for run in runs.values() for g in run}, key=level_order) if g != "all"]
    header = "| run | accuracy | tokens | " + " | ".join(f"{g} acc | {g} tokens" for g in groups) + " |"
    print(header + "\n|" + "---|" * (3 + 2 * len(groups)))
    for name, run in runs.items():
        cells = [f"{100 * run[g]['accuracy']:.1f} | {run[g]['tokens_mean']:.1f}" if g in run else "- | -"
                 for g in ["all", *groups]]
        print(f"| {name} | " + " | ".join(cells) + " |")

    os.makedirs(plot_dir, exist_ok=True)
    figure, axes = plt.subplots(figsize=(6, 4.5))
    for name, run in runs.items():
        axes.scatter(run["all"]["tokens_mean"], 100 * run["all"]["accuracy"], s=40)
        axes.annotate(name, (run["all"]["tokens_mean"], 100 * run["all"]["accuracy"]), fontsize=8,
                      xytext=(4, 4), textcoords="offset points")
    axes.set(xlabel="mean response tokens", ylabel="accuracy (%)", title="Accuracy against response length")
    axes.grid(alpha=0.3)
    accuracy_plot = os.path.join(plot_dir, "accuracy_vs_tokens.png")
    figure.tight_layout()
    figure.savefig(accuracy_plot, dpi=120)
    plt.close(figure)

    figure, axes = plt.subplots(figsize=(max(6, 1.2 * len(runs)), 4.5))
    width = 0.8 / max(1, len(groups))
    for i, group in enumerate(groups):
        heights = [run[group]["tokens_mean"] if group in run else 0 for run in runs.values()]
        axes.bar(np.arange(len(runs)) + i * width, heights, width, label=group)
    axes.set_xticks(np.arange(len(runs)) + width * (len(groups) - 1) / 2, list(runs), rotation=30, ha="right",
                    fontsize=8)
    axes.set(ylabel="mean response tokens", title="Response length per difficulty level")
    axes.legend()
    tokens_plot = os.path.join(plot_dir, "tokens_per_level.png")
    figure.tight_layout()
    figure.savefig(tokens_plot, dpi=120)
    plt.close(figure)
    return accuracy_plot, tokens_plot


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=methods.DEMO_MODEL, help="checkpoint folder or hub id")
    parser.add_argument("--data", default="synthetic", help="a .jsonl/.json/.parquet file, a folder of them "
                        "(DIR@split), a hub dataset owner/name@split (split default: test), or 'synthetic' for the "
                        "held-out demo set (docs/data.md); with --benchmark: the benchmark's parquet file or folder")
    loader.add_arguments(parser)
    parser.add_argument("--benchmark", choices=sorted(protocol.BENCHMARKS), default=None,
                        help="score --data as this benchmark, with its own rules (docs/evaluation.md)")
    parser.add_argument("--score", default=None, metavar="RESPONSES.jsonl",
                        help="with --benchmark: re-score these responses instead of generating")
    parser.add_argument("--responses", default=None, help="with --benchmark: also write the generations here")
    parser.add_argument("--method", default="fast", choices=sorted(methods.METHODS), help="prompt preset")
    parser.add_argument("--reward-fn", default=None, metavar="PATH.py:FUNCTION", help="score with your own function, "
                        "as fast_grpo.py --reward-fn does: it must return a dict with 'accuracy' (> 0: correct), and "
                        "its parts are reported as reward_<part> (docs/reward-functions.md); not with --benchmark")
    parser.add_argument("--max-pixels", type=int, default=None, help="image size limit (default: what fast_grpo.py "
                        f"uses for the model: the demo's processor's, else {methods.MAX_PIXELS}; pass the value you "
                        "trained with if you changed it)")
    parser.add_argument("--num-samples", type=int, default=1, help="K responses per question")
    parser.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    parser.add_argument("--max-new-tokens", type=int, default=1024, help="longest response")
    parser.add_argument("--batch-size", type=int, default=32, help="questions per generate call")
    parser.add_argument("--device", default="auto", help="cpu, cuda, ... (auto: cuda if available)")
    parser.add_argument("--output", default=None, help="write the results as JSON here")
    parser.add_argument("--output-dir", default=None, help="where the results go as TensorBoard event files "
                        "(default: beside --output; with neither, no event files). A training run's folder: the "
                        "results of its checkpoint-<N> appear at step N of its curves, under eval/")
    parser.add_argument("--report-to", default="tensorboard", help="where the results go besides --output: a comma "
                        "list of tensorboard, wandb, trackio (neither is a requirement: pip install it), or none "
                        "(docs/tracking.md)")
    parser.add_argument("--name", default=None, help="the run's name in --compare tables (default: file name)")
    parser.add_argument("--skip-bad-examples", action="store_true", help="skip unusable data lines instead of stopping")
    parser.add_argument("--compare", nargs="+", metavar="RESULTS.json", help="compare result files instead")
    parser.add_argument("--plot-dir", default=None, help="where --compare writes its PNGs (default: next to the first)")
    args = parser.parse_args(argv)
    if (args.score or args.responses) and not args.benchmark:
        parser.error("--score and --responses need --benchmark NAME")
    if args.reward_fn and (args.benchmark or args.compare):
        parser.error("--reward-fn scores generated responses: not with --benchmark (its own rules) or --compare")
    if not args.compare and tracking.problem(args.report_to):  # wandb or trackio missing: before any model loads
        print(f"error: {tracking.problem(args.report_to)}", file=sys.stderr)
        sys.exit(2)
    if args.compare:
        plot_dir = args.plot_dir or os.path.dirname(os.path.abspath(args.compare[0]))
        try:
            if any(protocol.is_benchmark_result(path) for path in args.compare):  # the paper's table
                plots = [protocol.compare(args.compare, plot_dir)]
            else:
                plots = compare(args.compare, plot_dir)
        except loader.DataError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)
        print("wrote", ", ".join(plots))
        return
    if args.benchmark:
        try:
            result = protocol.run(args)
        except (loader.DataError, loading.ModelError) as error:  # bad input: one line, no traceback
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)
        report(args, {f"eval/{result['benchmark']}/{key}": value for key, value in result.items()
                      if isinstance(value, (int, float)) and not isinstance(value, bool)})
        return
    torch.manual_seed(0)
    device = loading.pick_device(args.device)
    try:
        loading.check_model(args.model)
        reward_fn = reward_files.load(args.reward_fn, ["eval.py's accuracy"]) if args.reward_fn else None
        examples = loader.load_examples(args.data, split="test", skip_bad=args.skip_bad_examples,
                                        **loader.options(args))
        loading.check_text_model(args.model, examples)
        processor = loading.load_processor(args.model, methods.max_pixels_for(args.model, args.max_pixels))
        model = loading.load_model(args.model, loading.pick_dtype("auto", device), device)
    except (loader.DataError, loading.ModelError) as error:  # bad input: one line, no traceback
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    try:  # a --reward-fn function can raise or answer wrongly on any response: one line, like bad data
        results = evaluate(model, processor, examples, method=args.method, max_new_tokens=args.max_new_tokens,
                           batch_size=args.batch_size, num_samples=args.num_samples, temperature=args.temperature,
                           reward_fn=reward_fn)
    except reward_files.RewardFnError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    print(markdown_table(results, args.model))
    if args.output:
        logs.write_atomically(args.output, json.dumps(dict(name=args.name, model=args.model, data=args.data,
                                                           method=args.method, results=results), indent=2))
    report(args, {f"eval/{benchmark}/{group}/{key}": value for benchmark, groups in results.items()
                  for group, summary in groups.items() for key, value in summary.items()},
           markdown_table(results, args.model))


def report(args, tags, table=None):
    """The results for --report-to: scalars `tags` (and the Markdown `table` as text), at the step of a
    checkpoint-<N> model (else 0), as TensorBoard event files in --output-dir, else beside --output (neither: no
    event files). Evaluating a run's checkpoints into the run's folder draws eval/ curves beside its training
    curves."""
    folder = args.output_dir or (os.path.dirname(os.path.abspath(args.output)) if args.output else None)
    step = re.search(r"checkpoint-(\d+)$", os.path.normpath(args.model or ""))
    name = args.name or os.path.splitext(os.path.basename(args.output or os.path.normpath(args.model)))[0]
    if folder:
        os.makedirs(folder, exist_ok=True)
    with tracking.start(folder, args.report_to, vars(args), name) as tracker:
        tracker.log(int(step.group(1)) if step else 0, tags, table, text_tag="eval/table")
        if tracker.writer is not None:
            print(f"wrote TensorBoard events to {folder} (tensorboard --logdir {folder})")


if __name__ == "__main__":
    main()
