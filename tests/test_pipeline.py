"""docs/pipeline.md end to end, on the tiny model and small files in the real schemas: ViRL39K -> the offline
preparation -> training -> the benchmarks at the start and after training -> the paper's table."""

import json

import pyarrow.parquet as pq

import eval as evaluation
import fast_grpo
import prepare_data
from helpers import mathvista_row, save_image, write_benchmark_parquet, write_parquet


def virl39k_folder(folder):
    """A ViRL39K-shaped folder: 39Krelease.parquet with relative image paths (one row with 2 images) and the
    starting model's pass rates; two of the four questions are mixed (0 < pass < 1)."""
    rows = []
    for i, pass_rate in enumerate([0.25, 1.0, 0.5, 0.0]):
        images = [save_image(folder, f"images/q{i}-{k}.jpg", 10 * i + k, fmt="JPEG") for k in range(1 + (i == 2))]
        rows.append(dict(qid=f"q{i}", question="<image>" * len(images) + f"What is {i} + 1?",
                         answer=f"\\boxed{{{i + 1}}}", image=images, category="(GradeSchool) Arithmetic",
                         source="test", PassRate_32BTrained=pass_rate, PassRate_7BBase=pass_rate))
    write_parquet(folder / "39Krelease.parquet", rows)
    return folder


def test_from_virl39k_to_the_papers_table(warm_model_dir, tmp_path, capsys):
    # 1. the offline preparation: keep the questions the starting model solves sometimes
    train = tmp_path / "train.parquet"
    prepare_data.main(["--data", str(virl39k_folder(tmp_path / "ViRL39K")), "--pass-rate-key", "PassRate_7BBase",
                       "--output", str(train)])
    kept = pq.read_table(train).to_pylist()
    assert [row["qid"] for row in kept] == ["q0", "q2"] and [row["pass_rate"] for row in kept] == [0.25, 0.5]
    # 2. training on the prepared file (a real run uses the paper's sizes and lr: docs/pipeline.md)
    run = tmp_path / "run"
    fast_grpo.main(["--model", warm_model_dir, "--data", str(train), "--output-dir", str(run), "--max-steps", "2",
                    "--batch-size", "2", "--group-size", "2", "--max-new-tokens", "8", "--lr", "1e-3"])
    # 3. a benchmark at the start and after training, K samples at T = 1 (PAPO-Eval's protocol, shortened)
    (tmp_path / "bench").mkdir()
    mathvista = write_benchmark_parquet(tmp_path / "bench" / "testmini-00000-of-00001.parquet", [
        mathvista_row("1", "5 cm", "multi_choice", "text", choices=["3 cm", "5 cm", "7 cm"]),
        mathvista_row("2", "7", "free_form", "integer")])
    results = {}
    for name, model in (("start", warm_model_dir), ("fast", str(run / "checkpoint-2"))):
        results[name] = tmp_path / f"{name}-mathvista.json"
        evaluation.main(["--benchmark", "mathvista", "--data", mathvista, "--model", model, "--num-samples", "2",
                         "--temperature", "1.0", "--max-new-tokens", "8", "--name", name,
                         "--output", str(results[name])])
        result = json.loads(results[name].read_text())
        assert result["num_samples"] == 2 and set(result["items"]) == {"1", "2"}
    # 4. the paper's table: rows are runs, columns benchmarks, cells accuracy (tokens)
    capsys.readouterr()
    evaluation.main(["--compare", str(results["start"]), str(results["fast"]), "--plot-dir", str(tmp_path)])
    table = capsys.readouterr().out
    for name in ("start", "fast"):
        accuracy = 100 * json.loads(results[name].read_text())["accuracy"]
        assert any(line.startswith(f"| {name} |") and f"{accuracy:.1f} (" in line for line in table.splitlines())
    assert "mathvista" in table
