"""Training that survives numerical trouble, interruptions and crashes while saving."""

import json
import os
import signal

import pytest
import torch

import checkpoints
import fast_grpo
from test_end_to_end import run, weights


def test_non_finite_updates_are_skipped_then_the_run_stops_with_the_last_good_weights(
        warm_model_dir, dataset, tmp_path, monkeypatch, capsys):
    real_loss = fast_grpo.grpo_loss
    monkeypatch.setattr(fast_grpo, "grpo_loss", lambda *a, **k: real_loss(*a, **k) * float("nan"))
    with pytest.raises(SystemExit) as exit_info:
        run(warm_model_dir, dataset, tmp_path, "--method", "grpo", steps=6)  # grpo: every group is kept
    assert exit_info.value.code == 1
    assert "3 steps in a row had a non-finite loss" in capsys.readouterr().err
    metrics = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert [m["step"] for m in metrics] == [1, 2, 3]
    assert all(m["skipped_updates"] == 1 for m in metrics)
    before, after = weights(warm_model_dir), weights(tmp_path / "checkpoint-3")
    assert all(torch.equal(before[k], after[k]) for k in before)  # the NaN never reached the weights


def test_sigint_finishes_the_step_saves_and_exits_cleanly(warm_model_dir, dataset, tmp_path, monkeypatch):
    real_update = fast_grpo.policy_update
    calls = []

    def interrupted_update(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C in the middle of an update
        return real_update(*args, **kwargs)

    monkeypatch.setattr(fast_grpo, "policy_update", interrupted_update)
    handler_before = signal.getsignal(signal.SIGINT)
    metrics = run(warm_model_dir, dataset, tmp_path, "--method", "grpo", "--save-every", "100", steps=6)
    assert [m["step"] for m in metrics] == [1, 2]  # the interrupted step was completed and logged
    assert os.path.exists(tmp_path / "checkpoint-2" / "trainer_state.pt")
    assert signal.getsignal(signal.SIGINT) is handler_before  # handed back to the caller


def test_a_crash_while_saving_leaves_the_previous_checkpoint_intact(warm_model_dir, dataset, tmp_path, monkeypatch):
    run(warm_model_dir, dataset, tmp_path, steps=2)
    good = weights(tmp_path / "checkpoint-2")
    real_save = torch.save

    def dying_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(OSError):
        checkpoints.save_checkpoint(str(tmp_path), 2, fast_grpo.vlm.load_model(warm_model_dir),
                                  fast_grpo.vlm.load_processor(warm_model_dir), torch.optim.SGD([torch.zeros(1)]),
                                  fast_grpo.Args())
    monkeypatch.setattr(torch, "save", real_save)
    again = weights(tmp_path / "checkpoint-2")
    assert all(torch.equal(good[k], again[k]) for k in good)
    assert os.path.exists(tmp_path / "checkpoint-2" / "trainer_state.pt")
    assert checkpoints.find_checkpoint("auto", str(tmp_path)).endswith("checkpoint-2")
