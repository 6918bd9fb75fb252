"""Several images per question, and none: where they go in the prompt, how rows keep them, and that training's
forward pass recomputes exactly what `generate` sampled."""

import numpy as np
import pytest
import torch
from PIL import Image

from data_loading import loader, synthetic
from machinery import loading
import methods
import vlm

IMAGE = {"type": "image"}


def text(t):
    return {"type": "text", "text": t}


def test_images_go_where_the_placeholders_are():
    assert vlm.prompt_content("What is x?", "Think.", 1) == [IMAGE, text("What is x? Think.")]  # as before
    assert vlm.prompt_content("What is x?", "Think.", 2) == [IMAGE, IMAGE, text("What is x? Think.")]
    assert vlm.prompt_content("What is x?", "Think.", 0) == [text("What is x? Think.")]  # text-only
    assert vlm.prompt_content("<image>Find x.", "Think.", 1) == [IMAGE, text("Find x. Think.")]
    assert vlm.prompt_content(" Is <image> larger than <image>?", "", 2) == [
        text("Is "), IMAGE, text(" larger than "), IMAGE, text("?")]  # text between images kept as it is
    assert vlm.prompt_content("Compare<image><image>", "Think.", 2) == [text("Compare"), IMAGE, IMAGE, text("Think.")]
    with pytest.raises(ValueError, match="1 <image> placeholders for 2 images"):
        vlm.prompt_content("<image> q", "", 2)


@pytest.fixture(scope="module")
def processor_and_model(tiny_model_dir):
    return loading.load_processor(tiny_model_dir), loading.load_model(tiny_model_dir)


def noise(height, width, seed):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8))


def mixed_examples():
    """A two-image question (4 and 12 image tokens), a text-only one, and a one-image one (16 tokens)."""
    return [{"question": "Is <image> brighter than <image>?", "answer": "yes", "image": [noise(56, 56, 0),
                                                                                         noise(84, 112, 1)]},
            {"question": "What is 3+4?", "answer": "7", "image": None},
            {"question": "<image>What is 1+1?", "answer": "2", "image": noise(112, 112, 2)}]


def test_one_image_per_row_encodes_exactly_as_before(processor_and_model):
    """The demo's path: encode_questions gives the very tensors of the code it replaced."""
    processor, _ = processor_and_model
    batch = synthetic.make_items(3, seed=0)
    instruction = methods.PROMPTS["fast"]
    before = vlm.encode(processor, [vlm.chat_prompt(processor, e["question"], instruction) for e in batch],
                        [loader.load_image(e["image"]) for e in batch])
    after, images = vlm.encode_questions(processor, batch, instruction)
    assert list(after) == list(before) and all(torch.equal(after[k], before[k]) for k in before)
    assert [len(i) for i in images] == [1, 1, 1]
    rows = [0, 0, 1, 2, 2]
    assert all(torch.equal(vlm.take_rows(after, rows)[k], vlm.take_rows(before, rows)[k]) for k in before)


def test_take_rows_keeps_each_rows_images(processor_and_model):
    processor, _ = processor_and_model
    inputs, images = vlm.encode_questions(processor, mixed_examples(), "Answer.")
    assert [len(i) for i in images] == [2, 0, 1]
    assert vlm.images_per_row(inputs).tolist() == [2, 0, 1]
    patches = inputs["image_grid_thw"].prod(-1).tolist()  # 16, 48 and 64 patches (4 per image token)
    assert patches == [16, 48, 64]
    block = {0: inputs["pixel_values"][:64], 2: inputs["pixel_values"][64:]}  # row 0: images 0 and 1; row 2: image 2
    rows = vlm.take_rows(inputs, [2, 1, 0, 0])
    assert rows["image_grid_thw"].tolist() == [[1, 8, 8], [1, 4, 4], [1, 6, 8], [1, 4, 4], [1, 6, 8]]
    assert torch.equal(rows["pixel_values"], torch.cat([block[2], block[0], block[0]]))
    text_only = vlm.take_rows(inputs, [1, 1])
    assert "pixel_values" not in text_only and torch.equal(text_only["input_ids"][0], inputs["input_ids"][1])


def test_training_logprobs_match_generate_scores_with_two_images(processor_and_model):
    """G = 3 rows each of a two-image, a text-only and a one-image question: the forward pass of training
    recomputes exactly the log-probs `generate` sampled with (fp32)."""
    processor, model = processor_and_model
    torch.manual_seed(0)
    encoded, _ = vlm.encode_questions(processor, mixed_examples(), "Answer.")
    inputs = vlm.take_rows(encoded, np.repeat(np.arange(3), 3))
    suppress, eos = vlm.vision_token_ids(model, processor), vlm.eos_token_ids(model, processor)
    out = vlm.sample(model, processor, inputs, 12, 1.0, suppress, eos, return_logprobs=True)
    logp = vlm.token_logprobs(model, inputs, out["completion_ids"], out["response_mask"], 1.0, suppress)
    mask = out["response_mask"]
    assert mask[:3].sum() > 6 and mask[3:6].sum() > 6  # the two-image and the text-only rows did generate
    assert (logp.detach()[mask] - out["logprobs"][mask]).abs().max() < 1e-4
    # the images matter: without the second image the same tokens get other log-probs
    single = [dict(mixed_examples()[0], question="Is <image> brighter?", image=[noise(56, 56, 0)])]
    one_image = vlm.take_rows(vlm.encode_questions(processor, single, "Answer.")[0], [0, 0, 0])
    other = vlm.token_logprobs(model, one_image, out["completion_ids"][:3], mask[:3], 1.0, suppress)
    assert (other.detach()[mask[:3]] - logp.detach()[:3][mask[:3]]).abs().max() > 1e-3


def test_a_text_only_batch_samples_and_scores(processor_and_model):
    processor, model = processor_and_model
    encoded, images = vlm.encode_questions(processor, [mixed_examples()[1]] * 2, "Answer.")
    assert images == [[], []] and "pixel_values" not in encoded
    suppress, eos = vlm.vision_token_ids(model, processor), vlm.eos_token_ids(model, processor)
    out = vlm.sample(model, processor, encoded, 6, 1.0, suppress, eos, return_logprobs=True)
    logp = vlm.token_logprobs(model, encoded, out["completion_ids"], out["response_mask"], 1.0, suppress)
    assert (logp.detach()[out["response_mask"]] - out["logprobs"][out["response_mask"]]).abs().max() < 1e-4
