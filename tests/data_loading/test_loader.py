"""Reading JSONL data: both key styles, clear errors that name file and line, the seeded data order."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from data_loading import loader


def write(tmp_path, lines):
    Image.new("RGB", (32, 32)).save(tmp_path / "a.png")
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_both_key_styles_load_and_paths_resolve_next_to_the_file(tmp_path):
    path = write(tmp_path, [
        json.dumps({"image": "a.png", "question": "How many?", "answer": "3", "level": "easy"}),
        json.dumps({"images": ["a.png"], "problem": "<image>What color?", "answer": 5}),  # EasyR1
    ])
    (first, second), skipped = loader.load_jsonl(path)
    assert skipped == {}
    assert first == {"image": str(tmp_path / "a.png"), "question": "How many?", "answer": "3", "level": "easy"}
    # the placeholder stays in the question: it says where the image goes (vlm.prompt_content)
    assert second == {"image": str(tmp_path / "a.png"), "question": "<image>What color?", "answer": "5"}


def bad_images(tmp_path):
    Image.new("RGB", (20, 64)).save(tmp_path / "small.png")
    Image.new("RGB", (64, 64)).save(tmp_path / "full.png")
    (tmp_path / "truncated.png").write_bytes((tmp_path / "full.png").read_bytes()[:60])
    (tmp_path / "text.png").write_text("not an image")


BAD_LINES = [
    ("{not json", "malformed JSON"),
    (json.dumps(["a.png", "q", "3"]), "not a JSON object"),
    (json.dumps({"image": "a.png", "answer": "3"}), "no question column (looked for question, problem, prompt, "
     "messages, conversations; the row has image, answer; pass --question-key)"),
    (json.dumps({"image": "a.png", "question": "q"}), "no answer column (looked for answer, solution; the row has "
     "image, question; pass --answer-key)"),
    (json.dumps({"image": "a.png", "question": " ", "answer": "3"}), "empty or non-string 'question'"),
    (json.dumps({"image": "a.png", "question": "q", "answer": ""}), "empty or non-string 'answer'"),
    (json.dumps({"image": "missing.png", "question": "q", "answer": "3"}), "image file not found"),
    (json.dumps({"images": ["a.png", "a.png"], "question": "<image>q", "answer": "3"}),
     "<image> placeholders do not match the images (1 in the question, 2 images)"),
    (json.dumps({"question": "<image>q", "answer": "3"}), "<image> placeholders do not match the images (1 in the "
     "question, 0 images)"),
    (json.dumps({"image": "truncated.png", "question": "q", "answer": "3"}), "unreadable image"),
    (json.dumps({"image": "text.png", "question": "q", "answer": "3"}), "unreadable image"),
    (json.dumps({"image": "small.png", "question": "q", "answer": "3"}), "image too small"),
]


@pytest.mark.parametrize("bad_line, message", BAD_LINES)
def test_a_bad_line_names_file_and_line(tmp_path, bad_line, message):
    good = json.dumps({"image": "a.png", "question": "q", "answer": "3"})
    path = write(tmp_path, [good, bad_line])
    bad_images(tmp_path)
    with pytest.raises(loader.DataError) as error:
        loader.load_jsonl(path)
    assert str(error.value).startswith(f"{path}:2: {message}")


def test_skip_bad_examples_counts_every_reason(tmp_path):
    good = json.dumps({"image": "a.png", "question": "q", "answer": "3"})
    path = write(tmp_path, [good] + [line for line, _ in BAD_LINES] + [good])
    bad_images(tmp_path)
    examples, skipped = loader.load_jsonl(path, skip_bad=True)
    assert len(examples) == 2
    assert skipped["unreadable image"] == 2 and skipped["malformed JSON"] == 1
    assert sum(skipped.values()) == len(BAD_LINES)


def test_training_on_bad_data_exits_2_with_one_line(tmp_path, capsys):
    import fast_grpo

    path = write(tmp_path, [json.dumps({"image": "a.png", "question": "q", "answer": "3"}), "{oops"])
    with pytest.raises(SystemExit) as exit_info:
        fast_grpo.main(["--model", "Qwen/Qwen2-VL-2B-Instruct", "--data", path, "--output-dir", str(tmp_path / "run")])
    assert exit_info.value.code == 2
    expected = f"error: {path}:2: malformed JSON (Expecting property name enclosed in double quotes)"
    assert capsys.readouterr().err.strip() == expected


def test_batch_order_is_a_seeded_permutation_per_epoch():
    steps = [loader.batch_indices(10, 4, step, seed=1) for step in range(5)]  # 20 positions = 2 epochs
    flat = [i for batch in steps for i in batch]
    assert sorted(flat[:10]) == list(range(10)) and sorted(flat[10:]) == list(range(10))
    assert flat[:10] != flat[10:]  # each epoch is shuffled anew
    assert loader.batch_indices(10, 4, 3, seed=1) == steps[3]  # a pure function of (step, seed): resumable
    assert loader.batch_indices(10, 4, 0, seed=2) != steps[0]


# ------------------------------------------------------------------------------------------------------------------
# Images as they come: every kind below becomes the RGB picture an image viewer shows


def image_kinds(folder):
    """{kind: (file name, the RGB colour of its top-left pixel once loaded, its (width, height) once loaded)}."""
    Image.new("L", (64, 48), 200).save(folder / "grey.png")
    transparent = Image.new("RGBA", (64, 48), (0, 0, 0, 0))  # fully transparent pixels that hold black
    transparent.paste((255, 0, 0, 255), (32, 0, 64, 48))
    transparent.save(folder / "rgba.png")
    palette = Image.new("P", (64, 48), 1)
    palette.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    palette.save(folder / "palette.png", transparency=1)  # palette entry 1 (blue) is transparent
    Image.fromarray(np.full((48, 64), 32768, dtype=np.uint16)).save(folder / "sixteen_bit.png")
    Image.new("CMYK", (64, 48), (0, 255, 255, 0)).save(folder / "cmyk.jpg", quality=95)  # red in CMYK
    rotated = Image.new("RGB", (64, 32), (0, 128, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to view
    rotated.save(folder / "rotated.jpg", exif=exif, quality=95)
    frames = [Image.new("RGB", (64, 48), (255, 0, 0)), Image.new("RGB", (64, 48), (0, 0, 255))]
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:], duration=100)
    return {"grey": ("grey.png", (200, 200, 200), (64, 48)),
            "RGBA": ("rgba.png", (255, 255, 255), (64, 48)),  # transparent -> white, not the black it holds
            "palette": ("palette.png", (255, 255, 255), (64, 48)),
            "16-bit": ("sixteen_bit.png", (128, 128, 128), (64, 48)),  # half scale, not clipped to white
            "CMYK": ("cmyk.jpg", (255, 0, 0), (64, 48)),
            "EXIF-rotated": ("rotated.jpg", (0, 128, 0), (32, 64)),  # shown upright: width and height swap
            "animated GIF": ("animated.gif", (255, 0, 0), (64, 48))}  # the first frame


def test_every_kind_of_image_loads_as_it_looks(tmp_path):
    for kind, (name, colour, size) in image_kinds(tmp_path).items():
        loader.check_image(str(tmp_path / name), kind)  # the up-front check accepts it
        image = loader.load_image(str(tmp_path / name))
        assert image.mode == "RGB" and image.size == size, kind
        assert np.abs(np.subtract(image.getpixel((0, 0)), colour)).max() <= 3, (kind, image.getpixel((0, 0)))


def test_a_tiny_jpeg_is_reported_too_small(tmp_path):
    Image.new("RGB", (5, 40)).save(tmp_path / "tiny.jpg")  # under 8 px: no reduced-scale decode is possible
    with pytest.raises(loader.DataError, match="image too small"):
        loader.check_image(str(tmp_path / "tiny.jpg"), "tiny")


def test_a_50_megapixel_photo_is_shrunk_as_it_is_decoded(tmp_path):
    Image.new("RGB", (8200, 6100), (90, 140, 30)).save(tmp_path / "huge.jpg", quality=80)  # 50 megapixels
    loader.check_image(str(tmp_path / "huge.jpg"), "huge")
    image = loader.load_image(str(tmp_path / "huge.jpg"), max_pixels=224 * 224)
    assert image.width * image.height <= 224 * 224
    assert abs(image.width / image.height - 8200 / 6100) < 0.02  # the aspect ratio is kept
    assert loader.load_image(image, max_pixels=None).size == image.size  # no limit: unchanged


def test_training_takes_every_kind_of_image(warm_model_dir, tmp_path):
    import fast_grpo

    kinds = image_kinds(tmp_path)
    Image.new("RGB", (3000, 2000), (250, 250, 250)).save(tmp_path / "large.jpg")  # shrunk to the model's maximum
    names = [name for name, _, _ in kinds.values()] + ["large.jpg"]
    path = write(tmp_path, [json.dumps({"image": name, "question": "What is 3+4?", "answer": "7"}) for name in names])
    fast_grpo.main(["--model", warm_model_dir, "--data", path, "--output-dir", str(tmp_path / "run"),
                    "--max-steps", "1", "--batch-size", str(len(names)), "--group-size", "2",
                    "--max-new-tokens", "8"])
    assert os.path.isdir(tmp_path / "run" / "checkpoint-1")
