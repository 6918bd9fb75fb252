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
    (first, second), skipped = data.load_jsonl(path)
    assert skipped == {}
    assert first == {"image": str(tmp_path / "a.png"), "question": "How many?", "answer": "3", "level": "easy"}
    assert second["question"] == "What color?" and second["answer"] == "5"


def bad_images(tmp_path):
    Image.new("RGB", (20, 64)).save(tmp_path / "small.png")
    Image.new("RGB", (64, 64)).save(tmp_path / "full.png")
    (tmp_path / "truncated.png").write_bytes((tmp_path / "full.png").read_bytes()[:60])
    (tmp_path / "text.png").write_text("not an image")


BAD_LINES = [
    ("{not json", "malformed JSON"),
    (json.dumps(["a.png", "q", "3"]), "not a JSON object"),
    (json.dumps({"image": "a.png", "answer": "3"}), "missing key 'question'"),
    (json.dumps({"image": "a.png", "question": " ", "answer": "3"}), "empty or non-string 'question'"),
    (json.dumps({"image": "a.png", "question": "q", "answer": ""}), "empty or non-string 'answer'"),
    (json.dumps({"image": "missing.png", "question": "q", "answer": "3"}), "image file not found"),
    (json.dumps({"images": ["a.png", "a.png"], "question": "q", "answer": "3"}), "expected exactly one image"),
    (json.dumps({"image": "truncated.png", "question": "q", "answer": "3"}), "unreadable image"),
    (json.dumps({"image": "text.png", "question": "q", "answer": "3"}), "unreadable image"),
    (json.dumps({"image": "small.png", "question": "q", "answer": "3"}), "image too small"),
]


@pytest.mark.parametrize("bad_line, message", BAD_LINES)
def test_a_bad_line_names_file_and_line(tmp_path, bad_line, message):
    good = json.dumps({"image": "a.png", "question": "q", "answer": "3"})
    path = write(tmp_path, [good, bad_line])
    bad_images(tmp_path)
    with pytest.raises(data.DataError) as error:
        data.load_jsonl(path)
    assert str(error.value).startswith(f"{path}:2: {message}")


def test_skip_bad_examples_counts_every_reason(tmp_path):
    good = json.dumps({"image": "a.png", "question": "q", "answer": "3"})
    path = write(tmp_path, [good] + [line for line, _ in BAD_LINES] + [good])
    bad_images(tmp_path)
    examples, skipped = data.load_jsonl(path, skip_bad=True)
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
    steps = [data.batch_indices(10, 4, step, seed=1) for step in range(5)]  # 20 positions = 2 epochs
    flat = [i for batch in steps for i in batch]
    assert sorted(flat[:10]) == list(range(10)) and sorted(flat[10:]) == list(range(10))
    assert flat[:10] != flat[10:]  # each epoch is shuffled anew
    assert data.batch_indices(10, 4, 3, seed=1) == steps[3]  # a pure function of (step, seed): resumable
    assert data.batch_indices(10, 4, 0, seed=2) != steps[0]
