"""--data on the published schemas, as their files come: Geometry3K, ViRL39K, ShareGPT, LLaVA, TRL, text-only rows.

Each builder below writes a few rows in one schema, with the column names and value types of the real data set.
"""

import json
import os
import zipfile

import pytest

from data_loading import loader
import fast_grpo
from helpers import geometry3k_rows, png, save_image, virl39k_rows, write_json, write_parquet


def sharegpt_rows(folder):
    """LLaMA-Factory's ShareGPT format: messages with role/content (a system turn first) and images."""
    return [{"messages": [{"role": "system", "content": "You are helpful."},
                          {"role": "user", "content": "<image>How many circles?"},
                          {"role": "assistant", "content": "3"}],
             "images": [save_image(folder, "sharegpt/c.png", 20)]}]


def llava_rows(image_folder):
    """LLaVA: conversations with from/value (human, gpt) and one image path, relative to an image folder."""
    return [{"id": "000000033471", "image": save_image(image_folder, "coco/train2017/000000033471.jpg", 30,
                                                       fmt="JPEG"),
             "conversations": [{"from": "human", "value": "<image>\nWhat colour is the bus?"},
                               {"from": "gpt", "value": "white"}, {"from": "human", "value": "And the sky?"},
                               {"from": "gpt", "value": "blue"}]}]


def trl_rows(folder, embedded=True):
    """TRL's conversational prompt (content parts with an image part), image or images, solution or answer."""
    def image(seed):
        return {"bytes": png(seed), "path": None} if embedded else save_image(folder, f"trl/{seed}.png", seed)

    prompt = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is 2+2?"}]}]
    return [{"prompt": prompt, "image": image(40), "solution": "4"},
            {"prompt": [{"role": "user", "content": [{"type": "text", "text": "Compare"}, {"type": "image"},
                                                     {"type": "text", "text": "with"}, {"type": "image"}]}],
             "images": [image(41), image(42)], "answer": "same"}]


def text_only_rows():
    """Text-only rows as RL data mixes hold them: no image column, or an empty one."""
    return [{"question": "What is 3+4?", "answer": "7"}, {"question": "What is 1+1?", "answer": "2", "images": []}]


@pytest.fixture(scope="module")
def mixed_folder(tmp_path_factory):
    """One folder, one parquet shard per schema (all in the train split): what the training step reads."""
    folder = str(tmp_path_factory.mktemp("mixed"))
    shards = {"geometry3k": geometry3k_rows(1), "virl39k": virl39k_rows(folder), "sharegpt": sharegpt_rows(folder),
              "llava": llava_rows(folder), "trl": trl_rows(folder), "text": text_only_rows()}
    for name, rows in shards.items():
        write_parquet(os.path.join(folder, f"train-{name}.parquet"), rows)
    return folder


def by_question(examples):
    return {e["question"]: e for e in examples}


def test_every_schema_reads_into_question_answer_images(mixed_folder):
    examples = by_question(loader.load_examples(mixed_folder))
    assert len(examples) == 9
    geometry = examples["<image>Find x. Choices: A:0 B:0"]
    assert geometry["image"] == geometry3k_rows(1)[0]["images"][0]["bytes"]  # the embedded PNG, still compressed
    assert (geometry["answer"], geometry["choices"], geometry["ground_truth"]) == ("2 \\sqrt { 221 }", ["0", "0"], "A")
    pair = examples["Which is larger, <image> or <image>?"]
    assert pair["image"] == [os.path.join(mixed_folder, "images/q1-0.jpg"),
                             os.path.join(mixed_folder, "images/q1-1.jpg")]
    assert (pair["answer"], pair["qid"], pair["PassRate_7BBase"]) == ("\\boxed{A}", "q1", None)  # extra columns kept
    assert examples["<image>How many circles?"]["answer"] == "3"  # ShareGPT: the assistant turn; system skipped
    llava = examples["<image>\nWhat colour is the bus?"]
    assert llava["answer"] == "white" and llava["id"] == "000000033471"  # the first exchange of the conversation
    assert examples["<image>What is 2+2?"]["answer"] == "4"  # TRL: image parts become placeholders; solution
    compare = examples["Compare<image>with<image>"]
    assert compare["answer"] == "same" and len(compare["image"]) == 2
    assert examples["What is 3+4?"]["image"] is None and examples["What is 3+4?"]["answer"] == "7"
    assert examples["What is 1+1?"]["image"] is None
    assert all("messages" not in e and "conversations" not in e and "prompt" not in e for e in examples.values())


def test_the_native_json_files_read_as_their_parquet_shards(mixed_folder, tmp_path):
    """ShareGPT and LLaVA as the JSON lists their tools write, TRL as JSONL with paths: the same examples."""
    parquet = by_question(loader.load_examples(mixed_folder))
    sharegpt = write_json(str(tmp_path / "sharegpt.json"), sharegpt_rows(str(tmp_path)))
    llava = write_json(str(tmp_path / "llava" / "llava_instruct.json"), llava_rows(str(tmp_path / "coco-root")))
    trl = write_json(str(tmp_path / "trl.jsonl"), trl_rows(str(tmp_path), embedded=False), lines=True)
    for path, extra in ((sharegpt, []), (llava, ["--image-dir", str(tmp_path / "coco-root")]), (trl, [])):
        options = {"image_dir": extra[1]} if extra else {}
        for example in loader.load_examples(path, **options):
            twin = parquet[example["question"]]
            assert {k: v for k, v in example.items() if k != "image"} == {k: v for k, v in twin.items() if k != "image"}
            assert len(loader.example_images(example)) == len(loader.example_images(twin))
            assert all(os.path.isabs(p) and os.path.isfile(p) for p in loader.example_images(example))


def test_one_shard_of_two_schemas(tmp_path):
    """A parquet file of ShareGPT and plain rows: each row's missing columns are nulls, which do not count."""
    path = write_parquet(str(tmp_path / "train.parquet"), sharegpt_rows(str(tmp_path)) + text_only_rows())
    examples = loader.load_examples(path)
    assert [(e["question"], e["answer"]) for e in examples] == [
        ("<image>How many circles?", "3"), ("What is 3+4?", "7"), ("What is 1+1?", "2")]
    assert all(set(e) == {"image", "question", "answer"} for e in examples)


def test_column_overrides_and_max_images(tmp_path, capsys):
    save_image(str(tmp_path), "a.png", 1)
    rows = [{"query": "<image>Name it.", "label": "cat", "picture": "a.png", "level": "easy"},
            {"query": "<image><image>Two?", "label": "dog", "picture": ["a.png", "a.png"]}]
    path = write_json(str(tmp_path / "odd.jsonl"), rows, lines=True)
    keys = dict(question_key="query", answer_key="label", image_key="picture")
    examples = loader.load_examples(path, **keys)
    assert [e["answer"] for e in examples] == ["cat", "dog"] and examples[0]["level"] == "easy"
    (only,) = loader.load_examples(path, max_images=1, **keys)  # skipped and counted, without --skip-bad-examples
    assert only["answer"] == "cat"
    assert f"skipped 1 rows of {path}: 1 more than 1 image (--max-images)" in capsys.readouterr().out
    with pytest.raises(loader.DataError,
                       match=r"no image column \(looked for column 'photo'; the row has query, label"):
        loader.load_examples(path, question_key="query", answer_key="label", image_key="photo")


def test_a_folder_reads_its_split(tmp_path):
    write_parquet(str(tmp_path / "data" / "train-00000-of-00001.parquet"), geometry3k_rows(2))
    write_parquet(str(tmp_path / "data" / "test-00000-of-00001.parquet"), geometry3k_rows(1, start=5))
    (tmp_path / "README.md").write_text("a dataset card")
    assert [e["id"] for e in loader.load_examples(str(tmp_path))] == [0, 1]
    assert [e["id"] for e in loader.load_examples(str(tmp_path), split="test")] == [5]  # eval.py's default split
    assert [e["id"] for e in loader.load_examples(f"{tmp_path}@test")] == [5]  # a split in the spec wins
    with pytest.raises(loader.DataError, match="no 'validation' split \\(its data files make up: test, train"):
        loader.load_examples(f"{tmp_path}@validation")


# ------------------------------------------------------------------------------------------------------------------
# Bad data: one line `error: FILE:ROW: what is wrong`, exit 2


def one_line(capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        fast_grpo.main(["--model", "Qwen/Qwen2-VL-2B-Instruct", "--output-dir", "/nonexistent/run", *argv])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and len(err.splitlines()) == 1, err
    return err


def test_bad_data_gives_one_line(tmp_path, capsys):
    rows = geometry3k_rows(2)
    rows[1]["images"][0]["bytes"] = b"not a png"
    path = write_parquet(str(tmp_path / "bytes" / "train.parquet"), rows)
    assert one_line(capsys, ["--data", path]) == (
        f"error: {path}:2: unreadable image (embedded bytes (9 bytes): not an image file Pillow reads)")

    path = write_parquet(str(tmp_path / "columns" / "train.parquet"), [{"query": "q", "answer": "1", "id": 3}])
    assert one_line(capsys, ["--data", path]) == (
        f"error: {path}:1: no question column (looked for question, problem, prompt, messages, conversations; the "
        "row has query, answer, id; pass --question-key)")

    path = tmp_path / "fake.parquet"
    path.write_text('{"question": "q", "answer": "1"}\n')
    assert one_line(capsys, ["--data", str(path)]).startswith(f"error: {path}: not a parquet file (")

    path = write_json(str(tmp_path / "llava" / "llava.json"), [{"image": "coco/x.jpg", "conversations": [
        {"from": "human", "value": "<image>q"}, {"from": "gpt", "value": "a"}]}])
    images = str(tmp_path / "images")
    assert one_line(capsys, ["--data", path, "--image-dir", images]) == (
        f"error: {path}:1: image file not found (coco/x.jpg is not under {images}, {tmp_path / 'llava'}; pass "
        "--image-dir DIR, the folder it is relative to)")


def test_an_image_archive_left_zipped_is_named(tmp_path, capsys):
    folder = tmp_path / "ViRL39K"
    rows = virl39k_rows(str(tmp_path / "unpacked"))
    write_parquet(str(folder / "39Krelease.parquet"), rows)
    with zipfile.ZipFile(folder / "images.zip", "w") as archive:
        for name in os.listdir(tmp_path / "unpacked" / "images"):
            archive.write(tmp_path / "unpacked" / "images" / name, f"images/{name}")
    err = one_line(capsys, ["--data", str(folder)])
    assert err == (f"error: {folder / '39Krelease.parquet'}:1: image file not found (images/q0-0.jpg is not under "
                   f"{folder}; {folder / 'images.zip'} may hold it: unzip it there or pass --image-dir)")
    with zipfile.ZipFile(folder / "images.zip") as archive:  # as the line says
        archive.extractall(folder)
    assert len(loader.load_examples(str(folder))) == 2


def test_skip_bad_examples_skips_and_counts(tmp_path, capsys):
    rows = geometry3k_rows(3)
    rows[0]["images"][0]["bytes"] = b"GIF89a broken"
    rows[1]["problem"] = "<image><image>Two placeholders, one image"
    path = write_parquet(str(tmp_path / "train.parquet"), rows)
    (good,) = loader.load_examples(path, skip_bad=True)
    assert good["id"] == 2
    assert capsys.readouterr().out.strip() == (f"skipped 2 rows of {path}: 1 <image> placeholders do not match the "
                                               "images, 1 unreadable image")


# ------------------------------------------------------------------------------------------------------------------
# One training step on every schema: all nine rows of mixed_folder in one batch (0, 1 and 2 images per question)


def test_one_training_step_on_every_schema(warm_model_dir, mixed_folder, tmp_path, capsys):
    fast_grpo.main(["--model", warm_model_dir, "--data", mixed_folder, "--output-dir", str(tmp_path),
                    "--max-steps", "1", "--batch-size", "9", "--group-size", "2", "--max-new-tokens", "8"])
    assert f"9 questions from {mixed_folder}" in capsys.readouterr().out
    assert loader.batch_indices(9, 9, 0, seed=0) != list(range(9))  # a shuffled batch, and ...
    assert sorted(loader.batch_indices(9, 9, 0, seed=0)) == list(range(9))  # ... every question is in it
    (metrics,) = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert metrics["step"] == 1 and os.path.isdir(tmp_path / "checkpoint-1")


def test_text_data_sets_gold_answers_as_their_authors_read_them(tmp_path):
    """DeepScaleR (problem, answer, solution): the `answer`; MATH (problem, solution): its last \\boxed{}; GSM8K
    (question, answer): the number after '#### ', commas removed. No image: text-only questions."""
    rows = [{"problem": "Find $x$.", "answer": "\\frac{1}{2}", "solution": "So $x = \\boxed{\\frac{1}{2}}$."},
            {"problem": "Compute $2+3$.", "solution": "We get $\\boxed{5}$ and not \\boxed{6}... so $\\boxed{5}$.",
             "level": "Level 1", "type": "Prealgebra"},
            {"question": "How many clips?", "answer": "48/2 = <<48/2=24>>24 in May.\n48+24 = <<48+24=72>>72\n#### 1,072"}]
    examples = loader.load_examples(write_json(str(tmp_path / "text.jsonl"), rows, lines=True))
    assert [e["answer"] for e in examples] == ["\\frac{1}{2}", "5", "1072"]
    assert examples[0]["solution"] == rows[0]["solution"] and examples[1]["level"] == "Level 1"
    assert [e["question"] for e in examples] == ["Find $x$.", "Compute $2+3$.", "How many clips?"]
    assert all(e["image"] is None for e in examples)
    assert loader.gold_answer("answer", "\\boxed{2}") == "\\boxed{2}"  # only a `solution` column is unboxed
