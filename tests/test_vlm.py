"""vlm.py on the tiny Qwen2-VL checkpoint: the real classes, batching, sampling, log-probs, Eq. 2's classifier pass."""

import os

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoModelForImageTextToText

from data_loading import loader
import fast_grpo
from machinery import loading
import vlm


def load(model_dir):
    return loading.load_processor(model_dir), loading.load_model(model_dir)


def encode_two_questions(processor, dataset):
    examples = loader.load_examples(dataset)[:2]  # 56x56 and 84x112 images: 4 and 12 image tokens
    prompts = [vlm.chat_prompt(processor, e["question"], "Answer.") for e in examples]
    return vlm.encode(processor, prompts, [loader.load_image(e["image"]) for e in examples])


def test_tiny_checkpoint_uses_the_real_classes(tiny_model_dir):
    processor, model = load(tiny_model_dir)
    assert type(model).__name__ == "Qwen2VLForConditionalGeneration"
    assert type(processor).__name__ == "Qwen2VLProcessor"
    assert type(processor.tokenizer).__name__ == "Qwen2Tokenizer"
    # the ids in the config are the tokenizer's
    assert model.config.image_token_id == processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    tokenizer = processor.tokenizer
    assert tokenizer.decode(tokenizer("<think>12 + 345</think>")["input_ids"]) == "<think>12 + 345</think>"
    assert [tokenizer.decode([t]) for t in tokenizer("345")["input_ids"]] == ["3", "4", "5"]  # one token a digit
    rope = model.config.text_config.rope_parameters
    head_dim = model.config.text_config.hidden_size // model.config.text_config.num_attention_heads
    assert sum(rope["mrope_section"]) == head_dim // 2


def test_take_rows_keeps_each_images_pixel_block(tiny_model_dir, dataset):
    processor, _ = load(tiny_model_dir)
    inputs = encode_two_questions(processor, dataset)
    patches = inputs["image_grid_thw"].prod(-1).tolist()  # 16 and 48 patches
    assert patches[0] != patches[1]
    rows = vlm.take_rows(inputs, [0, 0, 1, 1, 1])
    assert rows["pixel_values"].shape[0] == 2 * patches[0] + 3 * patches[1]
    first, second = inputs["pixel_values"][:patches[0]], inputs["pixel_values"][patches[0]:]
    assert torch.equal(rows["pixel_values"][patches[0]:2 * patches[0]], first)
    assert torch.equal(rows["pixel_values"][-patches[1]:], second)
    assert torch.equal(rows["input_ids"][3], inputs["input_ids"][1])


def test_response_mask_stops_after_the_first_eos():
    completion = torch.tensor([[5, 6, 2, 0, 0], [5, 2, 6, 2, 0], [5, 6, 7, 8, 9]])  # eos = 2
    mask, truncated = vlm.response_mask_from(completion, [2])
    assert mask.int().tolist() == [[1, 1, 1, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 1, 1]]
    assert truncated.tolist() == [False, False, True]


def test_training_logprobs_match_generate_scores(tiny_model_dir, dataset):
    """Two prompts with different image sizes, G = 3 each: the forward pass of training recomputes exactly
    the log-probs `generate` sampled with (fp32)."""
    processor, model = load(tiny_model_dir)
    torch.manual_seed(0)
    inputs = vlm.take_rows(encode_two_questions(processor, dataset), [0, 0, 0, 1, 1, 1])
    suppress, eos = vlm.vision_token_ids(model, processor), vlm.eos_token_ids(model, processor)
    for temperature in (1.0, 0.7):
        out = vlm.sample(model, processor, inputs, 12, temperature, suppress, eos, return_logprobs=True)
        logp = vlm.token_logprobs(model, inputs, out["completion_ids"], out["response_mask"], temperature, suppress)
        mask = out["response_mask"]
        assert mask.sum() > 12
        assert (logp.detach()[mask] - out["logprobs"][mask]).abs().max() < 1e-4
        # a vision token in a response would crash the next forward
        assert not torch.isin(out["completion_ids"], torch.tensor(suppress)).any()


def logprobs_and_gradients(model, inputs, out, suppress, entropy=False):
    """token_logprobs of the sampled completions, and the gradient of their masked sum for every weight."""
    model.zero_grad(set_to_none=True)
    result = vlm.token_logprobs(model, inputs, out["completion_ids"], out["response_mask"], 0.7, suppress, entropy)
    logp = result[0] if entropy else result
    torch.where(out["response_mask"], logp, 0.0).sum().backward()
    return result, {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def test_chunked_logprobs_equal_the_whole_micro_batchs(tiny_model_dir, dataset, monkeypatch):
    """A logits budget of 5 positions a chunk (the output layer run 3 times over 12 positions, each chunk recomputed
    in the backward pass) gives the log-probs, entropies and every weight's gradient of one chunk."""
    processor, model = load(tiny_model_dir)
    torch.manual_seed(0)
    inputs = vlm.take_rows(encode_two_questions(processor, dataset), [0, 0, 1, 1])
    suppress, eos = vlm.vision_token_ids(model, processor), vlm.eos_token_ids(model, processor)
    out = vlm.sample(model, processor, inputs, 12, 1.0, suppress, eos)
    (whole, whole_entropy), whole_grads = logprobs_and_gradients(model, inputs, out, suppress, entropy=True)
    original, calls = vlm.completion_logprobs, []
    monkeypatch.setattr(vlm, "completion_logprobs", lambda *args: calls.append(args[1].shape[1]) or original(*args))
    monkeypatch.setattr(vlm, "LOGITS_CHUNK_BYTES", 4 * 4 * model.config.text_config.vocab_size * 5)  # 4 rows x 5
    (chunked, chunked_entropy), chunked_grads = logprobs_and_gradients(model, inputs, out, suppress, entropy=True)
    assert out["completion_ids"].shape[1] == 12 and calls[:3] == [6, 6, 3]  # 5 + 5 + 2 positions, each + 1
    assert sorted(calls[3:]) == [3, 6, 6]  # each chunk again in the backward pass (in reverse order)
    assert torch.allclose(chunked, whole, atol=1e-6) and torch.allclose(chunked_entropy, whole_entropy, atol=1e-6)
    assert whole_grads.keys() == chunked_grads.keys() and len(whole_grads) == len(list(model.parameters()))
    for name, grad in whole_grads.items():
        assert torch.allclose(chunked_grads[name], grad, atol=1e-6, rtol=1e-5), name


def test_entropy_is_the_policys_at_each_position(tiny_model_dir, dataset):
    """-sum p log p of the distribution `sample` draws from (temperature 0.7, vision tokens masked: their p log p is
    0, not NaN), from the whole logits of an ordinary forward pass."""
    processor, model = load(tiny_model_dir)
    torch.manual_seed(1)
    inputs = vlm.take_rows(encode_two_questions(processor, dataset), [0, 1])
    suppress, eos = vlm.vision_token_ids(model, processor), vlm.eos_token_ids(model, processor)
    out = vlm.sample(model, processor, inputs, 8, 0.7, suppress, eos)
    with torch.no_grad():
        _, entropy = vlm.token_logprobs(model, inputs, out["completion_ids"], out["response_mask"], 0.7, suppress,
                                        entropy=True)
        logits = model(input_ids=torch.cat([inputs["input_ids"], out["completion_ids"]], 1),
                       attention_mask=torch.cat([inputs["attention_mask"], out["response_mask"].long()], 1),
                       mm_token_type_ids=torch.cat([inputs["mm_token_type_ids"], 0 * out["completion_ids"]], 1),
                       pixel_values=inputs["pixel_values"], image_grid_thw=inputs["image_grid_thw"]).logits
    logits = logits[:, -9:-1].double() / 0.7
    logits[..., suppress] = float("-inf")
    p = logits.softmax(-1)
    expected = -(p[p > 0] * p[p > 0].log()).sum() / p.shape[0] / p.shape[1]
    assert torch.isfinite(entropy).all() and entropy.shape == out["completion_ids"].shape
    assert abs(float(entropy.double().mean()) - float(expected)) < 1e-5


def test_checkpoint_round_trip(tiny_model_dir, tmp_path):
    processor, model = load(tiny_model_dir)
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    again = AutoModelForImageTextToText.from_pretrained(tmp_path)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    assert os.path.exists(tmp_path / "chat_template.jinja")


def test_greedy_ignores_the_checkpoints_sampling_settings(tiny_model_dir, dataset):
    processor, model = load(tiny_model_dir)
    model.generation_config.do_sample, model.generation_config.top_k = True, 50  # as some checkpoints ship
    inputs = encode_two_questions(processor, dataset)
    suppress, eos = vlm.vision_token_ids(model, processor), vlm.eos_token_ids(model, processor)
    texts = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        texts.append(vlm.sample(model, processor, inputs, 10, 0.0, suppress, eos)["texts"])
    assert texts[0] == texts[1]


# ------------------------------------------------------------------------------------------------------------------
# A --model that cannot work: one line (what was asked, what went wrong, what to do), exit code 2, no traceback


# ------------------------------------------------------------------------------------------------------------------
# Eq. 2 in full: GLCM entropy + the entropy of an image classifier's prediction


@pytest.fixture(scope="module")
def vit_dir(tmp_path_factory):
    from demo import tiny_model

    return tiny_model.build_tiny_vit(str(tmp_path_factory.mktemp("tiny-vit")), seed=0)


def test_the_semantic_term_is_the_entropy_of_the_classifiers_softmax(vit_dir):
    import difficulty
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    images = [Image.new("RGB", (50, 40), "red"), Image.fromarray(np.random.default_rng(0).integers(
        0, 255, (60, 90, 3), dtype=np.uint8))]
    probabilities = vlm.class_probabilities(loading.load_image_classifier(vit_dir), images, batch_size=1)
    with torch.no_grad():  # by hand: the classifier's logits, softmax, entropy in bits
        pixels = AutoImageProcessor.from_pretrained(vit_dir)(images=images, return_tensors="pt")["pixel_values"]
        logits = AutoModelForImageClassification.from_pretrained(vit_dir)(pixel_values=pixels).logits.double().numpy()
    for image, row, p in zip(images, logits, probabilities):
        softmax = np.exp(row - row.max()) / np.exp(row - row.max()).sum()
        assert np.allclose(p, softmax, atol=1e-6)
        semantic = -(softmax * np.log2(softmax)).sum()
        assert difficulty.image_complexity(image, p) == pytest.approx(difficulty.glcm_entropy(image) + semantic,
                                                                      abs=1e-6)


def test_the_classifier_orders_images_whose_texture_ties(vit_dir):
    import difficulty

    flat = [Image.new("RGB", (64, 64), colour) for colour in ("red", "blue", "white")]  # GLCM entropy 0 each
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    images, pass_rate = flat + [noise], np.full(4, 0.5)
    probabilities = vlm.class_probabilities(loading.load_image_classifier(vit_dir), images)
    semantic = [-(p * np.log2(p)).sum() for p in probabilities]
    assert len(set(np.round(semantic[:3], 9))) == 3  # the classifier tells the flat images apart
    texture_only = difficulty.combined_difficulty(pass_rate, [difficulty.image_complexity(i) for i in images])
    assert texture_only[0] == texture_only[1] == texture_only[2] < texture_only[3]  # a three-way tie
    full = difficulty.combined_difficulty(pass_rate, [difficulty.image_complexity(i, p)
                                                      for i, p in zip(images, probabilities)])
    assert list(np.argsort(full[:3])) == list(np.argsort(semantic[:3]))  # the tie is broken by semantic entropy


def test_training_with_a_complexity_model(warm_model_dir, dataset, vit_dir, tmp_path, capsys):
    fast_grpo.main(["--model", warm_model_dir, "--data", dataset, "--output-dir", str(tmp_path), "--max-steps", "1",
                    "--batch-size", "4", "--group-size", "2", "--max-new-tokens", "8", "--complexity-model", vit_dir])
    assert f"GLCM entropy + entropy of {vit_dir}'s prediction (Eq. 2)" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        fast_grpo.main(["--model", warm_model_dir, "--data", dataset, "--output-dir", str(tmp_path / "b"),
                        "--complexity-model", str(tmp_path)])  # a run folder, not a classifier
    assert exit_info.value.code == 2
    assert "error: --complexity-model" in capsys.readouterr().err
