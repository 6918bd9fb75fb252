"""machinery/checkpoints.py: what a resumed run must keep, and checkpoints written before a key of it existed."""

import dataclasses

import pytest

from data_loading import loader
from fast_grpo import parse_args
from machinery import checkpoints


def test_the_schedule_and_the_reward_file_must_stay_and_older_checkpoints_ran_without_them():
    args = parse_args(["--model", "Qwen/Qwen2-VL-2B-Instruct", "--data", "d.jsonl"])
    saved = dataclasses.asdict(args)
    older = {key: value for key, value in saved.items() if key not in ("lr_scheduler", "warmup_ratio", "reward_fn")}
    checkpoints.check_resume_args(older, args, "checkpoint-2")  # written before the flags: constant, no warm-up
    for flag, value in [("lr_scheduler", "cosine"), ("warmup_ratio", 0.1), ("reward_fn", "task.py:score")]:
        with pytest.raises(loader.DataError, match=f"--{flag.replace('_', '-')} was"):
            checkpoints.check_resume_args(older, dataclasses.replace(args, **{flag: value}), "checkpoint-2")
        with pytest.raises(loader.DataError, match="resumed with different arguments"):
            checkpoints.check_resume_args({**saved, flag: value}, args, "checkpoint-2")
