"""Training and evaluation data: JSONL files of {image, question, answer}, read and checked up front.

One question per line:
    {"image": "images/0001.png", "question": "What is the sum?", "answer": "17"}
EasyR1-style exports load unchanged: {"images": ["images/0001.png"], "problem": "...", "answer": "17"}.
Image paths are relative to the JSONL file. Extra keys (level, benchmark, ...) are kept.
"""

import json
import os
from collections import Counter

import numpy as np
from PIL import Image, ImageOps
from tqdm import tqdm


MIN_IMAGE_SIDE = 28  # Qwen2-VL: patch 14 x merge 2; a smaller side would be blown up from almost nothing
MAX_ASPECT_RATIO = 200  # the Qwen2-VL image processor refuses more


class DataError(ValueError):
    """A problem with the data: str() is 'file:line: what is wrong', `reason` its category for counting."""

    def __init__(self, where, reason, detail=""):
        super().__init__(f"{where}: {reason}" + (f" ({detail})" if detail else ""))
        self.reason = reason


# What to_rgb can turn into RGB: 1-bit, grey, palette, colour with or without alpha, CMYK, 16/32-bit and float grey
CONVERTIBLE_MODES = {"1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV",
                     "I", "I;16", "I;16L", "I;16B", "I;16N", "F"}


def check_image(path, where):
    """The image must exist, decode completely, have a mode to_rgb converts, and be large enough for the processor.

    JPEGs are decoded at a reduced scale (still every byte of the file, so truncation is caught): a 50-megapixel
    photo costs the check a few MB, not 150.
    """
    if not os.path.isfile(path):
        raise DataError(where, "image file not found", path)
    try:
        with Image.open(path) as image:
            width, height = image.size
            mode = image.mode
            image.draft("RGB", (max(1, width // 8), max(1, height // 8)))  # JPEG only; other formats ignore it
            image.load()  # decodes: catches truncated files that a header check would miss
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise DataError(where, "unreadable image", f"{path}: {error}") from None
    if mode not in CONVERTIBLE_MODES:
        raise DataError(where, "unsupported image mode", f"{path} has mode {mode}")
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


def to_rgb(image):
    """Any still image as the 8-bit RGB the processor expects, the way it looks in an image viewer.

    EXIF orientation applied (phone photos store their rotation there); transparency composited onto white
    (PIL's plain convert drops alpha and shows whatever colour the transparent pixels hold, often black);
    16-bit, 32-bit and float grey scaled to 8 bits (a plain convert clips them, nearly all white); an
    animation's first frame.
    """
    if getattr(image, "n_frames", 1) > 1:
        image.seek(0)
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F"):
        grey = np.asarray(image, dtype=np.float64)
        if image.mode.startswith("I;16"):
            full_scale = 65535.0
        else:  # 32-bit int or float: the range the values are in (16-bit PNGs open as "I" on some Pillows)
            full_scale = 1.0 if image.mode == "F" and grey.max() <= 1.0 else 255.0 if grey.max() <= 255 else 65535.0
        image = Image.fromarray(np.clip(np.round(grey / full_scale * 255), 0, 255).astype(np.uint8))
    if image.mode in ("RGBA", "LA", "La", "RGBa", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
    return image.convert("RGB")


def load_image(image, max_pixels=None):
    """An example's image as RGB (to_rgb): from its file, or as is when the example holds the image itself.

    With `max_pixels`, a larger image is shrunk (aspect kept) as it is decoded, so a 50-megapixel photo never
    reaches the processor at full size; the processor resizes it to its own grid anyway.
    """
    if isinstance(image, Image.Image):
        return shrink(to_rgb(image), max_pixels)
    with Image.open(image) as opened:
        if max_pixels:
            scale = (max_pixels / (opened.width * opened.height)) ** 0.5
            opened.draft("RGB", (int(opened.width * scale) + 1, int(opened.height * scale) + 1))  # JPEG: decode small
        return shrink(to_rgb(opened), max_pixels)


def shrink(image, max_pixels):
    """`image` resized (aspect kept) to at most `max_pixels` pixels; unchanged if it is already small enough."""
    if not max_pixels or image.width * image.height <= max_pixels:
        return image
    scale = (max_pixels / (image.width * image.height)) ** 0.5
    size = (max(1, int(image.width * scale)), max(1, int(image.height * scale)))
    return image.resize(size, Image.Resampling.BICUBIC, reducing_gap=3.0)


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
