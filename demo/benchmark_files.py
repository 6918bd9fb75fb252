"""Small benchmark files in two published schemas, made from the demo task (digit sums), so the evaluation
commands of docs/evaluation.md run offline on the demo model.

    python -m demo.benchmark_files --output /tmp/demo-bench --per-level 10
    python eval.py --benchmark mathvista --data /tmp/demo-bench/mathvista --max-new-tokens 256

Writes
- OUTPUT/mathvista/testmini-00000-of-00001.parquet: MathVista testmini's columns (pid, question, image,
  decoded_image as {bytes, path}, choices, unit, precision, answer, question_type, answer_type, metadata, query),
  the first held-out test items of each level as free-form integer questions; `query` is the demo's own
  question, the prompt the demo model was trained on;
- OUTPUT/dynamath/sample_variant{1,2,3}-00000-of-00001.parquet: DynaMath's columns (id, question, image,
  decoded_image, ground_truth, answer_type, subject, knowledge_level), one file per variant as the hub names
  them: each seed question is redrawn three times at its level (new digits), answer type float.
"""

import argparse
import io
import os
import random

from data_loading import synthetic


def png(image, name):
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return {"bytes": buffer.getvalue(), "path": name}


def mathvista_rows(per_level):
    """The first `per_level` held-out test items of each level as MathVista testmini rows."""
    counts, rows = {}, []
    for item in synthetic.split("test"):
        counts[item["level"]] = counts.get(item["level"], 0) + 1
        if counts[item["level"]] > per_level:
            continue
        pid = str(len(rows) + 1)
        rows.append(dict(pid=pid, question=item["question"], image=f"images/{pid}.png",
                         decoded_image=png(item["image"], f"{pid}.png"), choices=None, unit=None,
                         precision=None, answer=item["answer"], question_type="free_form", answer_type="integer",
                         metadata={"source": "fast-grpo synthetic", "level": item["level"]},
                         query=item["question"]))
    return rows


def dynamath_variant_rows(per_level, variant):
    """Variant `variant` of `per_level` seed questions per level: seed i keeps its level, its digits are redrawn
    (seeded by seed and variant, disjoint from the training generator's seed)."""
    rows = []
    for seed in range(1, 3 * per_level + 1):
        level = list(synthetic.LEVELS)[(seed - 1) % 3]
        item = synthetic.make_item(random.Random(7_000_000 + 100 * seed + variant), level)
        rows.append(dict(id=seed, question=item["question"], image=f"{seed}.png",
                         decoded_image=png(item["image"], f"{seed}.png"), ground_truth=item["answer"],
                         answer_type="float", subject="arithmetic", knowledge_level=level))
    return rows


def main(argv=None):
    import pyarrow as pa
    import pyarrow.parquet as pq

    parser = argparse.ArgumentParser(prog="python -m demo.benchmark_files", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", required=True, help="folder to write the parquet file into")
    parser.add_argument("--per-level", type=int, default=20, help="items per difficulty level")
    args = parser.parse_args(argv)
    files = {os.path.join("mathvista", "testmini-00000-of-00001.parquet"): mathvista_rows(args.per_level)}
    for variant in (1, 2, 3):
        files[os.path.join("dynamath", f"sample_variant{variant}-00000-of-00001.parquet")] = dynamath_variant_rows(
            args.per_level, variant)
    for name, rows in files.items():
        os.makedirs(os.path.dirname(os.path.join(args.output, name)), exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows), os.path.join(args.output, name))
    print("wrote", ", ".join(os.path.join(args.output, name) for name in files))


if __name__ == "__main__":
    main()
