"""prepare_data.py: the offline filter keeps exactly the questions with a pass rate strictly between 0 and 1, and
writes a file that --data reads, with every input column."""

import json

import numpy as np
import pyarrow.parquet
import pytest

from data_loading import loader
import eval as evaluation
import prepare_data
from helpers import geometry3k_rows, save_image, virl39k_rows, write_json, write_parquet


def read_parquet(path):
    return pyarrow.parquet.read_table(path).to_pylist()


def test_keeps_exactly_the_mixed_outcome_questions(tiny_model_dir, tmp_path, monkeypatch):
    """A hand-built sampler: question 0 never solved, 1 once in 4, 2 always, 3 three times in 4."""
    folder = tmp_path / "data"
    rows = [{"image": save_image(str(folder), f"images/{i}.png", i), "question": f"q{i}", "answer": str(i),
             "level": level} for i, level in enumerate(["easy", "hard", "easy", "medium"])]
    rows.append({"question": "text only", "answer": "5", "level": "easy"})  # question 4: solved twice in 4
    path = write_json(str(folder / "train.jsonl"), rows, lines=True)
    outcomes = {0: [0, 0, 0, 0], 1: [1, 0, 0, 0], 2: [1, 1, 1, 1], 3: [1, 1, 0, 1], 4: [0, 1, 1, 0]}
    calls = []

    def fake_generate_records(model, processor, examples, method, max_new_tokens, batch_size, num_samples,
                              temperature):
        calls.append((len(examples), method, num_samples, temperature))
        return [dict(index=i, correct=float(c)) for i in range(len(examples)) for c in outcomes[i]]

    monkeypatch.setattr(evaluation, "generate_records", fake_generate_records)
    out = str(tmp_path / "out" / "mixed.parquet")
    monkeypatch.chdir(tmp_path)  # the written paths must not depend on where the script ran
    prepare_data.main(["--model", tiny_model_dir, "--data", path, "--group-size", "4", "--output", out])
    assert calls == [(5, "fast", 4, 1.0)]  # G samples per question at T = 1
    written = read_parquet(out)
    assert [r["question"] for r in written] == ["q1", "q3", "text only"]
    assert [r["pass_rate"] for r in written] == [0.25, 0.75, 0.5]
    assert written[0] == {"image": str(folder / "images/1.png"), "question": "q1", "answer": "1", "level": "hard",
                          "pass_rate": 0.25}  # every input column, the image path made absolute
    assert [e["question"] for e in loader.load_examples(out)] == ["q1", "q3", "text only"]  # --data reads it


def test_an_existing_pass_rate_column_replaces_sampling(tmp_path, capsys):
    folder = tmp_path / "ViRL39K"
    rows = virl39k_rows(str(folder))  # PassRate_7BBase 0.25, then None (ViRL39K labels only half the rows)
    rows += [dict(rows[0], qid="q2", PassRate_7BBase=1.0), dict(rows[0], qid="q3", PassRate_7BBase=0.0),
             dict(rows[1], qid="q4", PassRate_7BBase=0.5)]
    write_parquet(str(folder / "39Krelease.parquet"), rows)
    out = str(tmp_path / "virl-7b.parquet")
    prepare_data.main(["--data", str(folder), "--pass-rate-key", "PassRate_7BBase", "--output", out])
    written = read_parquet(out)
    assert [(r["qid"], r["pass_rate"]) for r in written] == [("q0", 0.25), ("q4", 0.5)]
    assert written[1]["image"] == [str(folder / "images/q1-0.jpg"), str(folder / "images/q1-1.jpg")]
    assert set(written[0]) == set(rows[0]) | {"pass_rate"}
    output = capsys.readouterr().out
    assert "skipped 1 rows without a PassRate_7BBase value" in output
    assert f"5 questions: 1 never solved, 1 always solved, 2 kept; wrote {out}" in output

    embedded = write_parquet(str(tmp_path / "geo" / "train.parquet"), [dict(r, p=0.5) for r in geometry3k_rows(2)])
    prepare_data.main(["--data", embedded, "--pass-rate-key", "p", "--output", out])
    assert [r["images"] for r in read_parquet(out)] == [r["images"] for r in geometry3k_rows(2)]  # still embedded

    bad = write_parquet(str(tmp_path / "bad" / "train.parquet"), [dict(r, p=1.5) for r in geometry3k_rows(1)])
    with pytest.raises(SystemExit) as exit_info:
        prepare_data.main(["--data", bad, "--pass-rate-key", "p", "--output", out])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == f"error: {bad}:1: p is not a pass rate (1.5: need a number in [0, 1])"


def test_a_real_run_on_the_tiny_model(warm_model_dir, dataset, tmp_path, monkeypatch):
    """Sampling with the warm-started tiny model; what is kept is what its own samples say."""
    responses = []
    real = evaluation.generate_records

    def spy(*args, **kwargs):
        records = real(*args, **kwargs)
        responses.extend(records)
        return records

    monkeypatch.setattr(evaluation, "generate_records", spy)
    out = str(tmp_path / "prepared.parquet")
    prepare_data.main(["--model", warm_model_dir, "--data", dataset, "--group-size", "4", "--max-new-tokens", "24",
                       "--output", out])
    correct = np.array([r["correct"] for r in responses]).reshape(8, 4)  # 8 questions, 4 samples each, in order
    assert [r["index"] for r in responses] == list(np.repeat(np.arange(8), 4))
    mixed = [i for i in range(8) if 0 < correct[i].mean() < 1]
    assert 0 < len(mixed) < 8, "the warm start should give mixed outcomes, and not only"
    questions = [json.loads(line)["question"] for line in open(dataset)]
    written = read_parquet(out)
    assert [r["question"] for r in written] == [questions[i] for i in mixed]
    assert [r["pass_rate"] for r in written] == [correct[i].mean() for i in mixed]
