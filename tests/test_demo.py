"""The shipped demo model and the default run's code path (the full default run is a documented command)."""

import json

import torch
from transformers import AutoModelForImageTextToText

import fast_grpo
import synthetic
import vlm


def test_shipped_model_reads_held_out_easy_items():
    model = AutoModelForImageTextToText.from_pretrained(fast_grpo.DEMO_MODEL)
    processor = vlm.load_processor(fast_grpo.DEMO_MODEL)
    easy = [item for item in synthetic.split("test") if item["level"] == "easy"][:6]
    prompt = vlm.chat_prompt(processor, synthetic.QUESTION, fast_grpo.PROMPTS["fast"])
    inputs = vlm.encode(processor, [prompt] * len(easy), [item["image"] for item in easy])
    out = vlm.sample(model, processor, inputs, 128, 0.0, vlm.vision_token_ids(model, processor),
                     vlm.eos_token_ids(model, processor))
    correct, fmt = fast_grpo.score_responses(out["texts"], [item["answer"] for item in easy], "fast")
    assert fmt.sum() == len(easy), out["texts"]
    assert correct.sum() >= len(easy) - 1, (out["texts"], [item["answer"] for item in easy])


def test_default_run_code_path(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(synthetic, "TEST_PER_LEVEL", 2)  # a 6-item held-out set keeps this quick
    torch.manual_seed(0)
    fast_grpo.main(["--max-steps", "2", "--batch-size", "2", "--group-size", "4", "--output-dir", str(tmp_path)])
    metrics = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert [m["step"] for m in metrics] == [1, 2]
    before_after = json.load(open(tmp_path / "before_after.json"))
    assert set(before_after["before"]) == {"easy", "medium", "hard", "all"}
    assert before_after["before"]["all"]["count"] == 6
    assert "| easy |" in capsys.readouterr().out
