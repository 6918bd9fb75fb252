"""Training and evaluation data: JSONL files of {image, question, answer}, read and checked up front.

One question per line:
    {"image": "images/0001.png", "question": "What is the sum?", "answer": "17"}
EasyR1-style exports load unchanged: {"images": ["images/0001.png"], "problem": "...", "answer": "17"}.
Image paths are relative to the JSONL file. Extra keys (level, benchmark, ...) are kept.
"""

import json
import os

from PIL import Image


class DataError(ValueError):
    """A problem with the data, located as 'file:line: what is wrong'."""


def parse_example(record, where, base_dir):
    """One JSON record -> {image, question, answer, ...}; DataError naming `where` if it is unusable."""
    if not isinstance(record, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(record).__name__}")
    image = record.get("image", record.get("images"))
    if isinstance(image, list):
        if len(image) != 1:
            raise DataError(f"{where}: expected exactly one image, got {len(image)}")
        image = image[0]
    question = record.get("question", record.get("problem"))
    answer = record.get("answer")
    for key, value in (("image", image), ("question", question), ("answer", answer)):
        if value is None:
            raise DataError(f"{where}: missing key '{key}'" + (" (or 'problem')" if key == "question" else ""))
        if isinstance(value, (int, float)) and key == "answer":
            value = str(value)
        if not isinstance(value, str) or not value.strip():
            raise DataError(f"{where}: '{key}' must be a non-empty string")
    question = question.replace("<image>", "").strip()  # EasyR1 marks the image's place in the text
    path = image if os.path.isabs(image) else os.path.join(base_dir, image)
    if not os.path.isfile(path):
        raise DataError(f"{where}: image file not found: {path}")
    extras = {k: v for k, v in record.items() if k not in ("image", "images", "question", "problem", "answer")}
    return {**extras, "image": path, "question": question, "answer": str(answer).strip()}


def load_jsonl(path):
    """All examples of a JSONL file; the first bad line stops with a DataError naming file and line."""
    if not os.path.isfile(path):
        raise DataError(f"{path}: data file not found")
    base_dir = os.path.dirname(os.path.abspath(path))
    examples = []
    with open(path, encoding="utf-8") as f:
        for line_number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}:{line_number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(f"{where}: malformed JSON ({error.msg})") from None
            examples.append(parse_example(record, where, base_dir))
    if not examples:
        raise DataError(f"{path}: no examples")
    return examples


def load_examples(spec, split="train"):
    """`spec` = a JSONL path, or 'synthetic': the demo task's generator (train split or held-out test split)."""
    if spec == "synthetic":
        import synthetic

        return synthetic.split(split)
    return load_jsonl(spec)


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
