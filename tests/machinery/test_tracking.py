"""machinery/tracking.py: a run's TensorBoard event files, read back with TensorBoard's own reader, hold every
metrics.jsonl number at its step and the sampled responses verbatim; wandb and trackio are never required (asking
for a missing one is one line before any model loads) and get the run's settings, steps and id."""

import html
import json
import re
import sys
import types

import pytest
from tensorboard.plugin_util import markdown_to_safe_html

import eval
import fast_grpo
from helpers import assert_events_equal_metrics, read_events, run
from machinery import loading, tracking


def code_blocks(markdown):
    """The contents of the code blocks of `markdown` as TensorBoard's text dashboard shows them."""
    rendered = markdown_to_safe_html(markdown)
    return [html.unescape(block) for block in re.findall(r"<pre><code>(.*?)</code></pre>", rendered, re.S)]


def test_event_files_hold_every_metric_and_the_samples_and_its_config_reruns_it(warm_model_dir, dataset, tmp_path):
    metrics = run(warm_model_dir, dataset, tmp_path / "run", "--log-every", "1")
    assert_events_equal_metrics(tmp_path / "run", metrics)
    assert all(line["lr"] == 1e-3 for line in metrics)  # the constant schedule: exactly --lr
    texts = read_events(tmp_path / "run")[1]["samples/text_summary"]
    samples = [json.loads(line) for line in open(tmp_path / "run" / "samples.jsonl")]
    assert sorted(texts) == [1, 2]
    for sample in samples:  # every response verbatim, in its own code block, with its reward
        blocks = code_blocks(texts[sample["step"]])
        assert sample["question"] + "\n" in blocks
        assert all(response + "\n" in blocks for response in sample["responses"])
        assert all(f"reward {reward}:" in texts[sample["step"]] for reward in sample["rewards"])
    # the run's own record reruns it: the same metrics, except the time
    fast_grpo.main(["--config", str(tmp_path / "run" / "config.yaml"), "--output-dir", str(tmp_path / "again")])
    rerun = [json.loads(line) for line in open(tmp_path / "again" / "metrics.jsonl")]
    assert [{k: v for k, v in m.items() if k != "seconds"} for m in rerun] == \
        [{k: v for k, v in m.items() if k != "seconds"} for m in metrics]


def test_scalars_group_every_number_and_leave_out_none_and_text():
    line = dict(step=3, reward_mean=1.5, tokens_easy=None, tokens_by_level={"easy": 12.0, "hard": 80.5},
                update_skipped="every group filtered out", skipped_updates=0, lr=1e-6, val_accuracy=0.5, new_field=2)
    assert tracking.scalars(line) == {"rewards/reward_mean": 1.5, "lengths/tokens_by_level/easy": 12.0,
                                      "lengths/tokens_by_level/hard": 80.5, "update/skipped_updates": 0.0,
                                      "update/lr": 1e-6, "validation/val_accuracy": 0.5, "other/new_field": 2.0}
    # a --reward-fn's parts (reward_<part>) go with the rewards
    assert tracking.scalars(dict(step=1, reward_accuracy=0.5, accuracy=None)) == {"rewards/reward_accuracy": 0.5}


@pytest.mark.parametrize("text", ["<think>a</think><answer>7</answer>", "```python\nx = 1\n```", "a ```` b",
                                  "", "<script>alert(1)</script> & *not bold*"])
def test_a_response_is_shown_verbatim_whatever_it_holds(text):
    assert code_blocks(tracking.fenced(text)) == [text + "\n"]


@pytest.mark.parametrize("script", ["fast_grpo.py", "eval.py"])
@pytest.mark.parametrize("backend", ["wandb", "trackio"])
def test_a_missing_backend_is_one_line_before_any_model_loads(script, backend, tiny_model_dir, dataset, tmp_path,
                                                             monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, backend, None)  # not installed, even where it is
    monkeypatch.setattr(loading, "load_model", lambda *a, **k: pytest.fail("a model was loaded"))
    argv = ["--model", tiny_model_dir, "--data", dataset, "--report-to", f"tensorboard,{backend}"]
    with pytest.raises(SystemExit) as exit_info:
        fast_grpo.main(argv + ["--output-dir", str(tmp_path)]) if script == "fast_grpo.py" else eval.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: --report-to {backend}: {backend} is not installed (pip install {backend})"


@pytest.mark.parametrize("report_to, message", [("tensorbord", "--report-to: unknown 'tensorbord'"),
                                                ("none,wandb", "--report-to none cannot be combined")])
def test_a_wrong_report_to_is_one_line(report_to, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        fast_grpo.parse_args(["--model", "Qwen/Qwen2-VL-2B-Instruct", "--report-to", report_to])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().startswith(f"error: {message}")


def test_none_writes_no_event_files_and_tensorboard_alone_needs_no_other_package(tmp_path):
    assert tracking.problem("tensorboard") is None and tracking.problem("none") is None
    with tracking.start(str(tmp_path), "none", {}, "run") as tracker:
        tracker.log(1, {"rewards/reward_mean": 1.0})
    assert list(tmp_path.iterdir()) == []


def fake_backend(name, calls):
    """A stand-in module for wandb or trackio that records what it is called with."""
    module = types.ModuleType(name)
    record = lambda call: lambda *args, **kwargs: calls.append((call, args, kwargs)) or run_object  # noqa: E731
    run_object = types.SimpleNamespace(log=record("run.log"), finish=record("run.finish"))
    module.init, module.log, module.finish = record("init"), record("log"), record("finish")
    module.util = types.SimpleNamespace(generate_id=lambda: f"id{len(calls)}")
    module.Table = lambda columns, data: ("table", columns, data)
    return module


def test_wandb_gets_the_settings_the_steps_and_on_resume_the_same_run_id(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setitem(sys.modules, "wandb", fake_backend("wandb", calls))
    monkeypatch.setenv("WANDB_PROJECT", "mine")
    samples = [dict(step=2, question="q", answer="7", responses=["a", "b"], rewards=[1.0, 0.0])]
    with tracking.start(str(tmp_path), "wandb", {"lr": 1e-6}, "run") as tracker:
        tracking.log_step(tracker, dict(step=2, reward_mean=0.5, loss=None), samples, with_samples=True)
    first_id = calls[0][2]["id"]
    assert calls[0] == ("init", (), dict(project="mine", name="run", id=first_id, resume="allow", dir=str(tmp_path),
                                         config={"lr": 1e-6}))
    assert calls[1] == ("run.log", ({"rewards/reward_mean": 0.5, "samples": (
        "table", ["step", "question", "response", "reward"], [[2, "q", "a", 1.0], [2, "q", "b", 0.0]])},),
        dict(step=2))
    assert calls[2][0] == "run.finish"
    tracking.start(str(tmp_path), "wandb", {}, "run", resumed_at=2).close()
    assert calls[3][2]["id"] == first_id  # resumed: the same wandb run
    tracking.start(str(tmp_path), "wandb", {}, "run").close()
    assert calls[5][2]["id"] != first_id  # a new run in the folder: a new wandb run


def test_trackio_gets_the_settings_and_the_steps(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setitem(sys.modules, "trackio", fake_backend("trackio", calls))
    with tracking.start(str(tmp_path), "trackio", {"lr": 1e-6}, "run", resumed_at=4) as tracker:
        tracker.log(5, {"rewards/reward_mean": 0.5})
    assert calls == [("init", (), dict(project="fast-grpo", name="run", config={"lr": 1e-6}, resume="allow")),
                     ("log", ({"rewards/reward_mean": 0.5},), dict(step=5)), ("finish", (), {})]


def test_wandb_offline_where_it_is_installed(warm_model_dir, dataset, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")  # never a login, never the network
    monkeypatch.setenv("WANDB_SILENT", "true")
    run(warm_model_dir, dataset, tmp_path, "--report-to", "tensorboard,wandb", steps=2)
    run_id = (tmp_path / tracking.WANDB_ID_FILE).read_text().strip()
    assert list((tmp_path / "wandb").glob(f"offline-run-*-{run_id}"))
    run(warm_model_dir, dataset, tmp_path, "--report-to", "tensorboard,wandb", "--resume", "auto", steps=2)
    assert (tmp_path / tracking.WANDB_ID_FILE).read_text().strip() == run_id


def test_a_fresh_run_replaces_the_folders_curves_and_a_resumed_one_continues_them(tmp_path):
    def log(steps, scale, **how):
        with tracking.start(str(tmp_path), "tensorboard", {}, "run", **how) as tracker:
            for step in steps:
                tracker.log(step, {"rewards/reward_mean": scale * step})
        return read_events(tmp_path)[0]["rewards/reward_mean"]

    assert log([1, 2, 3], 1.0, fresh=True) == {1: 1.0, 2: 2.0, 3: 3.0}
    assert log([2, 3], 10.0, resumed_at=1) == {1: 1.0, 2: 20.0, 3: 30.0}  # steps 2-3 redone, not repeated
    assert log([1], 5.0, fresh=True) == {1: 5.0}
