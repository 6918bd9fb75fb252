"""The shipped demo model and the default run's code path (the full default run is a documented command)."""

import json
import shutil

import torch
from transformers import AutoModelForImageTextToText

from data_loading import synthetic
import eval
import fast_grpo
from machinery import loading
import methods
import vlm


def test_shipped_model_reads_held_out_easy_items():
    model = AutoModelForImageTextToText.from_pretrained(methods.DEMO_MODEL)
    processor = loading.load_processor(methods.DEMO_MODEL)
    easy = [item for item in synthetic.split("test") if item["level"] == "easy"][:6]
    prompt = vlm.chat_prompt(processor, synthetic.QUESTION, methods.PROMPTS["fast"])
    inputs = vlm.encode(processor, [prompt] * len(easy), [item["image"] for item in easy])
    out = vlm.sample(model, processor, inputs, 128, 0.0, vlm.vision_token_ids(model, processor),
                     vlm.eos_token_ids(model, processor))
    correct, fmt, _ = methods.score_responses(out["texts"], [item["answer"] for item in easy], "fast")
    assert fmt.sum() == len(easy), out["texts"]
    assert correct.sum() >= len(easy) - 1, (out["texts"], [item["answer"] for item in easy])


def test_default_run_code_path(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(synthetic, "TEST_PER_LEVEL", 2)  # a 6-item held-out set keeps this quick
    monkeypatch.setitem(eval.DEMO_EVAL, "sampled_per_level", 1)  # sampled: 4 samples of 1 item per level
    demo_copy = tmp_path / "demo_model"  # the start model's evaluation is cached in its folder: not the shipped one
    shutil.copytree(methods.DEMO_MODEL, demo_copy)
    monkeypatch.setattr(methods, "DEMO_MODEL", str(demo_copy))
    torch.manual_seed(0)
    output_dir = tmp_path / "run"
    fast_grpo.main(["--max-steps", "2", "--batch-size", "2", "--group-size", "4", "--output-dir", str(output_dir)])
    metrics = [json.loads(line) for line in open(output_dir / "metrics.jsonl")]
    assert [m["step"] for m in metrics] == [1, 2]
    assert set(metrics[0]["tokens_by_level"]) <= {"easy", "medium", "hard"}
    before_after = json.load(open(output_dir / "before_after.json"))
    for run in ("start", "final"):
        assert set(before_after[run]["greedy"]) == {"easy", "medium", "hard", "all"}
        assert before_after[run]["greedy"]["all"]["count"] == 6
        assert before_after[run]["sampled"]["all"]["count"] == 3 * 4
    assert (output_dir / "tokens_per_level.png").exists()
    assert (demo_copy / "start_eval-fast.json").exists()
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith("wrote ") and out[-1].endswith("tokens_per_level.png")  # the table comes last
    assert out[-2].startswith("| sampled | all |")


def test_adaptive_thinking_trains_two_steps_on_the_demo_model(tmp_path):
    fast_grpo.main(["--method", "adaptive-thinking", "--max-steps", "2", "--batch-size", "2", "--group-size", "2",
                    "--max-new-tokens", "48", "--no-compare-at-end", "--output-dir", str(tmp_path)])
    metrics = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert [m["step"] for m in metrics] == [1, 2] and all(m["kl_coef_mean"] == 0.04 for m in metrics)


def test_a_new_preset_does_not_change_the_demo_models_tokenizer_corpus(monkeypatch):
    from demo import make_model

    before = make_model.tokenizer_corpus()
    monkeypatch.setitem(methods.PROMPTS, "later", "A preset added after the demo model was built.")
    assert make_model.tokenizer_corpus() == before
    assert methods.PROMPTS["adaptive-thinking"] not in before  # the shipped model never saw it (docs/demo.md)
