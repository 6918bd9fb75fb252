"""task_rewards/reward_files.py: --reward-fn path.py:function, loaded and checked call by call; its parts meet FAST
in training (overall as the reward, accuracy > 0 as the pass rate's correct flag, every part logged) and in eval.py;
every mistake is one line naming the file, the data row and the value, exit code 2."""

import json
import os
import textwrap

import numpy as np
import pytest

import difficulty
import eval as evaluation
import fast_grpo
from helpers import read_events, run
from machinery import loading
import methods
from task_rewards import reward_files

HERE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLE = os.path.join(HERE, "docs", "examples", "cls_reward.py")


def error_line(err):
    """The one `error:` line of a run's stderr, its last line (progress bars of the model's loading come before)."""
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and err.strip().splitlines()[-1] == lines[0], err
    return lines[0]


def reward_file(folder, body, name="my_reward.py"):
    """A user's reward file in `folder`, its code `body`; returns its path."""
    path = os.path.join(folder, name)
    with open(path, "w") as f:
        f.write(textwrap.dedent(body))
    return path


# every call appended to CALLS (a JSONL file next to it), so a test can recompute what the step must have done
RECORDING = """
    import json, os
    CALLS = os.path.join(os.path.dirname(__file__), "calls.jsonl")

    def score(response, ground_truth):
        accuracy = 0.5 if len(response) % 2 else 0.0  # > 0 counts as correct, whatever its size
        with open(CALLS, "a") as f:
            f.write(json.dumps([response, ground_truth]) + "\\n")
        return {"overall": 2 * accuracy + 0.25, "accuracy": accuracy, "format": 1.0, "length": len(response)}

    def plain(response, ground_truth):
        return len(response) / 100
"""


def test_the_example_scores_a_class_name():
    score = reward_files.load(f"{EXAMPLE}:compute_score")
    parts = score(["<think>a striped coat</think><answer> Bengal </answer>", "<answer>bengal</answer>",
                   "<think></think><answer>Siamese</answer>"], ["bengal"] * 3, [0, 1, 2])
    assert parts["accuracy"].tolist() == [1.0, 1.0, 0.0]
    assert parts["format"].tolist() == [1.0, 0.0, 1.0]
    assert parts["overall"].tolist() == [1.5, 1.0, 0.5]


def test_float_and_dict_answers_become_parts_and_correct_means_accuracy_above_0(tmp_path):
    path = reward_file(tmp_path, RECORDING)
    texts, truths = ["ab", "abc", "abcd"], ["7"] * 3
    correct, fmt, parts = methods.score_responses(texts, truths, "fast", reward_fn=reward_files.load(f"{path}:score"),
                                                  rows=[0, 0, 1])
    assert correct.tolist() == [0.0, 1.0, 0.0] and fmt.tolist() == [1.0] * 3
    assert parts["overall"].tolist() == [0.25, 1.25, 0.25] and parts["length"].tolist() == [2, 3, 4]
    correct, fmt, parts = methods.score_responses(texts, truths, "grpo", reward_fn=reward_files.load(f"{path}:plain"),
                                                  rows=[0, 0, 1])
    assert parts == {"overall": pytest.approx(np.array([0.02, 0.03, 0.04]))}
    assert correct.tolist() == fmt.tolist() == [0.0] * 3  # stand-ins: the metrics line says None for both
    assert methods.score_responses(texts, truths, "fast")[2] == {}  # the presets: no parts


@pytest.mark.parametrize("body, message", [
    ("raise ZeroDivisionError('no class')", "raised ZeroDivisionError: no class"),
    ("return 'cat'", "returned 'cat', not a finite number or a dict of them with 'overall'"),
    ("return None", "returned None (NoneType), not a finite number"),
    ("return float('nan')", "returned nan, not a finite number"),
    ("return {'accuracy': 1.0}", "returned {'accuracy': 1.0}, not a finite number or a dict of them with 'overall'"),
    ("return {'overall': [1.0]}", "returned {'overall': [1.0]}, not a finite number"),
    ("return {'overall': 1.0} if len(response) < 3 else {'overall': 1.0, 'format': 1.0}",
     "parts ['format', 'overall'] where its first answer had ['overall']"),
])
def test_a_function_that_raises_or_answers_wrongly_is_one_line_naming_file_row_and_value(tmp_path, body, message):
    path = reward_file(tmp_path, f"def score(response, ground_truth):\n    {body}\n")
    score = reward_files.load(f"{path}:score")
    with pytest.raises(reward_files.RewardFnError) as error:
        score(["ab", "abcd"], ["7", "8"], [3, 5])
    row = "data row 5 (ground truth '8', response 'abcd')" if "first answer" in message else \
        "data row 3 (ground truth '7', response 'ab')"
    assert str(error.value).startswith(f"--reward-fn {path}:score: {row}: ")
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_function_without_accuracy_is_refused_on_its_first_call_when_pass_rates_are_read(tmp_path):
    path = reward_file(tmp_path, RECORDING)
    fast = fast_grpo.parse_args(["--method", "fast", "--curriculum", "slow-to-fast"])  # the demo model: none
    users = reward_files.accuracy_users(fast)
    assert users == ["the slow-to-fast curriculum", "dynamic KL (Eq. 5)", "the thinking reward (Eq. 4)"]
    assert reward_files.accuracy_users(fast_grpo.parse_args(["--method", "grpo"])) == []
    assert reward_files.accuracy_users(fast_grpo.parse_args(["--method", "grpo", "--drop-pass-0-1"])) == \
        ["--drop-pass-0-1"]
    with pytest.raises(reward_files.RewardFnError, match="returned a float, but the slow-to-fast curriculum, "
                       "dynamic KL .* read which responses are correct: return a dict with 'overall' and 'accuracy'"):
        reward_files.load(f"{path}:plain", users)(["ab"], ["7"], [0])
    assert reward_files.load(f"{path}:score", users)(["ab"], ["7"], [0])["accuracy"].tolist() == [0.0]


def test_a_missing_file_or_function_is_one_line_and_exit_2_before_any_model_loads(tmp_path, dataset, monkeypatch,
                                                                                   capsys):
    path = reward_file(tmp_path, RECORDING)
    monkeypatch.setattr(loading, "load_processor", lambda *a, **k: pytest.fail("a model was loaded"))
    cases = {f"{tmp_path}/nowhere.py:score": "no such file: ", f"{path}:compute_score": "has no function "
             "'compute_score' (it defines: plain, score)", path: "give it as path.py:function",
             reward_file(tmp_path, "import not_a_package_here\n", "broken.py") + ":f": "the file cannot be imported "
             "(ModuleNotFoundError: No module named 'not_a_package_here')"}
    for spec, message in cases.items():
        for main, flags in ((fast_grpo.main, ["--data", dataset, "--output-dir", str(tmp_path / "run")]),
                            (evaluation.main, ["--data", dataset])):
            with pytest.raises(SystemExit) as exit_info:
                main(flags + ["--reward-fn", spec])
            err = capsys.readouterr().err
            assert exit_info.value.code == 2 and err.startswith(f"error: --reward-fn {spec}: ") and message in err
            assert err.count("\n") == 1, err


def test_training_rewards_with_overall_and_reads_correctness_from_accuracy(tiny_model_dir, dataset, tmp_path):
    path = reward_file(tmp_path, RECORDING)
    # fast's curriculum and Eq. 5 on; Eq. 4 off, so that each response's reward is its overall exactly
    metrics = run(tiny_model_dir, dataset, tmp_path / "run", "--reward-fn", f"{path}:score", "--no-length-reward",
                  steps=1)[0]
    calls = [json.loads(line) for line in open(tmp_path / "calls.jsonl")]
    assert len(calls) == 16 and {truth for _, truth in calls} == {"7"}  # 4 questions x G = 4, ground truths passed
    accuracy = np.array([0.5 if len(response) % 2 else 0.0 for response, _ in calls]).reshape(4, 4)
    pass_rate = (accuracy > 0).mean(1)
    keep = difficulty.slow_to_fast_keep(pass_rate, 0.0)
    assert metrics["accuracy"] == pytest.approx((accuracy > 0).mean())
    assert metrics["fraction_kept"] == pytest.approx(keep.mean())
    if keep.any():
        assert metrics["kl_coef_mean"] == pytest.approx(difficulty.kl_coefficients(pass_rate)[keep].mean())
    assert metrics["reward_mean"] == pytest.approx(metrics["reward_overall"]) == pytest.approx(
        (2 * accuracy + 0.25).mean())
    assert metrics["reward_accuracy"] == pytest.approx(accuracy.mean()) and metrics["format"] == 1.0
    assert metrics["reward_length"] == pytest.approx(np.mean([len(response) for response, _ in calls]))
    samples = [json.loads(line) for line in open(tmp_path / "run" / "samples.jsonl")]
    assert samples[0]["rewards"] == pytest.approx((2 * accuracy[0] + 0.25).tolist())
    assert {"rewards/reward_overall", "rewards/reward_accuracy", "rewards/reward_length"} <= set(
        read_events(tmp_path / "run")[0])


def test_training_with_a_float_reward_and_its_refusal_where_pass_rates_are_read(tiny_model_dir, dataset, tmp_path,
                                                                                capsys):
    path = reward_file(tmp_path, RECORDING)
    metrics = run(tiny_model_dir, dataset, tmp_path / "grpo", "--reward-fn", f"{path}:plain", "--method", "grpo",
                  steps=1)[0]
    assert metrics["accuracy"] is None and metrics["format"] is None  # no such parts: nothing to show
    assert metrics["reward_mean"] == pytest.approx(metrics["reward_overall"]) and metrics["reward_overall"] > 0
    with pytest.raises(SystemExit) as exit_info:
        run(tiny_model_dir, dataset, tmp_path / "fast", "--reward-fn", f"{path}:plain", steps=1)
    err = error_line(capsys.readouterr().err)
    assert exit_info.value.code == 2
    assert err.startswith(f"error: --reward-fn {path}:plain: data row ") and "returned a float, but the slow-to-fast" \
        in err


def test_eval_scores_with_the_function_and_reports_its_parts(tiny_model_dir, dataset, tmp_path, capsys):
    path = reward_file(tmp_path, RECORDING + """
    CALLS_SO_FAR = []

    def fails_on_the_sixth(response, ground_truth):
        CALLS_SO_FAR.append(response)
        if len(CALLS_SO_FAR) == 6:
            raise KeyError(ground_truth)
        return {"overall": 1.0, "accuracy": 1.0}
""")
    output = tmp_path / "results.json"
    evaluation.main(["--model", tiny_model_dir, "--data", dataset, "--max-new-tokens", "6", "--batch-size", "3",
                     "--output", str(output), "--reward-fn", f"{path}:score", "--report-to", "none"])
    summary = json.load(open(output))["results"]["data"]["all"]
    accuracy = np.array([0.5 if len(response) % 2 else 0.0 for response, _ in map(json.loads, open(
        tmp_path / "calls.jsonl"))])
    assert len(accuracy) == summary["count"] == 8
    assert summary["accuracy"] == pytest.approx((accuracy > 0).mean())
    assert summary["reward_accuracy"] == pytest.approx(accuracy.mean()) and summary["well_formed"] == 1.0
    assert summary["reward_overall"] == pytest.approx((2 * accuracy + 0.25).mean())
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:  # rows of 3 questions: the sixth response is data row 5's
        evaluation.main(["--model", tiny_model_dir, "--data", dataset, "--max-new-tokens", "6", "--batch-size", "3",
                         "--reward-fn", f"{path}:fails_on_the_sixth", "--report-to", "none"])
    err = error_line(capsys.readouterr().err)
    assert exit_info.value.code == 2
    assert err.startswith(f"error: --reward-fn {path}:fails_on_the_sixth: data row 5 (ground truth '7', response ")
    assert err.rstrip().endswith("raised KeyError: '7'")
    with pytest.raises(SystemExit):  # eval.py's number is accuracy: a float alone is refused
        evaluation.main(["--model", tiny_model_dir, "--data", dataset, "--max-new-tokens", "2",
                         "--reward-fn", f"{path}:plain", "--report-to", "none"])
    assert "returned a float, but eval.py's accuracy read which responses" in capsys.readouterr().err
