"""Helpers several test files share (pytest's conftest.py holds the fixtures): a short training run, a checkpoint's
weights, a run's TensorBoard events as TensorBoard reads them, and small files in the published schemas of the
training data sets (Geometry3K, ViRL39K) and of MathVista."""

import io
import json
import os

import numpy as np
import pyarrow
import pyarrow.parquet
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from transformers import AutoModelForImageTextToText

import fast_grpo


def run(model_dir, dataset, output_dir, *flags, steps=2):
    fast_grpo.main(["--model", model_dir, "--data", dataset, "--output-dir", str(output_dir),
                    "--max-steps", str(steps), "--batch-size", "4", "--group-size", "4", "--max-new-tokens", "24",
                    "--lr", "1e-3", "--weight-decay", "0", "--save-every", "2", *flags])
    with open(os.path.join(output_dir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def weights(folder):
    return AutoModelForImageTextToText.from_pretrained(folder).state_dict()


def read_events(folder):
    """Every scalar ({tag: {step: value}}) and text ({tag: {step: text}}) of the event files in `folder`, as
    TensorBoard reads them (a purge_step hides the events it replaced); a step that appears twice fails."""
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    scalars = {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}
    texts = {tag: [(e.step, e.tensor_proto.string_val[0].decode()) for e in events.Tensors(tag)]
             for tag in events.Tags()["tensors"]}
    for tag, points in {**scalars, **texts}.items():
        steps = [step for step, _ in points]
        assert len(steps) == len(set(steps)), f"{tag}: steps {steps}"
    return {tag: dict(points) for tag, points in scalars.items()}, {tag: dict(points) for tag, points in texts.items()}


def assert_events_equal_metrics(folder, metrics):
    """Every number of every metrics.jsonl line is a scalar tagged `<group>/<its key>` at its step (TensorBoard
    keeps float32), and nothing else is: a step whose value is None has no point."""
    scalars = read_events(folder)[0]
    by_key = {tag.split("/", 1)[1]: points for tag, points in scalars.items()}
    assert len(by_key) == len(scalars)
    expected = {}
    for line in metrics:
        for key, value in line.items():
            if key != "step" and isinstance(value, (int, float)):
                expected.setdefault(key, {})[line["step"]] = float(np.float32(value))
    assert by_key == expected
    assert {"rewards/reward_mean", "difficulty/fraction_kept", "update/lr", "time/seconds"} <= set(scalars)


def png(seed, size=(56, 56)):
    """PNG bytes of a noise image (width, height)."""
    pixels = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def save_image(folder, relative, seed, size=(56, 56), fmt=None):
    path = os.path.join(folder, relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.open(io.BytesIO(png(seed, size))).save(path, format=fmt)
    return relative


def write_parquet(path, rows):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    columns = list(dict.fromkeys(k for row in rows for k in row))  # from_pylist takes the first row's columns only
    pyarrow.parquet.write_table(pyarrow.Table.from_pylist([{k: row.get(k) for k in columns} for row in rows]), path)
    return path


def write_json(path, rows, lines=False):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("".join(json.dumps(r) + "\n" for r in rows) if lines else json.dumps(rows))
    return path


def geometry3k_rows(count=2, start=0):
    """hiyouga/geometry3k: images = list of {bytes, path} (PNG embedded), problem starting with <image>."""
    return [{"images": [{"bytes": png(start + i, (56 + 28 * i, 56)), "path": None}],
             "problem": f"<image>Find x. Choices: A:{i} B:{2 * i}", "answer": "2 \\sqrt { 221 }",
             "choices": [str(i), str(2 * i)], "id": start + i, "ground_truth": "A"} for i in range(count)]


def virl39k_rows(folder):
    """TIGER-Lab/ViRL39K: image = list of relative paths (some rows two), <image> placeholders, \\boxed answers."""
    one = save_image(folder, "images/q0-0.jpg", 10, fmt="JPEG")
    two = [save_image(folder, "images/q1-0.jpg", 11, (84, 56), fmt="JPEG"),
           save_image(folder, "images/q1-1.jpg", 12, fmt="JPEG")]
    common = dict(category="(GradeSchool) Geometric", source="MMK12", PassRate_32BTrained=0.5)
    return [{"question": "<image>What is the angle ABC in degrees?", "answer": "\\boxed{60}", "image": [one],
             "qid": "q0", "PassRate_7BBase": 0.25, **common},
            {"question": "Which is larger, <image> or <image>?", "answer": "\\boxed{A}", "image": two, "qid": "q1",
             "PassRate_7BBase": None, **common}]


def embedded_png(seed, size=56):
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)).save(buffer, "PNG")
    return {"bytes": buffer.getvalue(), "path": f"{seed}.png"}


# MathVista testmini: pid, question, image, decoded_image, choices, unit, precision, answer, question_type,
# answer_type, metadata, query
def mathvista_row(pid, answer, question_type, answer_type, choices=None, precision=None):
    return dict(pid=pid, question="q", image=f"images/{pid}.jpg", decoded_image=embedded_png(int(pid)), choices=choices,
                unit=None, precision=precision, answer=answer, question_type=question_type, answer_type=answer_type,
                metadata={"source": "test"}, query=f"Question {pid}: what is it?")


def write_benchmark_parquet(path, rows):
    pyarrow.parquet.write_table(pyarrow.Table.from_pylist(rows), str(path))
    return str(path)


def sample_and_check_logprobs(model, processor, inputs, new_tokens):
    """Samples a response per row with generate (seed 0, T = 1, its scores kept) and checks that the training
    log-probs (vlm.token_logprobs) equal generate's on every response token, to 1e-4; returns (rollout, suppress)."""
    import vlm

    suppress, eos = vlm.vision_token_ids(model, processor), vlm.eos_token_ids(model, processor)
    torch.manual_seed(0)
    rollout = vlm.sample(model, processor, inputs, new_tokens, 1.0, suppress, eos, return_logprobs=True)
    with torch.no_grad():
        logp = vlm.token_logprobs(model, inputs, rollout["completion_ids"], rollout["response_mask"], 1.0, suppress)
    mask = rollout["response_mask"]
    assert mask.sum() > 6 and torch.where(mask, (logp - rollout["logprobs"]).abs(), 0.0).max() < 1e-4
    return rollout, suppress

