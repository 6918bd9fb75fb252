"""The paper's benchmarks, read in their published schemas and scored the way their authors score them.

    python eval.py --benchmark mathvista --data MathVista/data/testmini-00000-of-00001.parquet \\
        --model DIR --num-samples 8 --temperature 1.0 --max-new-tokens 2048 --responses r.jsonl --output out.json
    python eval.py --benchmark mathvista --data PATH --score r.jsonl --output out.json      # re-score, no model

Per benchmark (BENCHMARKS): the columns it needs, how an item's id is formed, its prompt, its gold answer and its
own scoring rule (benchmarks/scoring.py, each rule naming its official source). docs/evaluation.md explains them.
"""

import json
import os
import re

import numpy as np
import torch

from benchmarks import scoring
from data_loading import loader, sources
from machinery import loading, logs
import methods
import vlm

# columns: what this module reads (a file missing one is not the benchmark's schema); image: the image column;
# id: how an item's id is formed (DynaMath's variants repeat the seed's id, so the variant's split goes first).
BENCHMARKS = {
    "mathvista": dict(id="pid", image="decoded_image",
                      columns=("pid", "query", "choices", "precision", "answer", "question_type", "answer_type")),
    "mathvision": dict(id="id", image="decoded_image", columns=("id", "question", "options", "answer")),
    "mathverse": dict(id="sample_index", image="image",
                      columns=("sample_index", "problem_version", "question_type", "answer", "query_cot")),
    "wemath": dict(id="ID/key", image="image_path", columns=("ID", "key", "question", "option", "answer")),
    "dynamath": dict(id="split/id", image="decoded_image",
                     columns=("id", "question", "ground_truth", "answer_type")),
    "geometry3k": dict(id="id", image="images", columns=("id", "problem", "answer", "choices")),
    # text-only (FAST-1.5B's benchmarks): openai/gsm8k has no id column, an item is its row's position (0, 1, ..);
    # HuggingFaceH4/MATH-500's test.jsonl; AIME as AI-MO/aimo-validation-aime (id, problem, answer) or
    # Maxwell-Jia/AIME_2024 (ID, Problem, Answer) writes it: column names are matched regardless of case
    "gsm8k": dict(id="_index", image=None, columns=("question", "answer")),
    "math500": dict(id="unique_id", image=None, columns=("unique_id", "problem", "answer")),
    "aime": dict(id="id", image=None, columns=("id", "problem", "answer")),
}
ID_COLUMNS = {"wemath": ("ID", "key"), "dynamath": ("id",), "gsm8k": ()}
HUB_NAME = re.compile(r"^[\w.-]+/[\w.-]+(@[\w.-]+)?$")


BENCHMARK_FILES = (".parquet", ".jsonl")  # MATH-500 ships test.jsonl; the others parquet


def read_benchmark_rows(path, columns=None):
    """Rows of a parquet or JSONL file or of a folder's such files (sorted, recursively), as dicts, each with
    `_split` (its file's name up to the first '-': the hub's split or DynaMath variant), `_where` ('FILE:ROW' for
    error messages) and `_index` (its position among all the rows, from 0). Only `columns` are read (images stay on
    disk when re-scoring), a column written in another case (AIME's `Problem`) under the name asked for. A hub
    dataset `owner/name@split` (split default: test) is fetched through sources.resolve, as --data is."""
    if not os.path.exists(path):
        if not (HUB_NAME.match(path) and sources.is_hub_id(path.split("@")[0])):
            raise loader.DataError(path, "benchmark file or folder not found")
        files = [f for f in sources.resolve(path, split="test")["files"] if f.endswith(BENCHMARK_FILES)]  # fetched
    else:
        files = [path] if os.path.isfile(path) else sorted(
            os.path.join(root, name) for root, _, names in os.walk(path) for name in names
            if name.endswith(BENCHMARK_FILES))
    if not files:
        raise loader.DataError(path, "no .parquet or .jsonl files in this folder")
    rows = []
    for file in files:
        split = os.path.basename(file).split("-")[0].removesuffix(".parquet").removesuffix(".jsonl")
        for where, row in file_rows(file, columns):
            rows.append({**row, "_split": split, "_where": where, "_index": len(rows)})
    if not rows:
        raise loader.DataError(path, "no rows")
    return rows


def named_columns(file, names, columns):
    """{name asked for: the file's column} for `columns` among the file's `names`, the same name first, else one
    differing only in case; DataError naming the missing ones."""
    found = {c: c if c in names else next((n for n in names if n.lower() == c.lower()), None) for c in columns or ()}
    missing = [c for c, name in found.items() if name is None]
    if missing:
        raise loader.DataError(file, f"missing column{'s' * (len(missing) > 1)} " + ", ".join(missing),
                               "has " + ", ".join(names))
    return found


def file_rows(file, columns):
    """[(where, {column asked for: value})] of one parquet or JSONL file (every column when `columns` is None)."""
    if file.endswith(".jsonl"):
        _, records = sources.read_rows(file)
        records = list(records)
        for _, record in records:
            if not isinstance(record, dict):  # a DataError (malformed JSON) or a line that is not an object
                raise record if isinstance(record, loader.DataError) else loader.DataError(file, "not a JSON object")
        found = named_columns(file, list(records[0][1]) if records else [], columns)
        return [(where, {c: record.get(name) for c, name in found.items()} if columns else record)
                for where, record in records]
    import pyarrow.parquet as pq

    try:
        found = named_columns(file, pq.read_schema(file).names, columns)
        table = pq.read_table(file, columns=list(found.values()) if columns else None)
    except (OSError, ValueError) as error:
        if isinstance(error, loader.DataError):
            raise
        raise loader.DataError(file, "not a parquet file", str(error).splitlines()[0]) from None
    rename = {name: c for c, name in found.items()}
    return [(f"{file}:{number}", {rename.get(k, k): v for k, v in row.items()})
            for number, row in enumerate(table.to_pylist(), start=1)]


def item_id(benchmark, row):
    """The id a responses line names an item by (docs/evaluation.md, "Re-scoring")."""
    if benchmark == "wemath":
        return f"{row['ID']}/{row['key']}"
    if benchmark == "dynamath":
        return f"{row['_split']}/{row['id']}"
    return str(row[BENCHMARKS[benchmark]["id"]])


def load_benchmark(benchmark, path, images=False):
    """The benchmark's items, in file order: each row (the needed columns, plus `image` when `images`) with `_id`.
    A missing column, a folder of several splits (other than DynaMath's variants), a repeated id or an empty
    id: DataError."""
    spec = BENCHMARKS[benchmark]
    columns = spec["columns"] + ((spec["image"],) if images and spec["image"] else ())
    rows = read_benchmark_rows(path, columns)
    splits = sorted({row["_split"] for row in rows})
    if benchmark != "dynamath" and len(splits) > 1:
        raise loader.DataError(path, f"holds several splits ({', '.join(splits)})", "pass one split's file(s)")
    seen = {}
    for row in rows:
        for column in ID_COLUMNS.get(benchmark, (spec["id"],)):
            if row[column] is None or str(row[column]).strip() == "":
                raise loader.DataError(row["_where"], f"empty '{column}'")
        row["_id"] = item_id(benchmark, row)
        if row["_id"] in seen:
            raise loader.DataError(row["_where"], f"id {row['_id']} repeats", f"first at {seen[row['_id']]}")
        seen[row["_id"]] = row["_where"]
        if images:  # a text-only benchmark's rows have none
            row["image"] = row.pop(spec["image"]) if spec["image"] else None
    return rows


def is_correct(benchmark, row, response):
    """1 if the response's final answer (scoring.final_answer) is right by the benchmark's own rule, else 0."""
    answer = scoring.final_answer(response)
    if benchmark == "mathvista":
        right = scoring.mathvista_correct(answer, row["answer"], row["question_type"], row["answer_type"],
                                          row["choices"], row["precision"])
    elif benchmark == "mathvision":
        right = scoring.mathvision_correct(answer, str(row["answer"]), row["options"])
    elif benchmark == "mathverse":
        right = scoring.mathverse_correct(answer, row["answer"], row["question_type"])
    elif benchmark == "wemath":
        right = scoring.wemath_correct(answer, row["answer"])
    elif benchmark == "dynamath":
        right = scoring.dynamath_correct(answer, row["ground_truth"], row["answer_type"])
    elif benchmark == "gsm8k":
        right = scoring.gsm8k_correct(answer, row["answer"])
    elif benchmark == "math500":
        right = scoring.math500_correct(answer, row["answer"])
    elif benchmark == "aime":
        right = scoring.aime_correct(answer, row["answer"])
    else:
        right = scoring.geometry3k_correct(answer, row["answer"], row["choices"])
    return int(right)


def read_responses(path):
    """RESPONSES.jsonl -> {id: [response, ...]} (the samples of an id in file order). One line each:
    {"id": ID, "response": TEXT}; an integer id is read as its string."""
    if not os.path.isfile(path):
        raise loader.DataError(path, "responses file not found")
    responses = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise loader.DataError(f"{path}:{number}", "malformed JSON", error.msg) from None
            if not isinstance(record, dict) or not isinstance(record.get("response"), str) or \
                    not isinstance(record.get("id"), (str, int)) or isinstance(record.get("id"), bool):
                raise loader.DataError(f"{path}:{number}", 'expected {"id": ID, "response": TEXT}')
            responses.setdefault(str(record["id"]), []).append(record["response"])
    if not responses:
        raise loader.DataError(path, "empty responses file")
    return responses


def write_responses(path, responses):
    """{id: [response, ...]} -> RESPONSES.jsonl in the --score format (one line per sample)."""
    with open(path, "w", encoding="utf-8") as f:
        for item, texts in responses.items():
            for text in texts:
                f.write(json.dumps({"id": item, "response": text}, ensure_ascii=False) + "\n")


def few(ids, limit=3):
    ids = list(ids)
    return ", ".join(ids[:limit]) + (", ..." if len(ids) > limit else "")


def check_ids(benchmark, rows, responses, path):
    """Every response names an item of the data and every item has a response, else DataError (count, a few)."""
    known = {row["_id"] for row in rows}
    unknown = [i for i in responses if i not in known]
    if unknown:
        raise loader.DataError(path, f"{len(unknown)} id{'s' * (len(unknown) > 1)} not in the {benchmark} data",
                               few(unknown))
    missing = [row["_id"] for row in rows if row["_id"] not in responses]
    if missing:
        raise loader.DataError(path, f"{len(missing)} item{'s' * (len(missing) > 1)} of the {benchmark} data "
                                     "without a response", few(missing))


def same_samples(group_name, items, correct, path):
    """Metrics that combine a group's items (a DynaMath seed, a WeMath problem) pair their k-th samples."""
    counts = {item: len(correct[item]) for item in items}
    if len(set(counts.values())) > 1:
        raise loader.DataError(path, f"{group_name}: its items have different numbers of samples",
                               ", ".join(f"{item}: {n}" for item, n in counts.items()))


def dynamath_worst_case(rows, correct, path):
    """Worst-case accuracy over the variants of each seed (scoring.worst_case_accuracy)."""
    seeds = {}
    for row in rows:
        seeds.setdefault(str(row["id"]), []).append(row["_id"])
    for seed, items in seeds.items():
        same_samples(f"DynaMath seed {seed}", items, correct, path)
    return scoring.worst_case_accuracy([[correct[item] for item in items] for items in seeds.values()])


def wemath_metrics(rows, correct, path):
    """WeMath's four-dimensional scores (scoring.wemath_scores) from the `key` structure: a problem `ID` has keys
    'Nsteps_1' .. 'Nsteps_N' (its one-step sub-problems) and 'Nsteps_multi' (the composite problem)."""
    problems = {}
    for row in rows:
        problems.setdefault(str(row["ID"]), {})[str(row["key"])] = row["_id"]
    grouped = []
    for problem, keys in problems.items():
        match = re.fullmatch(r"(\d)steps_(?:\d+|multi)", next(iter(keys)))
        steps = int(match.group(1)) if match else 0
        expected = {f"{steps}steps_{i}" for i in range(1, steps + 1)} | {f"{steps}steps_multi"}
        if steps < 2 or set(keys) != expected:
            raise loader.DataError(path, f"WeMath ID {problem} has keys {', '.join(sorted(keys))}",
                                   "a problem needs its one-step keys Nsteps_1 .. Nsteps_N and Nsteps_multi")
        same_samples(f"WeMath ID {problem}", keys.values(), correct, path)
        grouped.append(([correct[keys[f"{steps}steps_{i}"]] for i in range(1, steps + 1)],
                        correct[keys[f"{steps}steps_multi"]]))
    return scoring.wemath_scores(grouped)


def mean_or_none(values):
    return float(np.mean(values)) if len(values) else None


def score_benchmark(benchmark, rows, responses, path, name, tokens=None):
    """OUT.json's dict (docs/evaluation.md): every rate a fraction in [0, 1]; `accuracy` the mean over items of the mean
    over that item's samples; `tokens` ({id: [count per sample]}) gives the token means (else null)."""
    check_ids(benchmark, rows, responses, path)
    correct = {row["_id"]: [is_correct(benchmark, row, r) for r in responses[row["_id"]]] for row in rows}
    sizes = {item: len(c) for item, c in correct.items()}
    out = dict(benchmark=benchmark, name=name,
               num_samples=next(iter(sizes.values())) if len(set(sizes.values())) == 1 else sizes,
               accuracy=float(np.mean([np.mean(c) for c in correct.values()])))
    if benchmark == "dynamath":
        out["worst_case_accuracy"] = dynamath_worst_case(rows, correct, path)
    elif benchmark == "mathverse":
        out["scorer"] = "rule-based"
        versions = {}
        for row in rows:
            versions.setdefault(row["problem_version"], []).append(np.mean(correct[row["_id"]]))
        out["per_version"] = {version: float(np.mean(v)) for version, v in versions.items()}
    elif benchmark == "wemath":
        out["wemath"] = wemath_metrics(rows, correct, path)
    pairs = [(n, c) for item in correct for n, c in zip(tokens[item], correct[item])] if tokens else []
    out.update(tokens_mean=mean_or_none([n for n, _ in pairs]),
               tokens_mean_correct=mean_or_none([n for n, c in pairs if c]),
               tokens_mean_wrong=mean_or_none([n for n, c in pairs if not c]),
               items={item: {"correct": c} for item, c in correct.items()})
    return out


# ---------------------------------------------------------------------------------------------------------------
# Generating


def prompt_text(benchmark, row):
    """The question as the benchmark poses it: its shipped query where it has one (MathVista `query`, MathVerse
    `query_cot`), else its question with the options written out the way its authors' scripts do."""
    if benchmark == "mathvista":
        return row["query"]
    if benchmark == "mathverse":
        return row["query_cot"]
    if benchmark == "mathvision":  # mathllm/MATH-V models/*.py: options listed unless they are just A-E
        question = re.sub(r"<image\d*>", "", row["question"]).strip()
        options = list(row["options"] or [])
        if options and "".join(options) != "ABCDE"[:len(options)]:
            question += "\n" + "\n".join(f"({chr(ord('A') + i)}) {o}" for i, o in enumerate(options))
        return question
    if benchmark == "wemath":  # VLMEvalKit's WeMath prompt: the question, then its options
        return f"{row['question']}\nOptions: {row['option']}"
    if benchmark == "geometry3k":
        return row["problem"].replace("<image>", "").strip()
    if benchmark in ("math500", "aime"):
        return row["problem"]
    return row["question"]  # DynaMath, GSM8K


def answer_instruction(method):
    """The method's instruction, plus one asking for the answer in <answer> tags where it does not already."""

    instruction = methods.instruction(method)
    if "<answer>" not in instruction:  # No-Thinking: its whole output is its answer, but scoring reads the tags
        instruction += " Put the final answer in <answer> </answer> tags."
    return instruction


def decode_image(row, max_pixels=None):
    """The row's image as RGB: a {bytes, path} struct, a list of one, raw bytes or a path (relative to the parquet
    file's folder), resolved, checked and decoded as training data's images are (data_loading/loader.py)."""
    image = row["image"]
    if isinstance(image, list):
        if len(image) != 1:
            raise loader.DataError(row["_where"], f"{len(image)} images", "one image per question for now")
        image = image[0]
    if image is None or image == "" or (isinstance(image, dict) and not (image.get("bytes") or image.get("path"))):
        raise loader.DataError(row["_where"], "no image")
    folder = os.path.dirname(row["_where"].rsplit(":", 1)[0])
    image = loader.resolve_image(image, row["_where"], [folder])
    loader.check_image(image, row["_where"])
    return loader.load_image(image, max_pixels)


def generate_responses(model, processor, rows, benchmark, method="fast", num_samples=1, temperature=0.0,
                       max_new_tokens=2048, batch_size=8):
    """K responses per item: ({id: [text, ...]}, {id: [tokens, ...]}), images decoded one batch at a time."""
    instruction = answer_instruction(method)
    suppress_ids, eos_ids = vlm.vision_token_ids(model, processor), vlm.eos_token_ids(model, processor)
    max_pixels = loading.max_image_pixels(processor)
    responses, tokens = {}, {}
    for start in range(0, len(rows), batch_size):
        batch = rows[start:start + batch_size]
        has_image = BENCHMARKS[benchmark]["image"] is not None  # GSM8K, MATH500, AIME: text-only prompts
        prompts = [vlm.chat_prompt(processor, prompt_text(benchmark, row), instruction, int(has_image))
                   for row in batch]
        inputs = vlm.encode(processor, prompts, [decode_image(row, max_pixels) for row in batch] if has_image else [])
        inputs = vlm.take_rows(inputs, np.repeat(np.arange(len(batch)), num_samples))
        out = vlm.sample(model, processor, inputs, max_new_tokens, temperature, suppress_ids, eos_ids)
        for i, text in enumerate(out["texts"]):
            item = batch[i // num_samples]["_id"]
            responses.setdefault(item, []).append(text)
            tokens.setdefault(item, []).append(int(out["response_mask"][i].sum()))
    return responses, tokens


def validate(model, processor, rows, benchmark, method="fast", max_new_tokens=1024, batch_size=8):
    """Greedy answers to `rows` (a fixed subset, e.g. load_benchmark(...)[:M]), for validation during training:
    (correct 0/1 per row, response tokens per row). Per-item rules only (no group metrics)."""
    responses, tokens = generate_responses(model, processor, rows, benchmark, method, 1, 0.0, max_new_tokens,
                                           batch_size)
    return ([is_correct(benchmark, row, responses[row["_id"]][0]) for row in rows],
            [tokens[row["_id"]][0] for row in rows])


def run(args):
    """eval.py --benchmark: re-score --score RESPONSES, or generate with --model; print the summary, write
    --responses and --output. Bad input raises loader.DataError / loading.ModelError (eval.main prints one line)."""
    if args.data in (None, "synthetic"):
        raise loader.DataError("--data", f"--benchmark {args.benchmark} needs --data PATH (a parquet file or folder)")
    tokens = None
    if args.score:
        rows = load_benchmark(args.benchmark, args.data)
        responses = read_responses(args.score)
        name, source = args.name or os.path.splitext(os.path.basename(args.score))[0], args.score
    else:
        loading.check_model(args.model)
        rows = load_benchmark(args.benchmark, args.data, images=True)
        loading.check_text_model(args.model, rows)  # a text-only model on an image benchmark: one line
        processor = loading.load_processor(args.model, methods.max_pixels_for(args.model, args.max_pixels))
        device = loading.pick_device(args.device)
        model = loading.load_model(args.model, loading.pick_dtype("auto", device), device)
        torch.manual_seed(0)
        responses, tokens = generate_responses(model, processor, rows, args.benchmark, args.method,
                                               args.num_samples, args.temperature, args.max_new_tokens,
                                               args.batch_size)
        if args.responses:
            write_responses(args.responses, responses)
        source = args.responses or args.model
        name = args.name or os.path.splitext(os.path.basename(os.path.normpath(source)))[0]
    result = score_benchmark(args.benchmark, rows, responses, source, name, tokens)
    print(summary_line(result))
    if args.output:
        logs.write_atomically(args.output, json.dumps(result, indent=1))
    return result


def summary_line(result):
    """One line: name, benchmark, accuracy %, tokens and the benchmark's own aggregate."""
    extra = ""
    if "worst_case_accuracy" in result:
        extra = f", worst case {100 * result['worst_case_accuracy']:.1f}"
    if "wemath" in result:
        scores = result["wemath"]
        extra = f", score strict {100 * scores['strict']['score']:.1f} loose {100 * scores['loose']['score']:.1f}"
    if "per_version" in result:
        extra = ", " + ", ".join(f"{v} {100 * a:.1f}" for v, a in result["per_version"].items()) + " (rule-based)"
    tokens = "-" if result["tokens_mean"] is None else f"{result['tokens_mean']:.1f}"
    return (f"{result['name']} on {result['benchmark']}: accuracy {100 * result['accuracy']:.1f} over "
            f"{len(result['items'])} items, tokens {tokens}{extra}")


# ---------------------------------------------------------------------------------------------------------------
# The paper's table


def table_cells(paths):
    """{row name: {benchmark: (accuracy, tokens or None)}} from OUT.json files of --benchmark and from result files
    of eval.py --output (each benchmark's 'all' summary); files with one name share a row."""
    cells = {}
    for path in paths:
        try:
            with open(path) as f:
                result = json.load(f)
            name = result.get("name") or os.path.splitext(os.path.basename(path))[0]
            if "benchmark" in result:
                cells.setdefault(name, {})[result["benchmark"]] = (result["accuracy"], result["tokens_mean"])
            else:
                for benchmark, groups in result["results"].items():
                    cells.setdefault(name, {})[benchmark] = (groups["all"]["accuracy"], groups["all"]["tokens_mean"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise loader.DataError(path, "not a results file of eval.py --output", str(error) or "no results") from None
    return cells


def is_benchmark_result(path):
    """True for an OUT.json of --benchmark (it names its benchmark), False for anything else."""
    try:
        with open(path) as f:
            return "benchmark" in json.load(f)
    except (OSError, ValueError, TypeError):
        return False


def paper_table(cells):
    """Markdown in the shape of the paper's tables: a row per name, a column per benchmark, cells
    'accuracy (tokens)' in percent and mean tokens, '-' where a row has no such result or no token count."""
    benchmarks = [b for b in BENCHMARKS if any(b in row for row in cells.values())]
    benchmarks += sorted({b for row in cells.values() for b in row} - set(benchmarks))
    lines = ["| name | " + " | ".join(benchmarks) + " |", "|---|" + "---|" * len(benchmarks)]
    for name, row in cells.items():
        shown = [f"{100 * row[b][0]:.1f} ({'-' if row[b][1] is None else f'{row[b][1]:.0f}'})" if b in row else "-"
                 for b in benchmarks]
        lines.append(f"| {name} | " + " | ".join(shown) + " |")
    return "\n".join(lines)


def compare(paths, plot_dir):
    """Print the paper's table of these result files and plot accuracy against mean tokens, one point per row and
    benchmark (cells without tokens are left out of the plot). Returns the plot's path."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    cells = table_cells(paths)
    print(paper_table(cells))
    os.makedirs(plot_dir, exist_ok=True)
    figure, axes = plt.subplots(figsize=(6.5, 4.5))
    benchmarks = sorted({b for row in cells.values() for b in row})
    for i, benchmark in enumerate(benchmarks):
        points = [(name, row[benchmark]) for name, row in cells.items()
                  if benchmark in row and row[benchmark][1] is not None]
        if points:
            axes.scatter([t for _, (_, t) in points], [100 * a for _, (a, _) in points], s=40, label=benchmark,
                         marker="osD^v<>ph"[i % 9])
        for name, (accuracy, tokens) in points:
            axes.annotate(name, (tokens, 100 * accuracy), fontsize=7, xytext=(4, 3), textcoords="offset points")
    axes.set(xlabel="mean response tokens", ylabel="accuracy (%)", title="Accuracy against response length")
    if axes.collections:
        axes.legend(fontsize=8)
    axes.grid(alpha=0.3)
    plot = os.path.join(plot_dir, "accuracy_vs_tokens.png")
    figure.tight_layout()
    figure.savefig(plot, dpi=120)
    plt.close(figure)
    return plot
