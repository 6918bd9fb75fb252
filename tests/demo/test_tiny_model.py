"""Qwen2-VL, Qwen2.5-VL and Qwen3-VL through one code path: log-probs, training, checkpoints, evaluation."""

import json
import os

import pytest
import torch
from transformers import AutoModelForImageTextToText

from data_loading import loader
from demo import tiny_model
import eval
import fast_grpo
from machinery import loading
import vlm
from conftest import warm_up

MODEL_CLASSES = {"qwen2_vl": "Qwen2VLForConditionalGeneration", "qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration",
                 "qwen3_vl": "Qwen3VLForConditionalGeneration"}
PROCESSOR_CLASSES = {"qwen2_vl": "Qwen2VLProcessor", "qwen2_5_vl": "Qwen2_5_VLProcessor",
                     "qwen3_vl": "Qwen3VLProcessor"}


@pytest.fixture(scope="session", params=tiny_model.ARCHITECTURES)
def arch_model(request, tmp_path_factory):
    """(architecture, folder of its tiny random checkpoint)."""
    arch = request.param
    return arch, tiny_model.build_tiny_model(str(tmp_path_factory.mktemp(f"tiny-{arch}")), seed=0, arch=arch)


@pytest.fixture(scope="session")
def warm_arch_model(arch_model, dataset, tmp_path_factory, request):
    """(architecture, folder) of the tiny checkpoint warm-started so that GRPO's groups have differing rewards."""
    arch, folder = arch_model
    if arch == "qwen2_vl":  # the suite's shared warm model
        return arch, request.getfixturevalue("warm_model_dir")
    return arch, warm_up(folder, dataset, str(tmp_path_factory.mktemp(f"warm-{arch}")), steps=120)


def test_each_architecture_uses_its_own_classes_and_tokens(arch_model):
    arch, folder = arch_model
    processor, model = loading.load_processor(folder), loading.load_model(folder)
    assert type(model).__name__ == MODEL_CLASSES[arch] and model.config.model_type == arch
    assert type(processor).__name__ == PROCESSOR_CLASSES[arch]
    patch = 16 if arch == "qwen3_vl" else 14
    assert processor.image_processor.patch_size == model.config.vision_config.patch_size == patch
    image_pad = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert model.config.image_token_id == image_pad and image_pad in vlm.vision_token_ids(model, processor)
    prompt = vlm.chat_prompt(processor, "What is 3+4?", "Answer.")
    assert prompt.startswith("<|im_start|>system") == (arch != "qwen3_vl")  # Qwen3-VL: no default system prompt
    assert "<|vision_start|><|image_pad|><|vision_end|>What is 3+4? Answer.<|im_end|>" in prompt


def test_training_logprobs_equal_generate_scores(arch_model, dataset):
    arch, folder = arch_model
    processor, model = loading.load_processor(folder), loading.load_model(folder)
    examples = loader.load_examples(dataset)[:2]  # 56x56 and 84x112: different numbers of image tokens
    prompts = [vlm.chat_prompt(processor, e["question"], "Answer.") for e in examples]
    inputs = vlm.take_rows(vlm.encode(processor, prompts, [loader.load_image(e["image"]) for e in examples]),
                           [0, 0, 0, 1, 1, 1])  # G = 3
    assert len(set(inputs["image_grid_thw"].prod(-1).tolist())) == 2
    suppress = vlm.vision_token_ids(model, processor)
    torch.manual_seed(0)
    rollout = vlm.sample(model, processor, inputs, 16, 1.0, suppress, vlm.eos_token_ids(model, processor),
                         return_logprobs=True)
    with torch.no_grad():
        logp = vlm.token_logprobs(model, inputs, rollout["completion_ids"], rollout["response_mask"], 1.0, suppress)
    mask = rollout["response_mask"]
    assert mask.sum() > 6
    assert torch.where(mask, (logp - rollout["logprobs"]).abs(), 0.0).max() < 1e-4, arch


def test_two_steps_train_reload_and_evaluate(warm_arch_model, dataset, tmp_path):
    arch, folder = warm_arch_model
    fast_grpo.main(["--model", folder, "--data", dataset, "--output-dir", str(tmp_path), "--method", "grpo",
                    "--max-steps", "2", "--batch-size", "4", "--group-size", "4", "--max-new-tokens", "24",
                    "--lr", "1e-3", "--weight-decay", "0", "--save-every", "2"])
    metrics = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert all(m["grad_norm"] > 0 for m in metrics), "every group's rewards were equal: the warm start is too weak"
    trained = AutoModelForImageTextToText.from_pretrained(tmp_path / "checkpoint-2")
    assert type(trained).__name__ == MODEL_CLASSES[arch]
    before = AutoModelForImageTextToText.from_pretrained(folder).state_dict()
    after = trained.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # no weight decay: the GRPO gradient moved them
    eval.main(["--model", str(tmp_path / "checkpoint-2"), "--data", dataset, "--max-new-tokens", "16",
               "--output", str(tmp_path / "eval.json")])
    results = json.load(open(tmp_path / "eval.json"))["results"]
    summary = next(iter(results.values()))["all"]
    assert summary["count"] == 8 and 0 <= summary["accuracy"] <= 1
    assert os.path.isfile(tmp_path / "checkpoint-2" / "checkpoint.json")
