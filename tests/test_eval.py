"""eval.py: summaries computed by hand, and a real run on the tiny model."""

import json
import os

import numpy as np
import pytest

import eval as evaluation
from helpers import read_events
from machinery import loading
import methods


def record(correct, tokens, level="easy", fmt=1.0, truncated=False, index=0):
    return dict(index=index, level=level, benchmark=None, correct=correct, format=fmt, tokens=tokens,
                truncated=truncated, response="")


def test_summary_by_hand():
    records = [record(1.0, 10), record(0.0, 30, fmt=0.0), record(1.0, 20, truncated=True), record(1.0, 100)]
    summary = evaluation.summarise(records)
    assert summary == dict(accuracy=0.75, tokens_mean=40.0, tokens_median=25.0, well_formed=0.75, truncated=0.25,
                           count=4)


def test_groups_by_level_else_by_own_pass_rate():
    by_level = [record(1.0, 5, level="hard"), record(0.0, 5, level="easy")]
    assert evaluation.group_key(by_level, 1) == ["hard", "easy"]
    # K = 4 samples of two questions: question 0 passes 4/4, question 1 passes 1/4
    sampled = [record(1.0, 5, level=None, index=0)] * 4 + [record(float(i == 0), 5, level=None, index=1)
                                                           for i in range(4)]
    assert evaluation.group_key(sampled, 4) == ["pass>=0.75"] * 4 + ["pass<=0.25"] * 4
    assert evaluation.group_key([record(1.0, 5, level=None)], 1) == ["all"]


def test_eval_cli_on_the_tiny_model(tiny_model_dir, dataset, tmp_path, capsys):
    output = tmp_path / "results.json"
    evaluation.main(["--model", tiny_model_dir, "--data", dataset, "--max-new-tokens", "8", "--batch-size", "3",
                     "--output", str(output)])
    results = json.load(open(output))["results"]
    summary = results["data"]["all"]
    assert summary["count"] == 8 and summary["accuracy"] == 0.0  # a random model answers nothing right
    assert set(summary) == {"accuracy", "tokens_mean", "tokens_median", "well_formed", "truncated", "count"}
    assert 1 <= summary["tokens_mean"] <= 8
    assert "| data | all |" in capsys.readouterr().out


def test_eval_results_are_tensorboard_scalars_at_the_checkpoints_step(tiny_model_dir, dataset, tmp_path):
    os.symlink(tiny_model_dir, tmp_path / "checkpoint-3")  # as a run's checkpoint-3/
    evaluation.main(["--model", str(tmp_path / "checkpoint-3"), "--data", dataset, "--max-new-tokens", "4",
                     "--batch-size", "8", "--output", str(tmp_path / "results.json"), "--output-dir",
                     str(tmp_path / "run")])
    summary = json.load(open(tmp_path / "results.json"))["results"]["data"]["all"]
    scalars, texts = read_events(tmp_path / "run")
    assert {tag: points for tag, points in scalars.items() if tag.startswith("eval/data/all/")} == {
        f"eval/data/all/{key}": {3: float(np.float32(value))} for key, value in summary.items()}
    assert "| data | all |" in texts["eval/table/text_summary"][3]
    assert not list(tmp_path.glob("events.out.tfevents.*"))  # in --output-dir, not beside --output


def test_eval_bad_data_exits_2(tmp_path, capsys):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"question": "q"}\n')
    with pytest.raises(SystemExit) as exit_info:
        evaluation.main(["--data", str(path)])
    assert exit_info.value.code == 2
    assert f"{path}:1: no answer column (looked for answer, solution; the row has question; pass --answer-key)" in (
        capsys.readouterr().err)  # no image is fine: a text-only question


def test_compare_prints_one_table_and_writes_both_plots(tmp_path, capsys):
    def result(name, accuracy, tokens):
        summary = lambda a, t: dict(accuracy=a, tokens_mean=t, tokens_median=t, well_formed=1.0,  # noqa: E731
                                    truncated=0.0, count=10)
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(dict(name=name, results={"data": {
            "easy": summary(accuracy, tokens / 2), "hard": summary(accuracy / 2, tokens * 2),
            "all": summary(accuracy, tokens)}})))
        return str(path)

    paths = [result("grpo", 0.8, 100.0), result("fast", 0.82, 50.0)]
    evaluation.main(["--compare", *paths, "--plot-dir", str(tmp_path / "plots")])
    out = capsys.readouterr().out
    assert "| fast | 82.0 | 50.0 | 82.0 | 25.0 | 41.0 | 100.0 |" in out
    for png in ("accuracy_vs_tokens.png", "tokens_per_level.png"):
        assert (tmp_path / "plots" / png).read_bytes()[:4] == b"\x89PNG"


def test_accuracy_of_a_stub_response_list_matches_a_hand_count(tiny_model_dir, tmp_path, monkeypatch):
    import torch

    import vlm
    from conftest import write_dataset

    path = write_dataset(tmp_path, num_examples=6)  # answers "1" .. "6", no level field
    responses = ["<think>x</think><answer>1</answer>",  # right
                 "<think>x</think><answer>3</answer>",  # wrong (answer 2)
                 "<answer>3</answer>",                  # right answer, but malformed
                 "<think></think><answer>(4)</answer>",  # wrong: "(4)" is neither a number nor a choice letter
                 "no tags at all",                      # wrong
                 "<think>y</think><answer>6.0</answer>"]  # right: 6.0 == 6

    def stub_sample(model, processor, inputs, *args, **kwargs):
        rows = inputs["input_ids"].shape[0]
        start = stub_sample.calls
        stub_sample.calls += rows
        texts = responses[start:start + rows]
        mask = torch.ones(rows, 4, dtype=torch.bool)
        return dict(texts=texts, response_mask=mask, truncated=torch.zeros(rows, dtype=torch.bool),
                    completion_ids=torch.zeros(rows, 4, dtype=torch.long))

    stub_sample.calls = 0
    monkeypatch.setattr(vlm, "sample", stub_sample)
    output = tmp_path / "results.json"
    evaluation.main(["--model", tiny_model_dir, "--data", path, "--batch-size", "4", "--output", str(output)])
    summary = json.load(open(output))["results"]["data"]["all"]
    correct_by_hand = [True, False, True, False, False, True]
    well_formed_by_hand = [True, True, False, True, False, True]
    assert summary["count"] == 6
    assert summary["accuracy"] == pytest.approx(sum(correct_by_hand) / 6)
    assert summary["well_formed"] == pytest.approx(sum(well_formed_by_hand) / 6)
    assert summary["tokens_mean"] == 4.0


def test_start_evaluation_is_cached_by_model_files_and_settings(tmp_path, monkeypatch):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "model.safetensors").write_bytes(b"weights v1")
    (model_dir / "config.json").write_text("{}")
    calls = []

    def fake_demo_evaluation(model, processor, method, max_new_tokens):
        calls.append((method, max_new_tokens))
        return dict(greedy={"all": len(calls)}, sampled={"all": len(calls)})

    monkeypatch.setattr(evaluation, "demo_evaluation", fake_demo_evaluation)
    first = evaluation.start_evaluation(None, None, str(model_dir), "fast", 256)
    assert evaluation.start_evaluation(None, None, str(model_dir), "fast", 256) == first  # reused
    assert len(calls) == 1
    evaluation.start_evaluation(None, None, str(model_dir), "fast", 128)  # another setting: recomputed
    assert len(calls) == 2
    (model_dir / "model.safetensors").write_bytes(b"weights v2")  # other weights: recomputed
    assert evaluation.start_evaluation(None, None, str(model_dir), "fast", 128)["greedy"]["all"] == 3
    evaluation.start_evaluation(None, None, str(model_dir), "grpo", 128)  # another method has its own file
    assert evaluation.start_evaluation(None, None, str(model_dir), "fast", 128)["greedy"]["all"] == 3
    assert len(calls) == 4
    monkeypatch.setitem(evaluation.DEMO_EVAL, "num_samples", 8)  # another evaluation setting: recomputed
    evaluation.start_evaluation(None, None, str(model_dir), "fast", 128)
    assert len(calls) == 5
    # the reference's dtype and device and the processor's image size are part of the key too
    keys = {evaluation.cache_key(str(model_dir), "fast", 128, runtime) for runtime in (
        None, dict(dtype="torch.float32", device="cpu"), dict(dtype="torch.bfloat16", device="cpu"),
        dict(dtype="torch.float32", device="cuda"))}
    assert len(keys) == 4


def test_a_method_key_depends_on_its_own_preset_only(tmp_path, monkeypatch):
    (tmp_path / "config.json").write_text("{}")
    before = {m: evaluation.cache_key(str(tmp_path), m, 256) for m in ("fast", "no-thinking")}
    monkeypatch.setitem(methods.PROMPTS, "new", "Answer in one word.")  # a sixth preset joins
    monkeypatch.setitem(methods.METHODS, "new", dict(methods.METHODS["fast"], prompt="new"))
    assert {m: evaluation.cache_key(str(tmp_path), m, 256) for m in ("fast", "no-thinking")} == before
    assert evaluation.cache_key(str(tmp_path), "new", 256) not in before.values()
    monkeypatch.setitem(methods.PROMPTS, "fast", methods.PROMPTS["fast"] + " Be brief.")  # its own prompt changed
    assert evaluation.cache_key(str(tmp_path), "fast", 256) != before["fast"]
    assert evaluation.cache_key(str(tmp_path), "no-thinking", 256) == before["no-thinking"]


def test_the_shipped_start_evaluations_are_valid():
    """The demo model's cached start evaluations match the key of the settings the default run uses (CPU, float32,
    the demo processor), so `python fast_grpo.py --method M` reuses them."""
    processor = loading.load_processor(methods.DEMO_MODEL)
    runtime = dict(dtype="torch.float32", device="cpu", image_size=dict(processor.image_processor.size))
    shipped = [name for name in os.listdir(methods.DEMO_MODEL) if name.startswith(evaluation.START_CACHE)]
    assert len(shipped) >= 5
    for name in shipped:
        method = name.removeprefix(evaluation.START_CACHE + "-").removesuffix(".json")
        with open(os.path.join(methods.DEMO_MODEL, name)) as f:
            assert json.load(f)["key"] == evaluation.cache_key(methods.DEMO_MODEL, method, 256, runtime), name


def test_plot_tokens_per_level_reads_metrics(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text("\n".join(json.dumps(dict(step=s, tokens_by_level={"easy": 50 - s, "hard": 100 + s}))
                                 for s in range(1, 4)) + "\n")
    path = evaluation.plot_tokens_per_level(str(metrics), str(tmp_path / "plot.png"))
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_before_after_table_shows_both_decodings():
    summary = lambda acc, tok: dict(accuracy=acc, tokens_mean=tok, count=10)  # noqa: E731
    results = {run: {decoding: {"easy": summary(1.0, 50.0 if run == "start" else 12.0)}
                     for decoding in ("greedy", "sampled")} for run in ("start", "final")}
    table = evaluation.before_after_table(results)
    assert "| greedy | easy | 100.0 -> 100.0 | 50.0 -> 12.0 | 10 |" in table
    assert "| sampled | easy |" in table


def test_demo_evaluation_of_a_subset_takes_the_first_items_of_each_level(monkeypatch):
    seen = []

    def recording_evaluate(model, processor, examples, num_samples=1, **kwargs):
        seen.append(([str(e["digits"]) for e in examples], [e["level"] for e in examples], num_samples))
        return {"data": {}}

    monkeypatch.setattr(evaluation, "evaluate", recording_evaluate)
    evaluation.demo_evaluation(None, None, "fast", 256)
    assert [(len(levels), k) for _, levels, k in seen] == [(900, 1), (450, 4)]  # every item; 150 per level sampled
    seen.clear()
    evaluation.demo_evaluation(None, None, "fast", 256, per_level=2)
    (greedy, greedy_levels, one), (sampled, _, four) = seen
    test_set = evaluation.loader.load_examples("synthetic", split="test")
    first = {level: [str(e["digits"]) for e in test_set if e["level"] == level][:2]
             for level in ("easy", "medium", "hard")}
    assert sorted(greedy_levels) == ["easy"] * 2 + ["hard"] * 2 + ["medium"] * 2 and (one, four) == (1, 4)
    assert all([g for g, level in zip(greedy, greedy_levels) if level == key] == first[key] for key in first)
    assert sampled == greedy  # the same items, 4 samples each
    summary = dict(accuracy=1.0, tokens_mean=5.0, count=2)
    results = {run: {d: {"easy": summary} for d in ("greedy", "sampled")} for run in ("start", "final")}
    assert "greedy on the first 2 items per level; sampled = 4 samples at T = 1 of the first 2 items per level" in \
        evaluation.before_after_table(results, per_level=2)
    assert "greedy on every item; sampled = 4 samples at T = 1 of the first 150 items" in \
        evaluation.before_after_table(results)
