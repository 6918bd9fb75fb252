"""machinery/text_models.py: a text-only causal LM (Qwen2ForCausalLM, the class of Qwen2.5 and
DeepSeek-R1-Distill-Qwen) through the VLM's code path: its chat template given string content, training log-probs
equal to generate's, every method trains, the checkpoint reloads and evaluates; images and --freeze-vision are
refused in one line."""

import json
import math

import pytest
import torch
from transformers import AutoModelForCausalLM

from data_loading import loader
from helpers import sample_and_check_logprobs
import eval as evaluation
import fast_grpo
from machinery import loading, lora, text_models
import methods
import vlm


def test_loads_as_causal_lm_with_a_tokenizer_standing_in_for_the_processor(tiny_text_model_dir):
    processor, model = loading.load_processor(tiny_text_model_dir), loading.load_model(tiny_text_model_dir)
    assert type(model).__name__ == "Qwen2ForCausalLM" and isinstance(processor, text_models.TextProcessor)
    assert loading.check_model(tiny_text_model_dir) == "qwen2" and loading.max_image_pixels(processor) is None
    # Qwen2.5's template concatenates the content: the parts vlm.prompt_content builds arrive as one string
    prompt = vlm.chat_prompt(processor, "What is 3+4?", "Answer.", num_images=0)
    assert prompt.endswith("<|im_start|>user\nWhat is 3+4? Answer.<|im_end|>\n<|im_start|>assistant\n"), prompt
    with pytest.raises(TypeError):  # the template itself refuses a list, as the real one does
        processor.tokenizer.apply_chat_template([{"role": "user", "content": [{"type": "text", "text": "x"}]}],
                                                tokenize=False)
    inputs = vlm.encode(processor, [prompt, prompt + "x"], None)
    assert set(inputs) == {"input_ids", "attention_mask"}  # generate refuses mm_token_type_ids
    assert inputs["attention_mask"][0, 0] == 0  # left-padded
    assert processor.tokenizer.decode(inputs["input_ids"][1]) == prompt + "x"  # no special token added twice
    with pytest.raises(ValueError, match="cannot take images"):
        vlm.chat_prompt(processor, "What is 3+4?", "Answer.", num_images=1)
    processor.tokenizer.chat_template = None  # a base model: the plain text, then a newline
    assert vlm.chat_prompt(processor, "What is 3+4?", "Answer.", num_images=0) == "What is 3+4? Answer.\n"


def check_training_logprobs_equal_generate_scores(model_dir, text_dataset):
    """Samples 2 text questions x 2 with `model_dir` and checks the training log-probs against generate's; returns the
    model."""
    processor, model = loading.load_processor(model_dir), loading.load_model(model_dir)
    inputs, images = vlm.encode_questions(processor, loader.load_examples(text_dataset)[:2], "Answer.")
    assert images == [[], []]
    sample_and_check_logprobs(model, processor, vlm.take_rows(inputs, [0, 0, 1, 1]), 12)
    return model


def test_training_logprobs_equal_generate_scores(tiny_text_model_dir, text_dataset):
    check_training_logprobs_equal_generate_scores(tiny_text_model_dir, text_dataset)


REWARD = "def score(response, ground_truth):\n    right = float(len(response) % 2)\n" \
         "    return {'overall': right, 'accuracy': right}\n"


def test_every_method_trains_and_the_checkpoint_reloads_and_evaluates(tiny_text_model_dir, text_dataset, tmp_path):
    # a random model never answers right: the reward file's parity reward makes the groups' rewards differ
    (tmp_path / "parity.py").write_text(REWARD)
    common = ["--model", tiny_text_model_dir, "--data", text_dataset, "--batch-size", "4", "--group-size", "4",
              "--max-new-tokens", "16", "--lr", "1e-3", "--weight-decay", "0", "--no-compare-at-end"]
    fast_grpo.main([*common, "--output-dir", str(tmp_path / "fast"), "--max-steps", "2", "--save-every", "2",
                    "--reward-fn", f"{tmp_path / 'parity.py'}:score"])
    metrics = [json.loads(line) for line in open(tmp_path / "fast" / "metrics.jsonl")]
    assert len(metrics) == 2 and all(m["grad_norm"] > 0 for m in metrics)
    trained = AutoModelForCausalLM.from_pretrained(tmp_path / "fast" / "checkpoint-2")
    before = AutoModelForCausalLM.from_pretrained(tiny_text_model_dir).state_dict()
    assert any(not torch.equal(before[k], v) for k, v in trained.state_dict().items())
    evaluation.main(["--model", str(tmp_path / "fast" / "checkpoint-2"), "--data", text_dataset,
                     "--max-new-tokens", "8", "--output", str(tmp_path / "eval.json")])
    summary = json.load(open(tmp_path / "eval.json"))["results"]["data"]["all"]
    assert summary["count"] == 8 and 0 <= summary["accuracy"] <= 1
    for method in sorted(set(methods.METHODS) - {"fast"}):  # the presets' own rewards, one step each
        out = tmp_path / method
        fast_grpo.main([*common, "--output-dir", str(out), "--max-steps", "1", "--method", method])
        line = json.loads(open(out / "metrics.jsonl").readline())
        assert line["step"] == 1 and math.isfinite(line["entropy"]) and line["tokens_mean"] > 0, method


def test_a_qwen3_model_samples_what_training_scores_and_trains(text_dataset, tmp_path):
    """Qwen3ForCausalLM (q/k norms, an explicit head_dim) through the same path: log-probs equal generate's, and
    two FAST steps move the weights."""
    from demo import tiny_model

    folder = tiny_model.build_tiny_model(str(tmp_path / "tiny-qwen3"), seed=0, arch="qwen3")
    model = check_training_logprobs_equal_generate_scores(folder, text_dataset)
    assert type(model).__name__ == "Qwen3ForCausalLM"
    (tmp_path / "parity.py").write_text(REWARD)
    fast_grpo.main(["--model", folder, "--data", text_dataset, "--batch-size", "4", "--group-size", "4",
                    "--max-new-tokens", "16", "--lr", "1e-3", "--weight-decay", "0", "--no-compare-at-end",
                    "--output-dir", str(tmp_path / "run"), "--max-steps", "2", "--save-every", "2",
                    "--reward-fn", f"{tmp_path / 'parity.py'}:score"])
    trained = AutoModelForCausalLM.from_pretrained(tmp_path / "run" / "checkpoint-2").state_dict()
    assert any(not torch.equal(v, trained[k]) for k, v in model.state_dict().items())


def test_lora_targets_the_decoder(tiny_text_model_dir):
    model = loading.load_model(tiny_text_model_dir)
    names = lora.target_modules(model, "q_proj,down_proj")
    assert names and all(name.startswith("model.layers.") for name in names)


def test_images_and_freeze_vision_are_refused_in_one_line(tiny_text_model_dir, dataset, text_dataset, capsys):
    for argv in (["--data", dataset], ["--data", text_dataset, "--freeze-vision"]):
        with pytest.raises(SystemExit) as exit_info:
            fast_grpo.main(["--model", tiny_text_model_dir, "--output-dir", "/nonexistent/run", *argv])
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert exit_info.value.code == 2 and err.startswith(f"error: --")
        assert ("8 of the 8 questions have images" if argv[1] == dataset else "no vision tower") in err
