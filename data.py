"""Training and evaluation data: JSONL files of {image, question, answer}, read and checked up front.

One question per line:
    {"image": "images/0001.png", "question": "What is the sum?", "answer": "17"}
EasyR1-style exports load unchanged: {"images": ["images/0001.png"], "problem": "...", "answer": "17"}.
Image paths are relative to the JSONL file. Extra keys (level, benchmark, ...) are kept.
"""

import json
import os
from collections import Counter

from PIL import Image
from tqdm import tqdm


MIN_IMAGE_SIDE = 28  # Qwen2-VL: patch 14 x merge 2; a smaller side would be blown up from almost nothing
MAX_ASPECT_RATIO = 200  # the Qwen2-VL image processor refuses more


class DataError(ValueError):
    """A problem with the data: str() is 'file:line: what is wrong', `reason` its category for counting."""

    def __init__(self, where, reason, detail=""):
        super().__init__(f"{where}: {reason}" + (f" ({detail})" if detail else ""))
        self.reason = reason


def check_image(path, where):
    """The image must exist, decode completely, and be large enough for the processor."""
    if not os.path.isfile(path):
        raise DataError(where, "image file not found", path)
    try:
        with Image.open(path) as image:
            image.load()  # decodes every pixel: catches truncated files that a header check would miss
            width, height = image.size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise DataError(where, "unreadable image", f"{path}: {error}") from None
    if min(width, height) < MIN_IMAGE_SIDE:
        raise DataError(where, "image too small",
                        f"{path} is {width}x{height}, need at least {MIN_IMAGE_SIDE} px a side")
    if max(width, height) / min(width, height) > MAX_ASPECT_RATIO:
        raise DataError(where, "image aspect ratio too extreme", f"{path} is {width}x{height}")


def parse_example(record, where, base_dir):
    """One JSON record -> {image, question, answer, ...}; DataError naming `where` if it is unusable."""
    if not isinstance(record, dict):
        raise DataError(where, "not a JSON object", type(record).__name__)
    image = record.get("image", record.get("images"))
    if isinstance(image, list):
        if len(image) != 1:
            raise DataError(where, "expected exactly one image", f"got {len(image)}")
        image = image[0]
    question = record.get("question", record.get("problem"))
    answer = record.get("answer")
    if isinstance(answer, (int, float)) and not isinstance(answer, bool):
        answer = str(answer)  # exports often store numeric labels as numbers
    for key, value in (("image", image), ("question", question), ("answer", answer)):
        if value is None:
            raise DataError(where, f"missing key '{key}'" + (" (or 'problem')" if key == "question" else ""))
        if not isinstance(value, str) or not value.strip():
            raise DataError(where, f"empty or non-string '{key}'")
    question = question.replace("<image>", "").strip()  # EasyR1 marks the image's place in the text
    path = image if os.path.isabs(image) else os.path.join(base_dir, image)
    check_image(path, where)
    extras = {k: v for k, v in record.items() if k not in ("image", "images", "question", "problem", "answer")}
    return {**extras, "image": path, "question": question, "answer": answer.strip()}


def load_jsonl(path, skip_bad=False):
    """All examples of a JSONL file, every line and image checked before training starts.

    The first bad line raises a DataError naming file and line; with `skip_bad`, bad lines are skipped
    and counted instead. Returns (examples, {reason: count of skipped lines}).
    """
    if not os.path.isfile(path):
        raise DataError(path, "data file not found")
    base_dir = os.path.dirname(os.path.abspath(path))
    examples, skipped = [], Counter()
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.readlines()
    for line_number, line in enumerate(tqdm(lines, desc=f"checking {os.path.basename(path)}", leave=False,
                                            disable=len(lines) < 1000), start=1):
        if not line.strip():
            continue
        where = f"{path}:{line_number}"
        try:
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(where, "malformed JSON", error.msg) from None
            examples.append(parse_example(record, where, base_dir))
        except DataError as error:
            if not skip_bad:
                raise
            skipped[error.reason] += 1
    if not examples:
        raise DataError(path, "no usable examples", ", ".join(f"{n} {r}" for r, n in skipped.items()))
    return examples, dict(skipped)


def load_examples(spec, split="train", skip_bad=False):
    """`spec` = a JSONL path, or 'synthetic': the demo task's generator (train split or held-out test split).

    Bad lines stop with a DataError, or with `skip_bad` are skipped and reported (counts per reason).
    """
    if spec == "synthetic":
        import synthetic

        return synthetic.split(split)
    examples, skipped = load_jsonl(spec, skip_bad)
    if skipped:
        print(f"skipped {sum(skipped.values())} bad lines of {spec}: "
              + ", ".join(f"{count} {reason}" for reason, count in sorted(skipped.items())))
    return examples


def load_image(image):
    """An example's image as RGB: from its file, or as is when the example holds the image itself."""
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    with Image.open(image) as opened:
        return opened.convert("RGB")


def batch_indices(num_examples, batch_size, step, seed):
    """Indices of the questions of training step `step`: each epoch is a fresh seeded permutation.

    A pure function of (step, seed), so resuming at step s picks up exactly where the run left off.
    """
    import numpy as np

    start = step * batch_size
    indices = []
    for position in range(start, start + batch_size):
        epoch, offset = divmod(position, num_examples)
        order = np.random.default_rng([seed, epoch]).permutation(num_examples)
        indices.append(int(order[offset]))
    return indices
