"""Training that survives numerical trouble, interruptions, kills while saving, full disks, out-of-memory errors and
cut log lines."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys

import pytest
import torch

import eval
import fast_grpo
from machinery import checkpoints, logs
from helpers import run, weights


def error_line(capsys):
    """The run's one-line error: the last line on stderr (progress bars come before it), and no traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith("error: "), line
    return line


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


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"),
                                     RuntimeError("[enforce fail at inline_container.cc:778] . PytorchStreamWriter "
                                                  "failed writing file data/0: file write failed")])  # torch.save's
def test_a_failed_save_stops_with_one_line_and_leaves_the_previous_checkpoint_intact(
        warm_model_dir, dataset, tmp_path, monkeypatch, capsys, failure):
    real_save, saves = torch.save, []

    def disk_fills_up(*args, **kwargs):  # the second checkpoint finds the disk full
        saves.append(1)
        if len(saves) == 2:
            raise failure
        return real_save(*args, **kwargs)

    monkeypatch.setattr(torch, "save", disk_fills_up)
    with pytest.raises(SystemExit) as exit_info:
        run(warm_model_dir, dataset, tmp_path, steps=4)  # saves at steps 2 and 4
    err = error_line(capsys)
    assert exit_info.value.code == 1
    assert "could not write checkpoint-4" in err and str(failure).split(":")[0] in err
    assert f"{tmp_path / 'checkpoint-2'} is intact" in err
    assert not os.path.exists(tmp_path / "checkpoint-4.tmp") and not os.path.exists(tmp_path / "checkpoint-4")
    assert checkpoints.checkpoint_problem(str(tmp_path / "checkpoint-2")) is None
    assert checkpoints.find_checkpoint("auto", str(tmp_path)).endswith("checkpoint-2")


# ------------------------------------------------------------------------------------------------------------------
# Checkpoints that survive a kill, and --resume auto that takes the newest complete one


def test_a_kill_during_a_save_leaves_a_tmp_folder_that_resume_skips(warm_model_dir, dataset, tmp_path, capsys):
    command = [sys.executable, "fast_grpo.py", "--model", warm_model_dir, "--data", dataset, "--output-dir",
               str(tmp_path), "--max-steps", "4", "--batch-size", "4", "--group-size", "4", "--max-new-tokens", "24",
               "--lr", "1e-3", "--weight-decay", "0", "--save-every", "2"]
    env = dict(os.environ, FAST_GRPO_TEST_PAUSE_IN_SAVE="4:60", OMP_NUM_THREADS="1")  # pause in checkpoint-4's save
    process = subprocess.Popen(command, cwd=os.path.dirname(os.path.abspath(fast_grpo.__file__)), env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        for line in process.stdout:
            if "checkpoint-4.tmp: paused" in line:
                process.send_signal(signal.SIGKILL)  # killed in the middle of writing checkpoint-4
                break
    finally:
        process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL
    assert os.path.isdir(tmp_path / "checkpoint-4.tmp") and not os.path.exists(tmp_path / "checkpoint-4")
    assert checkpoints.checkpoint_problem(f"{tmp_path / 'checkpoint-4.tmp'}/").startswith("an unfinished save")

    resumed = run(warm_model_dir, dataset, tmp_path, "--resume", "auto", steps=4)
    out = capsys.readouterr().out
    assert f"skipping {tmp_path / 'checkpoint-4.tmp'}: an unfinished save" in out
    assert f"resumed from {tmp_path / 'checkpoint-2'} at step 2" in out
    assert [m["step"] for m in resumed] == [1, 2, 3, 4]
    assert checkpoints.checkpoint_problem(str(tmp_path / "checkpoint-4")) is None


@pytest.mark.parametrize("damage, problem", [
    (lambda folder: open(folder / "model.safetensors", "r+b").truncate(1000), "model.safetensors is 1000 bytes"),
    (lambda folder: os.remove(folder / "trainer_state.pt"), "trainer_state.pt is missing"),
    (lambda folder: os.remove(folder / "checkpoint.json") or os.remove(folder / "config.json"), "config.json is missing"),
])
def test_resume_auto_skips_a_damaged_checkpoint(warm_model_dir, dataset, tmp_path, capsys, damage, problem):
    run(warm_model_dir, dataset, tmp_path, steps=4)  # checkpoint-2 and checkpoint-4
    damage(tmp_path / "checkpoint-4")
    assert checkpoints.find_checkpoint("auto", str(tmp_path)) == str(tmp_path / "checkpoint-2")
    assert f"skipping {tmp_path / 'checkpoint-4'}: {problem}" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:  # named explicitly, it is refused in one line
        run(warm_model_dir, dataset, tmp_path, "--resume", str(tmp_path / "checkpoint-4"), steps=4)
    assert exit_info.value.code == 2
    assert f"checkpoint-4: incomplete checkpoint ({problem}" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------------------------
# Out of memory: one line naming the step, the work and its size, after saving the last completed step


def test_out_of_memory_in_the_update_saves_the_last_step_and_names_the_micro_batch(
        warm_model_dir, dataset, tmp_path, monkeypatch, capsys):
    real_logprobs, calls = fast_grpo.vlm.token_logprobs, []

    def forward_runs_out_of_memory(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:  # step 2's first forward (each step: 2 micro-batches of 8 rows x reference, policy)
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_logprobs(*args, **kwargs)

    monkeypatch.setattr(fast_grpo.vlm, "token_logprobs", forward_runs_out_of_memory)
    with pytest.raises(SystemExit) as exit_info:
        run(warm_model_dir, dataset, tmp_path, "--method", "grpo", "--micro-batch-size", "8", "--save-every", "100",
            steps=3)
    err = error_line(capsys)
    assert exit_info.value.code == 1
    assert re.search(r"out of memory at step 2 in the reference's forward pass, a micro-batch of 8 rows x \d+ tokens",
                     err), err
    assert f"saved step 1 in {tmp_path / 'checkpoint-1'}" in err
    assert "--micro-batch-size (now 8), --gradient-checkpointing, --freeze-vision, --max-pixels" in err
    assert checkpoints.checkpoint_problem(str(tmp_path / "checkpoint-1")) is None
    monkeypatch.setattr(fast_grpo.vlm, "token_logprobs", real_logprobs)
    resumed = run(warm_model_dir, dataset, tmp_path, "--method", "grpo", "--micro-batch-size", "4", "--resume", "auto",
                  "--save-every", "100", steps=3)  # with less memory per micro-batch, the run goes on
    assert [m["step"] for m in resumed] == [1, 2, 3]


def test_out_of_memory_right_after_a_resume_names_the_checkpoint_it_resumed_from(
        warm_model_dir, dataset, tmp_path, monkeypatch, capsys):
    run(warm_model_dir, dataset, tmp_path / "first", steps=4)  # checkpoint-2 and checkpoint-4
    resumed_from = tmp_path / "first" / "checkpoint-2"

    def forward_runs_out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(fast_grpo.vlm, "token_logprobs", forward_runs_out_of_memory)
    with pytest.raises(SystemExit):
        run(warm_model_dir, dataset, tmp_path / "second", "--resume", str(resumed_from), steps=4)
    assert f"step 2 is in {resumed_from}: continue with --resume {resumed_from}" in error_line(capsys)
    assert not os.path.exists(tmp_path / "second" / "checkpoint-2")  # nothing new was written


def test_resume_with_another_number_of_processes_is_refused(warm_model_dir, dataset, tmp_path, monkeypatch, capsys):
    run(warm_model_dir, dataset, tmp_path, steps=2)
    monkeypatch.setattr(fast_grpo.distributed, "world_size", lambda: 2)  # as if started by torchrun with 2
    with pytest.raises(SystemExit) as exit_info:
        run(warm_model_dir, dataset, tmp_path, "--resume", "auto", steps=2)
    assert exit_info.value.code == 2
    assert "resumed with a different number of processes (1 when it was saved, 2 now)" in error_line(capsys)


def test_out_of_memory_while_sampling_the_first_step(warm_model_dir, dataset, tmp_path, monkeypatch, capsys):
    def sampling_runs_out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(fast_grpo.vlm, "sample", sampling_runs_out_of_memory)
    with pytest.raises(SystemExit) as exit_info:
        run(warm_model_dir, dataset, tmp_path, steps=2)
    err = error_line(capsys)
    assert exit_info.value.code == 1
    assert re.search(r"out of memory at step 1 in sampling, a micro-batch of 16 rows x \d+ tokens; no step had "
                     r"completed, nothing to save", err), err


# ------------------------------------------------------------------------------------------------------------------
# Logs that survive a kill


def test_a_log_line_cut_by_a_kill_is_skipped_by_resume_and_readers(warm_model_dir, dataset, tmp_path):
    run(warm_model_dir, dataset, tmp_path, steps=4)
    shutil.rmtree(tmp_path / "checkpoint-4")  # killed during step 5's line, say, with checkpoint-4 not yet there
    for name in ("metrics.jsonl", "samples.jsonl"):
        with open(tmp_path / name, "a") as f:
            f.write('{"step": 5, "reward_mean": 0.')  # a kill in the middle of a line
    resumed = run(warm_model_dir, dataset, tmp_path, "--resume", "auto", steps=4)
    assert [m["step"] for m in resumed] == [1, 2, 3, 4]
    assert [s["step"] for s in logs.read_jsonl(tmp_path / "samples.jsonl")] == [1, 1, 2, 2, 3, 3, 4, 4]
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 5, "tokens_by_lev')
    assert [m["step"] for m in logs.read_jsonl(tmp_path / "metrics.jsonl")] == [1, 2, 3, 4]
    assert os.path.getsize(eval.plot_tokens_per_level(tmp_path / "metrics.jsonl", tmp_path / "plot.png")) > 0


def test_each_log_append_is_one_write_call(tmp_path, monkeypatch):
    real_write, calls = os.write, []
    monkeypatch.setattr(os, "write", lambda fd, text: calls.append(text) or real_write(fd, text))
    logs.append_jsonl(tmp_path / "log.jsonl", [{"step": 1, "text": "x" * 100_000}, {"step": 2}])
    assert len(calls) == 1  # a kill lands before or after it, never between two lines' halves
    assert [r["step"] for r in logs.read_jsonl(tmp_path / "log.jsonl")] == [1, 2]


def test_compare_with_a_cut_results_file_gives_one_line(tmp_path, capsys):
    (tmp_path / "run.json").write_text('{"name": "fast", "results": {"data": {"all": {"accu')
    with pytest.raises(SystemExit) as exit_info:
        eval.main(["--compare", str(tmp_path / "run.json")])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().startswith(f"error: {tmp_path / 'run.json'}: not a results file")
