"""machinery/command_line.py: the run's record config.yaml and --config, read through the same parser as the command
line (which wins); every mistake in a config file is one line naming the file (and the key)."""

import dataclasses

import pytest
import yaml

from fast_grpo import parse_args
from machinery import command_line

REAL = ["--model", "Qwen/Qwen2-VL-2B-Instruct", "--data", "d.jsonl"]


def one_line_error(capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    return err


def test_a_written_config_reads_back_to_the_same_settings(tmp_path):
    args = parse_args(REAL + ["--method", "grpo", "--lr", "3e-6", "--lr-scheduler", "cosine", "--warmup-ratio", "0.1",
                              "--curriculum", "continuous", "--no-length-reward", "--lora-rank", "8", "--data",
                              "-odd name.jsonl", "--output-dir", str(tmp_path / "run"), "--resume", "auto"])
    path = command_line.write_config(args, str(tmp_path / "config.yaml"))
    text = open(path).read()
    assert text.startswith("# fast_grpo.py's settings") and "# torch " in text and "transformers " in text
    assert "resume" not in yaml.safe_load(text)  # how that process started, not what the run is
    again = parse_args(["--config", path, "--output-dir", str(tmp_path / "again")])
    expected = dataclasses.replace(args, output_dir=str(tmp_path / "again"), resume=None)
    assert again == expected


def test_the_command_line_wins_and_values_go_through_the_parser(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("lr: 1e-6\nmethod: thinking\nlength-reward: false\ngroup_size: 4\nimage_dir: null\n")
    args = parse_args(REAL + ["--config", str(path)])
    assert (args.lr, args.method, args.length_reward, args.group_size, args.image_dir) == (1e-6, "thinking", False, 4,
                                                                                           None)
    assert parse_args(REAL + ["--config", str(path), "--lr", "3e-6", "--group-size", "8"]).lr == 3e-6
    assert parse_args(["--group-size", "8", "--config", str(path)] + REAL).group_size == 8  # wherever it stands


@pytest.mark.parametrize("text, message", [
    ("lr: 1e-6\nlearning_rate: 3\n", "unknown key 'learning_rate': no --learning-rate flag"),
    ("method: nope\n", "argument --method: invalid choice: 'nope'"),
    ("lr: fast\n", "argument --lr: invalid float value: 'fast'"),
    ("length_reward: 1\n", "length_reward must be true or false, not 1"),
    ("- lr\n", "not a YAML mapping"),
    ("lr: [1\n", "not YAML"),
])
def test_a_mistake_in_a_config_file_is_one_line_naming_it(text, message, tmp_path, capsys):
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    assert one_line_error(capsys, REAL + ["--config", str(path)]).startswith(f"error: --config {path}: {message}")


def test_a_runs_own_config_never_overwrites_the_run(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    args = parse_args(REAL + ["--output-dir", str(run)])
    path = command_line.write_config(args, str(run / "config.yaml"))
    err = one_line_error(capsys, ["--config", path])
    assert f"its output_dir {run} already holds a run" in err and "--output-dir ANOTHER" in err
    assert parse_args(["--config", path, "--resume", "auto"]).output_dir == str(run)  # continuing it is fine
    assert parse_args(["--config", path, "--output-dir", str(tmp_path / "again")]).output_dir == str(tmp_path / "again")
    assert one_line_error(capsys, ["--config", str(tmp_path / "missing.yaml")]).startswith(
        f"error: --config {tmp_path / 'missing.yaml'}: No such file")


def test_a_config_that_names_no_folder_runs_where_the_command_line_says(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "fast-grpo").mkdir(parents=True)
    (tmp_path / "runs" / "fast-grpo" / "metrics.jsonl").write_text("")  # an earlier run in the default folder
    (tmp_path / "mine.yaml").write_text("lr: 1e-6\n")  # not a run's record: the usual overwrite, as without it
    assert parse_args(REAL + ["--config", "mine.yaml"]).output_dir == "runs/fast-grpo"
