"""Training and evaluation data: rows of {image(s), question, answer} in the published schemas, checked up front.

--data is a .jsonl / .json / .parquet file, a folder of them, or a hub dataset `owner/name@split`
(data_loading/sources.py finds and reads the files). A row may come in any of these schemas, unchanged:

    {"image": "images/0001.png", "question": "What is the sum?", "answer": "17"}          this project's JSONL
    {"images": [{"bytes": b"<png>", "path": null}], "problem": "<image>Find x.", "answer": "3"}   Geometry3K, EasyR1
    {"image": ["images/a.jpg", "images/b.jpg"], "question": "<image> vs <image>?", "answer": "\\boxed{2}"}  ViRL39K
    {"messages": [{"role": "user", "content": "<image>..."}, {"role": "assistant", ...}], "images": [...]}  ShareGPT
    {"conversations": [{"from": "human", "value": "<image>\\n..."}, {"from": "gpt", ...}], "image": "a.jpg"}  LLaVA
    {"prompt": [{"role": "user", "content": [{"type": "image"}, {"type": "text", ...}]}], "image": ..., "solution": ...}

Text-only rows (no image column) in the text data sets' schemas, the gold answer read as their authors read it:

    {"problem": "...", "answer": "\\frac{1}{2}", "solution": "..."}        DeepScaleR, MATH-500: `answer` is the gold
    {"problem": "...", "solution": "... \\boxed{\\frac{1}{2}}", "level": "Level 3", "type": "Algebra"}   MATH
    {"question": "...", "answer": "... reasoning ...\n#### 72"}                GSM8K: the number after ####

An example is {**the row's other columns, "image": one image | a list of several | None, "question": its text with
any `<image>` placeholders, "answer"}. An image is a file path (relative ones resolved against --image-dir and the
data's folder), PNG/JPEG bytes, or a PIL image; rows keep their images compressed and are decoded per batch.
"""

import io
import os
import re
from collections import Counter

import numpy as np
from PIL import Image, ImageOps
from tqdm import tqdm

from answer_checking import extract
from data_loading import sources
from data_loading.sources import DataError  # defined there, the lower module; loader.DataError for every caller

MIN_IMAGE_SIDE = 28  # Qwen2-VL: patch 14 x merge 2; a smaller side would be blown up from almost nothing
MAX_ASPECT_RATIO = 200  # the Qwen2-VL image processor refuses more
PLACEHOLDER = "<image>"  # where an image goes in the question (EasyR1, LLaVA, ViRL39K, Geometry3K)
# The columns a question, an answer and the images are looked for in, in this order (--question-key etc. override).
QUESTION_KEYS = ("question", "problem", "prompt", "messages", "conversations")
ANSWER_KEYS = ("answer", "solution")
IMAGE_KEYS = ("images", "image")
USER_ROLES, ASSISTANT_ROLES = ("user", "human"), ("assistant", "gpt")
GSM8K_ANSWER = re.compile(r"#### (\-?[0-9\.\,]+)")  # openai/grade-school-math dataset.py's ANS_RE


class TooManyImages(DataError):
    """A row with more images than --max-images: skipped and counted, never an error."""


# What to_rgb can turn into RGB: 1-bit, grey, palette, colour with or without alpha, CMYK, 16/32-bit and float grey
CONVERTIBLE_MODES = {"1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV",
                     "I", "I;16", "I;16L", "I;16B", "I;16N", "F"}


def check_image(image, where):
    """The image (a path, bytes or a PIL image) must exist, decode completely, have a mode to_rgb converts, and be
    large enough for the processor.

    JPEGs are decoded at a reduced scale (still every byte of the file, so truncation is caught): a 50-megapixel
    photo costs the check a few MB, not 150. Nothing decoded is kept.
    """
    if isinstance(image, Image.Image):
        width, height, mode, name = image.width, image.height, image.mode, "the image"
    else:
        name = image if isinstance(image, str) else f"embedded bytes ({len(image)} bytes)"
        if isinstance(image, str) and not os.path.isfile(image):
            raise DataError(where, "image file not found", image)
        try:
            with Image.open(image if isinstance(image, str) else io.BytesIO(image)) as opened:
                width, height = opened.size
                mode = opened.mode
                opened.draft("RGB", (max(1, width // 8), max(1, height // 8)))  # JPEG only; other formats ignore it
                opened.load()  # decodes: catches truncated files that a header check would miss
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
            why = "not an image file Pillow reads" if isinstance(error, Image.UnidentifiedImageError) else error
            raise DataError(where, "unreadable image", f"{name}: {why}") from None
    if mode not in CONVERTIBLE_MODES:
        raise DataError(where, "unsupported image mode", f"{name} has mode {mode}")
    if min(width, height) < MIN_IMAGE_SIDE:
        raise DataError(where, "image too small",
                        f"{name} is {width}x{height}, need at least {MIN_IMAGE_SIDE} px a side")
    if max(width, height) / min(width, height) > MAX_ASPECT_RATIO:
        raise DataError(where, "image aspect ratio too extreme", f"{name} is {width}x{height}")


def example_images(example):
    """An example's images as a list: [] for a text-only question, [image] for one, the list for several."""
    image = example.get("image")
    return [] if image is None else list(image) if isinstance(image, (list, tuple)) else [image]


# ----------------------------------------------------------------------------------------------------------
# One row of a published schema -> one example


def message_text(content, where):
    """A chat message's content as text: a string as it is; a list of parts (TRL, OpenAI style) joined, each image
    part becoming an `<image>` placeholder."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise DataError(where, "unreadable message content", f"a {type(content).__name__}, not text or parts")
    texts = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "image" or (isinstance(part, dict) and "image" in part and kind != "text"):
            texts.append(PLACEHOLDER)
        elif kind == "text":
            texts.append(part.get("text") or "")
        else:
            raise DataError(where, "unsupported message part", f"{part!r:.60}: only text and image parts")
    return "".join(texts)


def first_exchange(conversation, where):
    """(question, answer or None) of a conversation: its first user turn and the assistant turn after it.

    Roles as ShareGPT/LLaMA-Factory and TRL write them (role/content: user, assistant) or LLaVA (from/value:
    human, gpt); system turns are skipped (the method brings its own instruction)."""
    question = answer = None
    for turn in conversation:
        if not isinstance(turn, dict):
            raise DataError(where, "unreadable conversation", f"a turn is a {type(turn).__name__}, not an object")
        role = turn.get("role", turn.get("from"))
        content = turn.get("content", turn.get("value"))
        if question is None and role in USER_ROLES:
            question = message_text(content, where)
        elif question is not None and role in ASSISTANT_ROLES:
            answer = message_text(content, where)
            break
    if question is None:
        roles = [turn.get("role", turn.get("from")) for turn in conversation]
        raise DataError(where, "no user turn in the conversation", f"roles: {roles}")
    return question, answer


def gold_answer(column, answer):
    """The gold answer of an answer column: GSM8K's number after "#### " (commas removed, as openai/grade-school-math
    extract_answer reads it); a MATH `solution`'s last \\boxed{} content (the answer hendrycks/math's is_equiv
    compares); anything else as it is."""
    match = GSM8K_ANSWER.search(answer) if "####" in answer else None
    if match:
        return match.group(1).strip().replace(",", "")
    if column == "solution" and "\\boxed{" in answer:
        return extract.unwrap_boxed(answer)
    return answer


def _column(record, key, candidates, what, flag, where):
    """(column name, value) of the first of `candidates` the row has (`key` alone when the user named one)."""
    for name in [key] if key else candidates:
        if name in record and record[name] is not None:
            return name, record[name]
    looked = f"column {key!r}" if key else ", ".join(candidates)
    raise DataError(where, f"no {what} column",
                    f"looked for {looked}; the row has {', '.join(map(str, record)) or 'no columns'}; pass {flag}")


def _image_list(value, where):
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, (str, bytes, dict, Image.Image)):
        return [value]
    raise DataError(where, "unreadable image column", f"a {type(value).__name__}")


def resolve_image(image, where, image_dirs, archives=()):
    """One image entry -> what load_image takes: an absolute path, bytes, or a PIL image.

    {bytes, path} structs (parquet Image columns) give their bytes when they hold them, else their path. A relative
    path is looked for under each of `image_dirs` in turn (--image-dir first)."""
    if isinstance(image, dict):
        if image.get("bytes"):
            return bytes(image["bytes"])
        image = image.get("path")
    if isinstance(image, (bytes, bytearray)):
        return bytes(image)
    if isinstance(image, Image.Image):
        return image
    if not isinstance(image, str) or not image.strip():
        raise DataError(where, "empty or unreadable image entry", f"{image!r:.60}")
    if os.path.isabs(image):
        return image
    tried = []
    for folder in image_dirs:
        path = os.path.join(folder, image)
        if os.path.isfile(path):
            return os.path.abspath(path)
        tried.append(folder)
    hint = (f"; {', '.join(archives)} may hold it: unzip it there or pass --image-dir" if archives else
            "; pass --image-dir DIR, the folder it is relative to")
    raise DataError(where, "image file not found", f"{image} is not under {', '.join(tried)}{hint}")


def image_column(record, keys, where):
    """The row's image column (--image-key, else the first of IMAGE_KEYS it holds a value in); None: text-only."""
    if keys.get("image"):
        return _column(record, keys["image"], (), "image", "--image-key", where)[0]
    return next((k for k in IMAGE_KEYS if record.get(k) is not None), None)


def parse_example(record, where, image_dirs, keys=None, max_images=None, archives=()):
    """One row -> {**other columns, image, question, answer}; DataError naming `where` if it is unusable.

    `keys`: {"question": ..., "answer": ..., "image": ...} column overrides (None: look for the usual ones).
    Every image is resolved and checked (decoded at a reduced size, not kept)."""
    keys = keys or {}
    if not isinstance(record, dict):
        raise DataError(where, "not a JSON object", type(record).__name__)
    question_key, question = _column(record, keys.get("question"), QUESTION_KEYS, "question", "--question-key", where)
    answer = None
    if isinstance(question, list):  # a conversation: messages (ShareGPT), conversations (LLaVA), prompt (TRL)
        question, answer = first_exchange(question, where)
    used = {question_key}
    if keys.get("answer") or answer is None or any(record.get(k) is not None for k in ANSWER_KEYS):
        answer_key, answer = _column(record, keys.get("answer"), ANSWER_KEYS, "answer", "--answer-key", where)
        used.add(answer_key)
        answer = gold_answer(answer_key, answer) if isinstance(answer, str) else answer
    if isinstance(answer, (int, float)) and not isinstance(answer, bool):
        answer = str(answer)  # exports often store numeric labels as numbers
    for name, value in (("question", question), ("answer", answer)):
        if not isinstance(value, str) or not value.strip():
            raise DataError(where, f"empty or non-string '{name}'")
    image_key = image_column(record, keys, where)
    images = _image_list(record[image_key], where) if image_key else []
    used.add(image_key)  # None when the row has no image column: a text-only question
    if max_images is not None and len(images) > max_images:
        raise TooManyImages(where, f"more than {max_images} image{'s' if max_images != 1 else ''} (--max-images)")
    placeholders = question.count(PLACEHOLDER)
    if placeholders and placeholders != len(images):
        raise DataError(where, "<image> placeholders do not match the images",
                        f"{placeholders} in the question, {len(images)} image{'s' if len(images) != 1 else ''}")
    images = [resolve_image(image, where, image_dirs, archives) for image in images]
    for image in images:
        check_image(image, where)
    # other columns are kept (choices, level, ...), but not the empty alternatives a parquet shard's union holds
    extras = {k: v for k, v in record.items()
              if k not in used and not (v is None and k in QUESTION_KEYS + ANSWER_KEYS + IMAGE_KEYS)}
    image = None if not images else images[0] if len(images) == 1 else images
    return {**extras, "image": image, "question": question.strip(), "answer": answer.strip()}


# ----------------------------------------------------------------------------------------------------------
# Whole data sets


def read_examples(spec, split="train", skip_bad=False, image_dir=None, keys=None, max_images=None, rows_too=False):
    """Every example of --data `spec`, every row and image checked before training starts.

    The first bad row raises a DataError naming file and row; with `skip_bad`, bad rows are skipped and counted
    instead. Rows with more than `max_images` images are always skipped and counted.
    Returns (examples, {reason: count of skipped rows}), and with `rows_too` a third list: (where, the row as it is
    in the file) of each example (prepare_data.py writes them back).
    """
    source = sources.resolve(spec, split)
    examples, skipped, kept_rows = [], Counter(), []
    files = [(path, *sources.read_rows(path)) for path in source["files"]]
    total = sum(count for _, count, _ in files)
    bar = tqdm(total=total, desc=f"checking {os.path.basename(os.path.normpath(spec))}", leave=False,
               disable=total < 1000)
    for path, _, rows in files:
        folder = os.path.dirname(os.path.abspath(path))
        image_dirs = list(dict.fromkeys([*([image_dir] if image_dir else []), folder, *source["image_dirs"]]))
        while True:
            try:
                where, record = next(rows)
            except StopIteration:
                break
            except DataError as error:  # the file itself cannot be read further
                if not skip_bad:
                    raise
                skipped[error.reason] += 1
                break
            bar.update(1)
            try:
                if isinstance(record, DataError):
                    raise record
                examples.append(parse_example(record, where, image_dirs, keys, max_images, source["archives"]))
                if rows_too:
                    kept_rows.append((where, record))
            except DataError as error:
                if not skip_bad and not isinstance(error, TooManyImages):
                    raise
                skipped[error.reason] += 1
    bar.close()
    if not examples:
        raise DataError(spec, "no usable examples", ", ".join(f"{n} {r}" for r, n in skipped.items()))
    return (examples, dict(skipped), kept_rows) if rows_too else (examples, dict(skipped))


def load_jsonl(path, skip_bad=False):
    """read_examples of one file (the name from when --data read JSONL only)."""
    return read_examples(path, skip_bad=skip_bad)


# The options every script that reads --data takes (fast_grpo.py's Args, eval.py, prepare_data.py): name -> help
OPTIONS = {
    "image_dir": "folder relative image paths are looked for in first (then the data file's folder and the --data "
                 "folder)",
    "question_key": "column holding the question (default: the first of question, problem, prompt, messages, "
                    "conversations the data has)",
    "answer_key": "column holding the answer (default: answer or solution, else the conversation's assistant turn)",
    "image_key": "column holding the image(s) (default: images or image; a row without one is text-only)",
    "max_images": "skip (and count) questions with more images than this (default: no limit)",
}


def add_arguments(parser):
    """--image-dir, --question-key, --answer-key, --image-key, --max-images on an argparse parser."""
    for name, help in OPTIONS.items():
        parser.add_argument("--" + name.replace("_", "-"), type=int if name == "max_images" else str, default=None,
                            help=help)


def options(args):
    """The OPTIONS of parsed arguments (argparse or fast_grpo.Args) as load_examples keywords."""
    return {name: getattr(args, name) for name in OPTIONS}


def load_examples(spec, split="train", skip_bad=False, image_dir=None, question_key=None, answer_key=None,
                  image_key=None, max_images=None):
    """`spec` = a file, folder or hub dataset (data_loading/sources.py), or 'synthetic': the demo task's
    generator (train split or held-out test split). A split named in the spec (`DIR@test`) wins over `split`.

    Bad rows stop with a DataError, or with `skip_bad` are skipped and reported (counts per reason).
    """
    if spec == "synthetic":
        from data_loading import synthetic

        return synthetic.split(split)
    if max_images is not None and max_images < 0:
        raise DataError("--max-images", "must be 0 or more", str(max_images))
    keys = dict(question=question_key, answer=answer_key, image=image_key)
    examples, skipped = read_examples(spec, split, skip_bad, image_dir, keys, max_images)
    report_skipped(spec, skipped)
    return examples


def report_skipped(spec, skipped):
    """Print how many rows were skipped and why (nothing when none was)."""
    if skipped:
        print(f"skipped {sum(skipped.values())} rows of {spec}: "
              + ", ".join(f"{count} {reason}" for reason, count in sorted(skipped.items())))


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
    """An example's image as RGB (to_rgb): from its file or bytes, or as is when the example holds the image itself.

    With `max_pixels`, a larger image is shrunk (aspect kept) as it is decoded, so a 50-megapixel photo never
    reaches the processor at full size; the processor resizes it to its own grid anyway.
    """
    if isinstance(image, Image.Image):
        return shrink(to_rgb(image), max_pixels)
    if isinstance(image, dict):  # a {bytes, path} struct as a parquet Image column holds it
        image = image.get("bytes") or image["path"]
    with Image.open(io.BytesIO(image) if isinstance(image, (bytes, bytearray)) else image) as opened:
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
