"""tools/measure_memory.py: the published sizes it builds from, and one measured step on a tiny configuration."""

import json
import os
import subprocess
import sys

import torch
from transformers import AutoModelForImageTextToText

from demo import tiny_model
from tools import measure_memory

HERE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parameters(name, **sizes):
    """(all, vision tower) parameter counts of architecture `name`, built on the meta device (no memory)."""
    tokenizer = tiny_model.build_tokenizer(arch=measure_memory.ARCHITECTURES[name]["model_type"])
    with torch.device("meta"):
        model = AutoModelForImageTextToText.from_config(measure_memory.build_config(name, tokenizer, **sizes))
    vision = sum(p.numel() for n, p in model.named_parameters() if ".visual." in f".{n}")
    return sum(p.numel() for p in model.parameters()), vision


def test_the_architectures_have_their_published_sizes():
    """The model cards' totals: 2.21 B (Qwen2-VL-2B), 3.75 B (Qwen2.5-VL-3B), 8.29 B (Qwen2.5-VL-7B), 8.77 B
    (Qwen3-VL-8B); the vision towers 0.67 B, 0.58 B for Qwen3-VL's."""
    expected = {"qwen2-vl-2b": (2.21, 0.67), "qwen2.5-vl-3b": (3.75, 0.67), "qwen2.5-vl-7b": (8.29, 0.68),
                "qwen3-vl-8b": (8.77, 0.58)}
    for name, (total, vision) in expected.items():
        counted = parameters(name)
        assert (round(counted[0] / 1e9, 2), round(counted[1] / 1e9, 2)) == (total, vision), name


def test_layers_and_vocab_change_the_text_model_only():
    """One decoder layer of the tiny body (hidden 64, MLP 128, 4 heads of 16, 2 key-value heads) by hand: q 64x64+64,
    k and v 64x32+32 each, o 64x64, the MLP 3 x 64x128, two norms of 64: 37,120."""
    two, one = parameters("tiny"), parameters("tiny", layers=1)
    assert two[0] - one[0] == 37_120 and two[1] == one[1]
    big = parameters("tiny", vocab=1000)
    assert big[0] - two[0] == (1000 - len(tiny_model.build_tokenizer())) * 64  # tied: one embedding matrix


def test_one_step_reports_every_phase(tmp_path):
    output = tmp_path / "memory.jsonl"
    run = subprocess.run([sys.executable, "-m", "tools.measure_memory", "--arch", "tiny", "--rows", "2",
                          "--new-tokens", "4", "--image-size", "56", "--output", str(output), "--", "--lr", "1e-3"],
                         cwd=HERE, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(output.read_text())
    assert result["parameters"] == parameters("tiny")[0] and result["flags"] == ["--lr", "1e-3"]
    assert list(result["phases"]) == list(measure_memory.PHASES)
    for phase in result["phases"].values():  # the process holds torch and transformers: well over 0.1 GB
        assert 0.1 < phase["after_gb"] <= phase["peak_gb"] + 0.01 and phase["seconds"] >= 0
    assert "loading    peak" in run.stdout and "checkpoint peak" in run.stdout
