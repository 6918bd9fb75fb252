"""machinery/harness.py: the learning-rate schedule, a function of the step set on the optimizer before each step, so
that a run resumed midway sets what the uninterrupted run set."""

import shutil
import types

import pytest
import torch

from helpers import assert_events_equal_metrics, run, weights
from machinery import harness


def schedule(name, warmup_ratio=0.0, max_steps=4, lr=1.0):
    settings = types.SimpleNamespace(lr_scheduler=name, warmup_ratio=warmup_ratio, max_steps=max_steps, lr=lr)
    return [harness.learning_rate(step, settings) for step in range(max_steps)]


def test_learning_rates_by_hand():
    assert schedule("constant", lr=7e-5) == [7e-5] * 4  # the default: exactly --lr, every step
    assert schedule("linear") == [1.0, 0.75, 0.5, 0.25]
    assert schedule("cosine") == pytest.approx([1.0, 0.5 + 0.5 * 2 ** -0.5, 0.5, 0.5 - 0.5 * 2 ** -0.5])
    # warm-up: ceil(0.25 x 4) = 1 step at 1/1, then cosine over the 3 others
    assert schedule("cosine", 0.25) == pytest.approx([1.0, 1.0, 0.75, 0.25])
    assert schedule("constant", 0.5) == [0.5, 1.0, 1.0, 1.0]  # ceil(0.5 x 4) = 2 steps rise: 1/2, 2/2
    assert schedule("linear", 0.5) == [0.5, 1.0, 1.0, 0.5]


def test_the_step_sets_its_learning_rate_on_every_parameter_group():
    parameters = [torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))]
    optimizer = torch.optim.AdamW([{"params": parameters[:1]}, {"params": parameters[1:]}], lr=1.0)
    settings = types.SimpleNamespace(lr_scheduler="linear", warmup_ratio=0.0, max_steps=4, lr=1.0)
    assert harness.set_learning_rate(types.SimpleNamespace(optimizer=optimizer), 2, settings) == 0.5
    assert [group["lr"] for group in optimizer.param_groups] == [0.5, 0.5]


def test_a_cosine_run_resumed_after_step_2_of_4_equals_the_straight_run(warm_model_dir, dataset, tmp_path):
    flags = ("--lr-scheduler", "cosine", "--warmup-ratio", "0.25")
    straight = run(warm_model_dir, dataset, tmp_path, *flags, steps=4)  # saves checkpoint-2 and checkpoint-4
    assert [m["lr"] for m in straight] == pytest.approx([1e-3, 1e-3, 0.75e-3, 0.25e-3])
    final = weights(tmp_path / "checkpoint-4")
    shutil.rmtree(tmp_path / "checkpoint-4")  # as if the run had died after step 4's metrics were written
    resumed = run(warm_model_dir, dataset, tmp_path, *flags, "--resume", "auto", steps=4)  # from checkpoint-2
    assert [{k: v for k, v in m.items() if k != "seconds"} for m in resumed] == \
        [{k: v for k, v in m.items() if k != "seconds"} for m in straight]
    again = weights(tmp_path / "checkpoint-4")
    assert all(torch.equal(final[k], again[k]) for k in final)
    # the curves continue without a repeated step: TensorBoard hides the first run's steps 3-4 (purge_step)
    assert_events_equal_metrics(tmp_path, resumed)
