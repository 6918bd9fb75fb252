"""Two training steps of every method on the warm-started tiny model, checkpoints and resume."""

import json
import math
import os
import shutil

import pytest
import torch

from helpers import run, weights

METRIC_FIELDS = ["step", "reward_mean", "accuracy", "tokens_mean", "tokens_easy", "tokens_hard", "fraction_hard",
                 "fraction_kept", "fraction_truncated", "kl", "kl_coef_mean", "clip_fraction", "loss", "grad_norm",
                 "entropy", "seconds"]


@pytest.mark.parametrize("method", ["fast", "grpo", "thinking", "no-thinking", "think-after-answer",
                                    "adaptive-thinking"])
def test_two_steps_train_log_and_checkpoint(method, warm_model_dir, dataset, tmp_path):
    metrics = run(warm_model_dir, dataset, tmp_path, "--method", method)
    assert [m["step"] for m in metrics] == [1, 2]
    assert all(field in m for m in metrics for field in METRIC_FIELDS)
    updated = [m for m in metrics if m["loss"] is not None]
    assert updated, "no step had a group with differing rewards: the warm start is too weak"
    assert all(m["grad_norm"] > 0 for m in updated)
    # the policy's mean entropy per response token: positive, and below the uniform distribution's log(vocabulary)
    vocabulary = json.load(open(os.path.join(warm_model_dir, "config.json")))["text_config"]["vocab_size"]
    assert all(0 < m["entropy"] < math.log(vocabulary) for m in updated)
    # no weight decay here: parameters move only through the GRPO gradient
    before, after = weights(warm_model_dir), weights(tmp_path / "checkpoint-2")
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert os.path.exists(tmp_path / "checkpoint-2" / "trainer_state.pt")
    samples = [json.loads(line) for line in open(tmp_path / "samples.jsonl")]
    assert len(samples[0]["responses"]) == len(samples[0]["rewards"]) == 4


def test_fast_reports_difficulty_and_dynamic_kl(warm_model_dir, dataset, tmp_path):
    metrics = run(warm_model_dir, dataset, tmp_path, "--method", "fast")
    kept = [m for m in metrics if m["fraction_kept"] > 0]
    assert kept
    # Eq. 5 keeps every coefficient within [beta_min, beta_max]; the slow half drops pass >= 0.75
    assert all(0.001 <= m["kl_coef_mean"] <= 0.03 * 0.75 + 0.001 * 0.25 for m in kept)


def test_resume_continues_where_the_run_stopped(warm_model_dir, dataset, tmp_path):
    straight = run(warm_model_dir, dataset, tmp_path, steps=4)  # saves checkpoint-2 and checkpoint-4
    final = weights(tmp_path / "checkpoint-4")
    shutil.rmtree(tmp_path / "checkpoint-4")  # as if the run had died after step 4's metrics were written
    resumed = run(warm_model_dir, dataset, tmp_path, "--resume", "auto", steps=4)  # from checkpoint-2
    assert [m["step"] for m in resumed] == [1, 2, 3, 4]  # steps 3-4 redone and appended, 1-2 kept
    for a, b in zip(straight, resumed):
        assert {k: v for k, v in a.items() if k != "seconds"} == {k: v for k, v in b.items() if k != "seconds"}
    again = weights(tmp_path / "checkpoint-4")
    assert all(torch.equal(final[k], again[k]) for k in final)


def test_resume_refuses_different_arguments(warm_model_dir, dataset, tmp_path, capsys):
    run(warm_model_dir, dataset, tmp_path, steps=2)
    with pytest.raises(SystemExit) as exit_info:
        run(warm_model_dir, dataset, tmp_path, "--resume", "auto", "--lr", "5e-4", steps=2)
    assert exit_info.value.code == 2
    assert "resumed with different arguments (--lr was 0.001, now 0.0005)" in capsys.readouterr().err


def test_bfloat16_compute_keeps_float32_weights(warm_model_dir, dataset, tmp_path):
    metrics = run(warm_model_dir, dataset, tmp_path, "--method", "grpo", "--dtype", "bfloat16", steps=2)
    assert all(m["loss"] is not None for m in metrics)
    after = weights(tmp_path / "checkpoint-2")
    before = weights(warm_model_dir)
    assert all(v.dtype == torch.float32 for v in after.values())  # mixed precision: the master weights
    assert any(not torch.equal(before[k], after[k]) for k in before)
