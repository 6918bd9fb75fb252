"""model_families/families.py: a tiny random model of each other VLM family (SmolVLM's Idefics3, Gemma 3, InternVL)
through the Qwen-VL code path: training log-probs equal generate's, two FAST steps move the weights, the checkpoint
reloads and evaluates, LoRA targets only the language model; and the per-family rules (--max-pixels, row slicing,
the final-logit soft-cap) on their own."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoModelForImageTextToText

import eval as evaluation
import fast_grpo
from helpers import sample_and_check_logprobs
from machinery import loading, lora
from model_families import families
import vlm

FAMILIES = ("idefics3", "gemma3", "internvl")
REWARD = "def score(response, ground_truth):\n    right = float(sum(map(ord, response)) % 2)\n" \
         "    return {'overall': right, 'accuracy': right}\n"


@pytest.fixture(scope="module", params=FAMILIES)
def family_model_dir(request, tmp_path_factory):
    """(arch, folder) of a tiny random model of each family, built as `--arch` builds it."""
    from demo import tiny_model

    folder = str(tmp_path_factory.mktemp(f"tiny-{request.param}"))
    return request.param, tiny_model.build_tiny_model(folder, seed=0, arch=request.param)


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    """Four rows with one 28x28 or 28x42 noise image each (the loader wants 28 pixels a side; InternVL crops them into
    tiles plus a thumbnail)."""
    folder = tmp_path_factory.mktemp("family-data")
    with open(folder / "train.jsonl", "w") as f:
        for i in range(4):
            noise(*((28, 28) if i % 2 else (28, 42)), seed=i).save(folder / f"{i}.png")
            f.write(json.dumps({"image": f"{i}.png", "question": f"What is {i}+1?", "answer": str(i + 1)}) + "\n")
    return str(folder / "train.jsonl")


def noise(height, width, seed):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8))


def test_training_logprobs_equal_generate_scores_and_rows_keep_their_images(family_model_dir):
    arch, folder = family_model_dir
    processor, model = loading.load_processor(folder), loading.load_model(folder)
    assert loading.check_model(folder) == arch and type(model).__name__.lower().startswith(arch[:5])
    prompts = [vlm.chat_prompt(processor, "What is 1+1?", "Answer.", 1),
               vlm.chat_prompt(processor, "Is <image> like <image>?", "Answer.", 2)]
    images = [noise(16, 16, 0), noise(8, 12, 1), noise(16, 16, 2)]
    inputs = vlm.encode(processor, prompts, images)
    twice = vlm.take_rows(inputs, [0, 0, 1, 1])
    alone = vlm.take_rows(inputs, [1])  # row 1 on its own computes what it computes in the batch
    with torch.no_grad():
        whole = model(**families.model_inputs(inputs)).logits[1, -1]
        assert torch.allclose(model(**families.model_inputs(alone)).logits[0, -1], whole, atol=1e-5)
    rollout, suppress = sample_and_check_logprobs(model, processor, twice, 8)
    structure = {"idefics3": "<global-img>", "gemma3": "<start_of_image>", "internvl": "<img>"}[arch]
    assert processor.tokenizer.convert_tokens_to_ids(structure) in suppress
    assert not torch.isin(rollout["completion_ids"], torch.tensor(suppress)).any()
    names = lora.target_modules(model, "q_proj,down_proj")  # the vision towers have q_proj or fc layers too
    decoder = {"idefics3": "model.text_model.", "gemma3": "model.language_model.", "internvl": "model.language_model."}
    assert names and all(name.startswith(decoder[arch] + "layers.") for name in names)


def test_two_steps_move_the_weights_and_the_checkpoint_reloads_and_evaluates(family_model_dir, small_dataset,
                                                                            tmp_path):
    arch, folder = family_model_dir
    (tmp_path / "parity.py").write_text(REWARD)  # a random model never answers right: make the rewards differ
    out = tmp_path / "run"
    fast_grpo.main(["--model", folder, "--data", small_dataset, "--batch-size", "2", "--group-size", "4",
                    "--max-new-tokens", "10", "--lr", "1e-3", "--weight-decay", "0", "--no-compare-at-end",
                    "--output-dir", str(out), "--max-steps", "2", "--save-every", "2",
                    "--reward-fn", f"{tmp_path / 'parity.py'}:score"])
    metrics = [json.loads(line) for line in open(out / "metrics.jsonl")]
    assert len(metrics) == 2 and all(m["grad_norm"] > 0 for m in metrics)
    checkpoint = str(out / "checkpoint-2")
    trained = AutoModelForImageTextToText.from_pretrained(checkpoint).state_dict()
    before = AutoModelForImageTextToText.from_pretrained(folder).state_dict()
    assert any(not torch.equal(before[key], value) for key, value in trained.items())
    assert loading.load_processor(checkpoint).chat_template  # the processor was saved with the checkpoint
    evaluation.main(["--model", checkpoint, "--data", small_dataset, "--max-new-tokens", "4",
                     "--output", str(tmp_path / "eval.json")])
    summary = json.load(open(tmp_path / "eval.json"))["results"]["data"]["all"]
    assert summary["count"] == 4 and 0 <= summary["accuracy"] <= 1


def test_max_pixels_is_translated_per_family(family_model_dir):
    arch, folder = family_model_dir
    default, capped = loading.load_processor(folder), loading.load_processor(folder, 1_003_520)  # the paper's
    assert loading.max_image_pixels(capped) is None  # not a pixel count: images are decoded whole
    if arch == "idefics3":  # an edge, in whole crops, never above the checkpoint's (not thousands of crops)
        assert capped.image_processor.size["longest_edge"] == 64
        assert loading.load_processor(folder, 40 * 40).image_processor.size["longest_edge"] == 32
    elif arch == "internvl":  # the tiles an image is cropped into
        assert capped.image_processor.max_patches == 12
        assert loading.load_processor(folder, 3 * 16 * 16).image_processor.max_patches == 3
        assert capped.image_seq_length == 4  # kept by the image-only processor on reload
    else:  # Gemma 3: its fixed size
        assert capped.image_processor.size == default.image_processor.size


def test_softcap_is_applied_per_chunk_where_the_forward_applies_it():
    torch.manual_seed(0)
    head = torch.nn.Linear(8, 11, bias=False)
    head.weight.data *= 40  # logits well past the cap
    hidden, ids = torch.randn(2, 5, 8), torch.randint(0, 11, (2, 4))
    capped, _ = vlm.completion_logprobs(head, hidden, ids, 1.0, [3], softcap=2.0)
    logits = torch.tanh(head(hidden)[:, :-1] / 2.0) * 2.0
    logits[..., 3] = float("-inf")
    expected = logits.log_softmax(-1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)
    assert torch.allclose(capped, expected, atol=1e-5)
    assert not torch.allclose(vlm.completion_logprobs(head, hidden, ids, 1.0, [3])[0], expected, atol=1e-2)

    class Config:
        final_logit_softcapping = 30.0

        def get_text_config(self):
            return self

    class Gemma3ForCausalLM:  # soft-caps in its forward
        config = Config()

    class Gemma3ForConditionalGeneration:  # transformers 5.23's does not, whatever its config says
        config = Config()

    assert families.logit_softcap(Gemma3ForCausalLM()) == 30.0
    assert families.logit_softcap(Gemma3ForConditionalGeneration()) is None


def test_freeze_vision_leaves_the_language_model_and_output_layer_trainable(family_model_dir, tiny_model_dir):
    """--freeze-vision on every family: the vision tower and projector frozen, whatever a family names them; on a
    Qwen-VL model exactly its `visual` module (the rule before the other families)."""
    from machinery import loading

    _, folder = family_model_dir
    for model in (loading.load_model(folder), loading.load_model(tiny_model_dir)):
        frozen = {name for name, p in families.freeze_vision(model).named_parameters() if not p.requires_grad}
        language = {id(p) for p in model.get_decoder().parameters()} | {
            id(p) for p in model.get_output_embeddings().parameters()}
        assert frozen and frozen == {name for name, p in model.named_parameters() if id(p) not in language}
    assert frozen == {name for name, _ in model.named_parameters() if name.startswith("model.visual.")}
