"""The paper's offline data preparation: keep the questions the starting model sometimes solves.

FAST-GRPO built its training set by sampling G responses per question with the starting model and dropping the
questions it always or never solves (pass rate 0 or 1): their groups have equal rewards, so GRPO's advantages
are all zero and they teach nothing (docs/paper.md). This script does that for any --data:

    python prepare_data.py --model Qwen/Qwen2-VL-2B-Instruct --data hiyouga/geometry3k@train --group-size 8 \\
        --output geometry3k-mixed.parquet
    python prepare_data.py --data TIGER-Lab/ViRL39K --pass-rate-key PassRate_7BBase --output virl-7b.parquet

With --pass-rate-key an existing pass-rate column is read instead of sampling (ViRL39K ships PassRate_7BBase;
rows without a value are skipped and counted). The output holds every input column unchanged, plus `pass_rate`,
with relative image paths made absolute (embedded images stay embedded): --data reads it.
"""

import argparse
import math
import os
import sys
from collections import Counter

import numpy as np
import torch

from data_loading import loader
import difficulty
from machinery import loading
import methods


def pass_rates_by_sampling(examples, args):
    """Pass rate of each example: the share of `args.group_size` responses sampled at T = 1 that are correct,
    scored as training scores them (eval.generate_records, the method's prompt and answer check)."""
    import eval as evaluation  # the sampling and scoring code of evaluation, reused as it is

    loading.check_model(args.model)
    device = loading.pick_device(args.device)
    processor = loading.load_processor(args.model, methods.max_pixels_for(args.model, args.max_pixels))
    model = loading.load_model(args.model, loading.pick_dtype("auto", device), device)
    torch.manual_seed(args.seed)
    records = evaluation.generate_records(model, processor, examples, args.method, args.max_new_tokens,
                                          args.batch_size, num_samples=args.group_size, temperature=1.0)
    correct = np.zeros((len(examples), args.group_size))
    seen = Counter()
    for record in records:  # one record per response, `index` = its example
        correct[record["index"], seen[record["index"]]] = record["correct"]
        seen[record["index"]] += 1
    return difficulty.pass_rates(correct > 0)


def pass_rates_from_column(examples, rows, key):
    """(pass rates, mask of the examples that have one) from the column `key`; a value outside [0, 1] or not a
    number is a DataError naming its row."""
    rates, has_rate = np.zeros(len(examples)), np.zeros(len(examples), dtype=bool)
    for i, (example, (where, _)) in enumerate(zip(examples, rows)):
        if key not in example:
            raise loader.DataError(where, f"no pass-rate column {key!r}",
                                   f"the row has {', '.join(map(str, example))}; check --pass-rate-key")
        value = example[key]
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise loader.DataError(where, f"{key} is not a pass rate", f"{value!r}: need a number in [0, 1]")
        rates[i], has_rate[i] = value, True
    return rates, has_rate


def portable_row(record, example, keys, where):
    """The row as it was read, with relative image paths replaced by the absolute paths they resolved to and PIL
    images (the synthetic task) embedded as PNG {bytes, path}: the written file reads back from anywhere."""
    import io

    from PIL import Image

    key = loader.image_column(record, keys, where)
    if key is None:
        return dict(record)
    resolved = iter(loader.example_images(example))

    def portable(entry):
        image = next(resolved)
        if isinstance(image, Image.Image):
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            return {"bytes": buffer.getvalue(), "path": None}
        if isinstance(entry, str):
            return image  # the absolute path it resolved to
        if isinstance(entry, dict) and not entry.get("bytes"):
            return {**entry, "path": image}
        return entry  # embedded bytes stay as they are

    value = record[key]
    return {**record, key: [portable(e) for e in value] if isinstance(value, (list, tuple)) else portable(value)}


def write_parquet(rows, path):
    """Rows (dicts, possibly with different columns: a folder of several schemas) -> one parquet file, written
    atomically; a column whose values do not fit one type is a DataError naming it."""
    import pyarrow
    import pyarrow.parquet

    columns = list(dict.fromkeys(key for row in rows for key in row))
    try:
        table = pyarrow.Table.from_pylist([{key: row.get(key) for key in columns} for row in rows])
    except (pyarrow.ArrowException, TypeError, ValueError) as error:
        raise loader.DataError(path, "cannot write the rows as one parquet table", str(error).splitlines()[0]) from None
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    temporary = f"{path}.tmp-{os.getpid()}"
    pyarrow.parquet.write_table(table, temporary)
    os.replace(temporary, path)


def prepare(args):
    """Read, rate, keep the mixed-outcome questions, write. Returns the pass rates of every example read."""
    options = loader.options(args)
    keys = dict(question=options["question_key"], answer=options["answer_key"], image=options["image_key"])
    examples, skipped, rows = loader.read_examples(args.data, args.split, args.skip_bad_examples, options["image_dir"],
                                                   keys, options["max_images"], rows_too=True)
    loader.report_skipped(args.data, skipped)
    if args.pass_rate_key:
        rates, has_rate = pass_rates_from_column(examples, rows, args.pass_rate_key)
        if not has_rate.all():
            print(f"skipped {int((~has_rate).sum())} rows without a {args.pass_rate_key} value")
    else:
        rates, has_rate = pass_rates_by_sampling(examples, args), np.ones(len(examples), dtype=bool)
    keep = has_rate & difficulty.mixed_outcomes(rates)
    if not keep.any():
        raise loader.DataError(args.data, "no question has a pass rate strictly between 0 and 1",
                               "nothing to write: with --group-size larger, some may")
    kept = [{**portable_row(record, example, keys, where), "pass_rate": float(rate)}
            for (where, record), example, rate, k in zip(rows, examples, rates, keep) if k]
    write_parquet(kept, args.output)
    rated = rates[has_rate]
    print(f"{len(examples)} questions: {int((rated <= difficulty.TOL).sum())} never solved, "
          f"{int((rated >= 1 - difficulty.TOL).sum())} always solved, {len(kept)} kept; wrote {args.output}")
    return rates


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=methods.DEMO_MODEL, help="the starting model (hub id or folder)")
    parser.add_argument("--data", required=True, help="any --data fast_grpo.py reads (docs/data.md)")
    parser.add_argument("--split", default="train", help="split of a folder or hub dataset without @SPLIT")
    loader.add_arguments(parser)
    parser.add_argument("--output", required=True, help="the parquet file to write")
    parser.add_argument("--group-size", type=int, default=8, help="G: responses sampled per question (paper: 8)")
    parser.add_argument("--pass-rate-key", default=None,
                        help="read the pass rate from this column instead of sampling (e.g. PassRate_7BBase)")
    parser.add_argument("--method", default="fast", choices=sorted(methods.METHODS),
                        help="the prompt and answer check of this method")
    parser.add_argument("--max-new-tokens", type=int, default=1024, help="longest response")
    parser.add_argument("--max-pixels", type=int, default=None,
                        help="image size limit (default: what fast_grpo.py uses for this model)")
    parser.add_argument("--batch-size", type=int, default=32, help="questions per generate call")
    parser.add_argument("--device", default="auto", help="cpu, cuda, ... (auto: cuda if available)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampling")
    parser.add_argument("--skip-bad-examples", action="store_true", help="skip unusable rows instead of stopping")
    args = parser.parse_args(argv)
    if args.group_size < 2 and not args.pass_rate_key:
        parser.error("--group-size must be at least 2 (one response cannot have a mixed outcome)")
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        prepare(args)
    except (loader.DataError, loading.ModelError) as error:  # bad input: one line, no traceback
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
