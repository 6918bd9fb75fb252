"""Shared fixtures: a tiny random Qwen2-VL checkpoint, a small JSONL data set, and a warm-started copy; a tiny
random text-only Qwen2 checkpoint and a text-only data set."""

import json
import random

import numpy as np
import pytest
import torch
from PIL import Image

# The tiny models' operations are so small that a second OpenMP thread only adds synchronisation cost
# (measured here: 8 ms instead of 0.02 ms per element-wise op when the other core is busy).
torch.set_num_threads(1)

SIZES = [(56, 56), (84, 112), (112, 112)]  # (height, width): different images give different token counts


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    from demo import tiny_model

    return tiny_model.build_tiny_model(str(tmp_path_factory.mktemp("tiny-qwen2-vl")), seed=0)


@pytest.fixture(scope="session")
def tiny_text_model_dir(tmp_path_factory):
    """A tiny random text-only Qwen2ForCausalLM (the class of Qwen2.5 and DeepSeek-R1-Distill-Qwen)."""
    from demo import tiny_model

    return tiny_model.build_tiny_model(str(tmp_path_factory.mktemp("tiny-qwen2")), seed=0, arch="qwen2")


@pytest.fixture(scope="session")
def text_dataset(tmp_path_factory):
    """Eight text-only rows in DeepScaleR's schema (problem, answer, solution)."""
    path = tmp_path_factory.mktemp("text-data") / "deepscaler.jsonl"
    with open(path, "w") as f:
        for i in range(8):
            f.write(json.dumps({"problem": f"What is {i}+1?", "answer": str(i + 1),
                                "solution": f"${i}+1={i + 1}$, so the answer is $\\boxed{{{i + 1}}}$."}) + "\n")
    return str(path)


def write_dataset(folder, num_examples=8, answer=None):
    """num_examples noise images of three sizes with 'What is i+1?' questions; returns the JSONL path."""
    rng = np.random.default_rng(0)
    (folder / "images").mkdir()
    with open(folder / "train.jsonl", "w") as f:
        for i in range(num_examples):
            h, w = SIZES[i % len(SIZES)]
            Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(folder / f"images/{i}.png")
            f.write(json.dumps({"image": f"images/{i}.png", "question": f"What is {i}+1?",
                                "answer": answer or str(i + 1)}) + "\n")
    return str(folder / "train.jsonl")


@pytest.fixture(scope="session")
def dataset(tmp_path_factory):
    """Every answer is 7, so a warm-started model gets it right only some of the time."""
    return write_dataset(tmp_path_factory.mktemp("data"), answer="7")


def warm_up(model_dir, dataset, output_dir, steps=200):
    """`model_dir` after `steps` supervised steps on well-formed responses whose answer is right half the time
    (for every prompt preset), so that GRPO's groups have rewards that differ; saved to `output_dir`."""
    from data_loading import loader
    from demo import warm_start
    from machinery import loading
    import methods
    import vlm

    torch.manual_seed(0)
    rng = random.Random(0)
    processor = loading.load_processor(model_dir)
    model = loading.load_model(model_dir)
    examples = loader.load_examples(dataset)
    images = [loader.load_image(e["image"]) for e in examples]
    forms = {"fast": "<think>{r}</think><answer>{a}</answer>", "thinking": "<think>{r}</think><answer>{a}</answer>",
             "no-thinking": "{a}", "think-after-answer": "<answer>{a}</answer><reason>{r}</reason>"}

    def make_batch(step):
        prompts, batch_images, targets = [], [], []
        for _ in range(8):
            i, prompt = rng.randrange(len(examples)), rng.choice(sorted(forms))
            answer = examples[i]["answer"] if rng.random() < 0.5 else str(rng.randint(1, 9))
            prompts.append(vlm.chat_prompt(processor, examples[i]["question"], methods.PROMPTS[prompt]))
            batch_images.append(images[i])
            targets.append(forms[prompt].format(r="so" * rng.randint(0, 3), a=answer))
        return prompts, batch_images, targets

    warm_start.supervised_finetune(model, processor, make_batch, steps=steps, lr=5e-3)
    model.save_pretrained(output_dir)
    processor.save_pretrained(output_dir)
    return output_dir


@pytest.fixture(scope="session")
def warm_model_dir(tiny_model_dir, dataset, tmp_path_factory):
    """The tiny Qwen2-VL after 200 supervised steps (warm_up)."""
    return warm_up(tiny_model_dir, dataset, str(tmp_path_factory.mktemp("warm-qwen2-vl")))
