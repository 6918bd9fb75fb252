"""The offline demo world: "what is the sum of the digits in the image?", with graded difficulty.

A 112x112 image is a 4x4 grid of 28x28 cells (with Qwen2-VL's patch 14 and merge 2: one image token per
cell); some cells hold a digit 1-9. Easy items have 1 digit (read it: nothing to think about), medium 3-4,
hard 5-8 (read them in order, then add with running sums: thinking step by step pays off). The starting model
(demo/make_model.py) answers at once with a glance estimate (`glance_estimate`): exact for one digit, to the
nearest 5 for several.

Digits are drawn light on a background of the image processor's mean colour: empty cells then normalise to
about 0, which keeps a tiny model from learning to ignore the image (measured: with black on white it did).

    python -m data_loading.synthetic --output-dir demo_data --split test   # export as JSONL + PNG
"""

import argparse
import functools
import json
import os
import random

from PIL import Image, ImageDraw, ImageFont

GRID, CELL = 4, 28
BACKGROUND = (123, 117, 104)  # ~ OPENAI_CLIP_MEAN * 255
DIGIT_COLOR = (255, 255, 255)
LEVELS = {"easy": (1, 1), "medium": (3, 4), "hard": (5, 8)}  # how many digits
QUESTION = "What is the sum of the digits in the image?"
SEEDS = {"train": 0, "test": 1_000_003}  # disjoint generators for training and the held-out test set
TEST_PER_LEVEL = 300


@functools.lru_cache(maxsize=1)
def font():
    return ImageFont.load_default(size=22)  # loading it is slower than drawing a whole image: load it once


def draw(cells):
    """cells: {cell index 0..15: digit} -> the 112x112 RGB image."""
    image = Image.new("RGB", (GRID * CELL, GRID * CELL), BACKGROUND)
    pen = ImageDraw.Draw(image)
    for index, digit in cells.items():
        row, col = divmod(index, GRID)
        pen.text((col * CELL + CELL // 2, row * CELL + CELL // 2), str(digit), fill=DIGIT_COLOR, font=font(), anchor="mm")
    return image


def make_item(rng, level):
    """One question of the given level: digits at random cells, read in row-major order."""
    low, high = LEVELS[level]
    positions = sorted(rng.sample(range(GRID * GRID), rng.randint(low, high)))
    cells = {position: rng.randint(1, 9) for position in positions}
    digits = [cells[p] for p in positions]
    return {"image": draw(cells), "question": QUESTION, "answer": str(sum(digits)), "level": level,
            "digits": digits}


def make_items(num_items, seed, levels=("easy", "medium", "hard")):
    """`num_items` items, levels in turn (a balanced mix), deterministic from `seed`."""
    rng = random.Random(seed)
    return [make_item(rng, levels[i % len(levels)]) for i in range(num_items)]


def split(name, num_items=None):
    """The training split (any size) or the fixed held-out test split (300 items per level)."""
    if name == "test":
        return make_items(num_items or TEST_PER_LEVEL * len(LEVELS), SEEDS["test"])
    return make_items(num_items or 3000, SEEDS["train"])


def long_reasoning(digits):
    """A deliberately verbose worked solution: read every digit, then add with running sums."""
    lines = [f"I look at the grid cell by cell. I see {len(digits)} digit{'s' if len(digits) > 1 else ''}: "
             + ", ".join(map(str, digits)) + "."]
    total = digits[0]
    lines.append(f"I start with {total}.")
    for digit in digits[1:]:
        lines.append(f"{total} + {digit} = {total + digit}.")
        total += digit
    lines.append(f"Let me check: the digits were {', '.join(map(str, digits))}, and the sum is {total}.")
    return " ".join(lines)


def glance_estimate(digits):
    """What an answer given at once says: one digit is simply read, but a sum of several is only estimated at a
    glance, to the nearest 5, so it is right only when the true sum is a multiple of 5. This is what makes
    thinking pay on medium and hard items and cost nothing on easy ones."""
    total = sum(digits)
    return str(total if len(digits) == 1 else 5 * round(total / 5))


def response(item, form):
    """The target response in the long (thinking: exact) or short (answer-only: a glance estimate) form."""
    if form == "long":
        return f"<think>{long_reasoning(item['digits'])}</think><answer>{item['answer']}</answer>"
    return f"<think></think><answer>{glance_estimate(item['digits'])}</answer>"


def export_jsonl(items, output_dir, name="data"):
    """Write items as PNG files plus `<name>.jsonl` (image, question, answer, level); returns the JSONL path."""
    os.makedirs(os.path.join(output_dir, "images"), exist_ok=True)
    path = os.path.join(output_dir, f"{name}.jsonl")
    with open(path, "w") as f:
        for i, item in enumerate(items):
            image_path = f"images/{name}-{i:05d}.png"
            item["image"].save(os.path.join(output_dir, image_path))
            f.write(json.dumps({"image": image_path, "question": item["question"], "answer": item["answer"],
                                "level": item["level"]}) + "\n")
    return path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m data_loading.synthetic", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", required=True, help="folder for <split>.jsonl and images/")
    parser.add_argument("--split", default="test", choices=["train", "test"], help="which split to export")
    parser.add_argument("--num-items", type=int, default=None, help="how many items (default: 3000 / 900)")
    args = parser.parse_args()
    print("wrote", export_jsonl(split(args.split, args.num_items), args.output_dir, args.split))
