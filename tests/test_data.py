"""Reading JSONL data: both key styles, clear errors that name file and line, the seeded data order."""

import json

import pytest
from PIL import Image

import data


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
    first, second = data.load_jsonl(path)
    assert first == {"image": str(tmp_path / "a.png"), "question": "How many?", "answer": "3", "level": "easy"}
    assert second["question"] == "What color?" and second["answer"] == "5"


@pytest.mark.parametrize("bad_line, message", [
    ("{not json", "malformed JSON"),
    (json.dumps({"image": "a.png", "answer": "3"}), "missing key 'question'"),
    (json.dumps({"image": "a.png", "question": " ", "answer": "3"}), "'question' must be a non-empty string"),
    (json.dumps({"image": "missing.png", "question": "q", "answer": "3"}), "image file not found"),
    (json.dumps({"images": ["a.png", "a.png"], "question": "q", "answer": "3"}), "exactly one image"),
])
def test_a_bad_line_names_file_and_line(tmp_path, bad_line, message):
    good = json.dumps({"image": "a.png", "question": "q", "answer": "3"})
    path = write(tmp_path, [good, bad_line])
    with pytest.raises(data.DataError) as error:
        data.load_jsonl(path)
    assert str(error.value).startswith(f"{path}:2: ")
    assert message in str(error.value)


def test_batch_order_is_a_seeded_permutation_per_epoch():
    steps = [data.batch_indices(10, 4, step, seed=1) for step in range(5)]  # 20 positions = 2 epochs
    flat = [i for batch in steps for i in batch]
    assert sorted(flat[:10]) == list(range(10)) and sorted(flat[10:]) == list(range(10))
    assert flat[:10] != flat[10:]  # each epoch is shuffled anew
    assert data.batch_indices(10, 4, 3, seed=1) == steps[3]  # a pure function of (step, seed): resumable
    assert data.batch_indices(10, 4, 0, seed=2) != steps[0]
