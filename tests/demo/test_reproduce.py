"""demo/reproduce.py's bookkeeping: the planned runs, seed means and spreads, the report, resuming. Training is faked."""

import json
import os
import sys

import pytest

from demo import reproduce


def test_planned_runs_interleave_seeds_and_give_ablations_fewer():
    runs = reproduce.planned_runs(num_seeds=3, ablation_seeds=2)
    per_config = {}
    for config, run, method, seed, flags in runs:
        per_config.setdefault(config, []).append(seed)
        assert run == f"{config}-seed{seed}"
    assert all(per_config[m] == [0, 1, 2] for m in reproduce.METHODS)
    assert all(per_config[a] == [0, 1] for a in reproduce.ABLATIONS)
    # the first pass holds seed 0 of everything, so a partial study already covers every config
    first = runs[:len(per_config)]
    assert {r[0] for r in first} == set(per_config) and {r[3] for r in first} == {0}


def fake_result(accuracy, tokens):
    level = dict(accuracy=accuracy, tokens_mean=tokens, well_formed=1.0)
    return {decoding: {g: dict(level) for g in ("easy", "medium", "hard", "all")} for decoding in ("greedy", "sampled")}


def test_study_with_faked_training_writes_means_and_spreads(tmp_path, monkeypatch):
    trained = []

    def fake_python(script, *args):  # what fast_grpo.py would leave in --output-dir
        run_dir = args[args.index("--output-dir") + 1]
        seed = int(args[args.index("--seed") + 1])
        trained.append((args[args.index("--method") + 1], seed, args[-1]))
        os.makedirs(run_dir, exist_ok=True)
        with open(os.path.join(run_dir, "before_after.json"), "w") as f:
            json.dump(dict(start=fake_result(0.5, 100.0), final=fake_result(0.6 + 0.1 * seed, 50.0 + 10 * seed)), f)
        with open(os.path.join(run_dir, "metrics.jsonl"), "w") as f:
            f.write(json.dumps(dict(step=1, accuracy=0.7)) + "\n")

    monkeypatch.setattr(reproduce, "python", fake_python)
    monkeypatch.setattr(reproduce.evaluation, "compare", lambda paths, plot_dir: None)
    argv = ["reproduce.py", "--output-dir", str(tmp_path), "--seeds", "2", "--ablation-seeds", "1", "--",
            "--device", "cpu"]
    monkeypatch.setattr(sys, "argv", argv)
    reproduce.main()
    assert len(trained) == 2 * len(reproduce.METHODS) + len(reproduce.ABLATIONS)
    assert all(flag == "cpu" for _, _, flag in trained)  # flags after -- reach every run
    report = open(tmp_path / "RESULTS.md").read()
    # seeds 0 and 1: accuracy 60 and 70 -> 65.0 ± 5.0; tokens 50 and 60 -> 55.0 ± 5.0
    assert "| grpo | 2 | 65.0 ± 5.0 / 55.0 ± 5.0 |" in report
    assert "| start (fast prompt) | 1 | 50.0 ± 0.0 / 100.0 ± 0.0 |" in report
    # a second invocation trains nothing: finished runs are reused
    trained.clear()
    reproduce.main()
    assert trained == []


def test_the_length_bias_study_runs_its_configs_and_plots_tokens_per_level(tmp_path, monkeypatch):
    runs = reproduce.planned_runs(2, 0, study="length-bias")
    assert len(runs) == 2 * len(reproduce.LENGTH_BIAS)
    flags = {config: (method, flags) for config, _, method, _, flags in runs}
    assert flags["dr-grpo"] == ("grpo", ["--aggregation", "dr-grpo", "--scale-rewards", "none"])
    assert flags["gspo-mu2"][1][:2] == flags["grpo-mu2"][1] == ["--updates-per-batch", "2"]  # GSPO's control
    trained = []

    def fake_python(script, *args):
        run_dir = args[args.index("--output-dir") + 1]
        trained.append(args)
        os.makedirs(run_dir, exist_ok=True)
        with open(os.path.join(run_dir, "before_after.json"), "w") as f:
            json.dump(dict(start=fake_result(0.5, 100.0), final=fake_result(0.6, 50.0)), f)
        with open(os.path.join(run_dir, "metrics.jsonl"), "w") as f:
            for step in (1, 2):
                f.write(json.dumps(dict(step=step, accuracy=0.7, tokens_by_level=dict(easy=10.0 * step))) + "\n")

    monkeypatch.setattr(reproduce, "python", fake_python)
    monkeypatch.setattr(reproduce.evaluation, "compare", lambda paths, plot_dir: None)
    monkeypatch.setattr(sys, "argv", ["reproduce.py", "--study", "length-bias", "--seeds", "1", "--output-dir",
                                      str(tmp_path)])
    reproduce.main()
    assert len(trained) == len(reproduce.LENGTH_BIAS)
    assert any("--importance-level" in args for args in trained)
    assert json.load(open(tmp_path / "fast-dr-grpo-seed0.json"))["training_tokens"][1] == dict(easy=20.0)
    assert os.path.getsize(tmp_path / "tokens_over_training.png") > 0
    assert "--study length-bias" in open(tmp_path / "RESULTS.md").read()


def test_the_shard_that_finishes_last_writes_the_report_even_if_the_others_finished_meanwhile(tmp_path, monkeypatch):
    runs = reproduce.planned_runs(1, 1)
    mine = [run for number, (_, run, *_) in enumerate(runs) if number % 2 == 0]

    def fake_python(script, *args):  # shard 0's runs; while its last one trains, shard 1 finishes all of its own
        run_dir = args[args.index("--output-dir") + 1]
        os.makedirs(run_dir, exist_ok=True)
        with open(os.path.join(run_dir, "before_after.json"), "w") as f:
            json.dump(dict(start=fake_result(0.5, 100.0), final=fake_result(0.6, 50.0)), f)
        open(os.path.join(run_dir, "metrics.jsonl"), "w").close()
        if os.path.basename(run_dir) == mine[-1]:
            for number, (_, run, method, *_) in enumerate(runs):
                if number % 2 == 1:
                    with open(tmp_path / f"{run}.json", "w") as f:
                        json.dump(dict(name=run, method=method, start=fake_result(0.5, 100.0),
                                       final=fake_result(0.6, 50.0)), f)

    monkeypatch.setattr(reproduce, "python", fake_python)
    monkeypatch.setattr(reproduce.evaluation, "compare", lambda paths, plot_dir: None)
    monkeypatch.setattr(sys, "argv", ["reproduce.py", "--output-dir", str(tmp_path), "--seeds", "1",
                                      "--ablation-seeds", "1", "--shard", "0/2"])
    reproduce.main()
    assert os.path.exists(tmp_path / "RESULTS.md")  # shard 1's runs were read after shard 0's own were done


def test_report_only_reports_a_partial_study(tmp_path, monkeypatch):
    os.makedirs(tmp_path / "runs")
    with open(tmp_path / "fast-seed0.json", "w") as f:
        json.dump(dict(name="fast-seed0", method="fast", start=fake_result(0.5, 90.0), final=fake_result(0.8, 40.0)), f)
    monkeypatch.setattr(reproduce, "python", lambda *a: pytest.fail("--report-only must not train"))
    monkeypatch.setattr(reproduce.evaluation, "compare", lambda paths, plot_dir: None)
    monkeypatch.setattr(sys, "argv", ["reproduce.py", "--output-dir", str(tmp_path), "--report-only"])
    reproduce.main()
    assert "| fast | 1 | 80.0 ± 0.0 / 40.0 ± 0.0 |" in open(tmp_path / "RESULTS.md").read()


def table(tokens, accuracy):
    """A config's mean_and_spread-shaped table: {decoding: {level: {key: (mean, std)}}} from per-level values."""
    levels = dict(zip(("easy", "medium", "hard", "all"), zip(tokens, accuracy)))
    return {d: {level: dict(tokens_mean=(t, 0.0), accuracy=(a, 0.0)) for level, (t, a) in levels.items()}
            for d in ("greedy", "sampled")}


def test_target_checks_compute_each_target_from_the_seed_means():
    configs = {"start (grpo prompt)": (1, table([40, 70, 100, 70], [1.0, 0.8, 0.7, 0.83])),
               "grpo": (3, table([50, 90, 140, 93.3], [1.0, 0.98, 0.93, 0.97])),
               "fast": (3, table([12, 60, 130, 67.3], [1.0, 0.975, 0.9, 0.96])),
               "no-thinking": (3, table([2, 3, 3, 2.7], [1.0, 0.2, 0.2, 0.47])),
               "fast-no-length-reward": (2, table([50, 90, 140, 93.3], [1.0, 0.98, 0.93, 0.97]))}
    rows = {line.split(" | ")[0].lstrip("| "): line for line in reproduce.target_checks(configs, "sampled")[2:]}
    assert rows["FAST mean tokens at most 0.7x GRPO's"].endswith("67.3 / 93.3 = 0.72x | **missed** |")
    assert rows["... at most 0.5x on easy items"].endswith("12.0 / 50.0 = 0.24x | met |")
    assert "easy +0.0, medium -0.5, hard -3.0 | **missed**" in rows[
        "FAST accuracy within 1 point of GRPO's on every level"]
    assert rows["FAST hard-item responses at least 2x easy-item ones"].endswith("10.8x | met |")
    assert rows["GRPO longer than the start model (by more than 1%)"].endswith("93.3 against 70.0 (+33.3%) | met |")
    assert rows["No-Thinking: the shortest responses"].endswith("2.7 against at least 67.3 | met |")
    assert rows["`fast-no-length-reward` longer than FAST (the thinking reward cut length 42%)"].endswith(
        "93.3 against 67.3 | met |")
    assert not any("dynamic-kl" in row or "curriculum" in row for row in rows)  # configs without runs are left out
