"""benchmarks/protocol.py and benchmarks/scoring.py: small parquet files in each benchmark's published schema, scored by
hand; re-scoring through eval.py gives those numbers exactly; bad input gives one line and exit 2."""

import io
import json
import os

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from benchmarks import protocol, scoring
import eval as evaluation
from machinery import loading
from helpers import embedded_png, mathvista_row, write_benchmark_parquet


def write_responses(path, pairs):
    path.write_text("".join(json.dumps({"id": i, "response": r}) + "\n" for i, r in pairs))
    return str(path)


def rescore(tmp_path, benchmark, data_path, pairs, name="run"):
    """eval.py --benchmark NAME --data PATH --score RESPONSES --output OUT: the OUT.json dict."""
    responses = write_responses(tmp_path / f"{name}.jsonl", pairs)
    out = tmp_path / f"{name}.json"
    evaluation.main(["--benchmark", benchmark, "--data", data_path, "--score", responses, "--output", str(out)])
    return json.loads(out.read_text())


def answer(text):
    return f"<think>so</think><answer>{text}</answer>"


def test_final_answer_is_the_last_answer_block_else_the_last_box():
    assert scoring.final_answer("<answer>1</answer> then <answer> 2 </answer>") == "2"
    assert scoring.final_answer("<answer>so \\boxed{\\frac{1}{2}}</answer>") == "\\frac{1}{2}"
    assert scoring.final_answer("\\boxed{3} or rather \\boxed{4}") == "4"
    assert scoring.final_answer("<answer>5") is None  # no complete block, no box
    assert scoring.final_answer("<answer>1</answer> <answer>2") == "1"  # the last complete block
    assert scoring.final_answer("<answer>1</answer>2</answer>") == "1"
    assert scoring.final_answer("<answer> </answer>") is None


@pytest.fixture
def mathvista(tmp_path):
    return write_benchmark_parquet(tmp_path / "testmini-00000-of-00001.parquet", [
        mathvista_row("1", "5 cm", "multi_choice", "text", choices=["3 cm", "5 cm", "7 cm"]),
        mathvista_row("2", "1.5", "free_form", "float", precision=1.0),
        mathvista_row("3", "7", "free_form", "integer"),
        mathvista_row("4", "[1, 2]", "free_form", "list")])


def test_mathvista_letters_to_text_precision_and_integers(tmp_path, mathvista):
    pairs = [("1", answer("B")),          # letter B -> "5 cm": right
             ("1", answer("(B) 5")),      # "(B)" gives the letter: right
             ("1", answer("7 cm")),       # text: nearest choice "7 cm": wrong
             ("1", answer("b")),          # lower case is no letter: nearest to "b" is a 4-way tie, the first, "3 cm"
             ("2", answer("1.53")),       # round(1.53, 1) = 1.5: right
             ("2", "\\boxed{1.56}"),      # 1.6: wrong
             ("3", answer("7.9")),        # str(int(float("7.9"))) = "7": right, as calculate_score.py
             ("4", answer("[1,2]"))]      # a list compares as its string: "[1,2]" != "[1, 2]"
    out = rescore(tmp_path, "mathvista", mathvista, pairs)
    assert {i: v["correct"] for i, v in out["items"].items()} == {"1": [1, 1, 0, 0], "2": [1, 0], "3": [1], "4": [0]}
    assert out["accuracy"] == (0.5 + 0.5 + 1 + 0) / 4
    assert out["num_samples"] == {"1": 4, "2": 2, "3": 1, "4": 1}
    assert out["name"] == "run" and out["tokens_mean"] is None and out["tokens_mean_wrong"] is None


def test_mathvista_no_answer_is_wrong_not_the_nearest_choice():
    assert not scoring.mathvista_correct(None, "3 cm", "multi_choice", "text", ["3 cm", "50 cm"], None)
    assert scoring.mathvista_correct("3 cn", "3 cm", "multi_choice", "text", ["3 cm", "50 cm"], None)


# MATH-Vision: id, question, options, image, decoded_image, answer, solution, level, subject
def test_mathvision_letters_and_values(tmp_path):
    rows = [dict(id=i, question=f"<image1>Question {i}", options=o, image=f"images/{i}.jpg",
                 decoded_image=embedded_png(k), answer=a, solution=None, level=1, subject="arithmetic")
            for k, (i, o, a) in enumerate([("1", ["2", "\\sqrt{3}", "4", "5", "6"], "B"), ("2", [], "60"),
                                           ("3", ["A", "B", "C", "D", "E"], "C")])]
    path = write_benchmark_parquet(tmp_path / "test.parquet", rows)
    pairs = [("1", answer("b")), ("1", answer("\\sqrt{3}")), ("1", answer("1.732")), ("1", answer("1.74")),
             ("2", answer("x = 60")), ("2", answer("60.004")), ("2", answer("60.01")), ("2", answer("\\frac{120}{2}")),
             ("3", answer("(c)")), ("3", answer("D"))]
    out = rescore(tmp_path, "mathvision", path, pairs)
    # 1: letter b = B; the option's text; 1.732 = sqrt(3) to 2 decimals (1.73); 1.74 is not
    # 2: the value after '='; 60.004 rounds to 60.00; 60.01 does not; 120/2 = 60.  3: (c) -> c = C; D wrong
    assert {i: v["correct"] for i, v in out["items"].items()} == {"1": [1, 1, 1, 0], "2": [1, 1, 0, 1], "3": [1, 0]}
    assert out["accuracy"] == pytest.approx((0.75 + 0.75 + 0.5) / 3)


def test_latex_numbers_are_evaluated_without_eval():
    assert scoring.latex_number("2\\sqrt{3}") == pytest.approx(2 * 3 ** 0.5)
    assert scoring.latex_number("\\sqrt3") == pytest.approx(3 ** 0.5)  # MATH-V's _fix_sqrt reads it so
    assert scoring.latex_number("\\frac12") is None  # latex2sympy does not: MATH-V counts it wrong
    assert scoring.latex_number("\\frac{3^{1008}-1}{3^{1009}}") == pytest.approx(1 / 3)  # exact, as latex2sympy
    assert scoring.latex_number("3^2+1") == 10
    assert scoring.latex_number("1.5\\pi") == pytest.approx(1.5 * np.pi)
    assert scoring.latex_number("__import__('os')") is None
    assert scoring.latex_number("9^{9^{9}}") is None  # too large: refused, not computed


# DynaMath: id, question, image, decoded_image, ground_truth, answer_type, subject, knowledge_level; a file per
# variant named as the hub names them
@pytest.fixture
def dynamath(tmp_path):
    folder = tmp_path / "DynaMath_Sample"
    folder.mkdir()
    for variant in (1, 2, 3):
        write_benchmark_parquet(folder / f"sample_variant{variant}-00000-of-00001.parquet", [
            dict(id=seed, question=f"seed {seed} variant {variant}", image=f"{seed}.png",
                 decoded_image=embedded_png(seed), ground_truth=gold, answer_type=kind, subject="algebra", knowledge_level="high school")
            for seed, gold, kind in ((1, "3.142", "float"), (2, "B", "multiple choice"))])
    return str(folder)


def test_dynamath_average_and_worst_case(tmp_path, dynamath):
    pairs = [("sample_variant1/1", answer("3.1415")), ("sample_variant1/1", answer("1π")),    # within 0.001: both
             ("sample_variant2/1", answer("3.142 cm")), ("sample_variant2/1", answer("3.15")),  # right, wrong
             ("sample_variant3/1", answer("3.142")), ("sample_variant3/1", answer("3.142")),
             ("sample_variant1/2", answer("(B)")), ("sample_variant1/2", answer("A")),          # the one letter
             ("sample_variant2/2", answer("b")), ("sample_variant2/2", answer("C")),
             ("sample_variant3/2", answer("B")), ("sample_variant3/2", answer("B"))]
    out = rescore(tmp_path, "dynamath", dynamath, pairs)
    # average: item means 1, .5, 1 (seed 1) and .5, .5, 1 (seed 2) -> 4.5 / 6
    assert out["accuracy"] == 0.75
    # worst case: sample 0 has every variant right for both seeds (1), sample 1 for neither (0) -> 0.5
    assert out["worst_case_accuracy"] == 0.5
    assert out["num_samples"] == 2
    assert set(out) == {"benchmark", "name", "num_samples", "accuracy", "worst_case_accuracy", "tokens_mean",
                        "tokens_mean_correct", "tokens_mean_wrong", "items"}


def test_dynamath_free_form_and_letter_fallback():
    assert scoring.dynamath_correct("yes", "Yes", "free form")
    assert not scoring.dynamath_correct("no", "Yes", "free form")
    assert scoring.dynamath_correct("B) 5 cm", "B", "multiple choice")  # B and C in it: the first 3 characters


# WeMath testmini: ID, split, knowledge concept, question, option, answer, image_path, key, question number,
# knowledge concept description
def wemath_rows(problems):
    rows = []
    for problem, (steps, golds) in problems.items():
        for key, gold in zip([f"{steps}steps_{i}" for i in range(1, steps + 1)] + [f"{steps}steps_multi"], golds):
            rows.append({"ID": problem, "split": "testmini", "knowledge concept": "Area of Circles",
                         "question": f"{problem} {key}", "option": "A. 1;B. 2;C. 3;D. 4;E. No correct answer",
                         "answer": gold, "image_path": embedded_png(len(rows)), "key": key,
                         "question number": len(rows) + 1,                         "knowledge concept description": "circles"})
    return rows


def test_wemath_four_dimensions_strict_and_loose(tmp_path):
    problems = {"2steps_1": (2, "ABC"), "2steps_2": (2, "ABC"), "2steps_3": (2, "ABC"), "2steps_4": (2, "ABC"),
                "3steps_1": (3, "ABCD")}
    path = write_benchmark_parquet(tmp_path / "testmini.parquet", wemath_rows(problems))
    right = {"A": "A", "B": "B. 2", "C": "C", "D": "<Answer>: D"}  # the forms WeMath's matcher reads
    verdicts = {"2steps_1": "111", "2steps_2": "101", "2steps_3": "001", "2steps_4": "110", "3steps_1": "1010"}
    pairs = []
    for problem, marks in verdicts.items():
        steps, golds = problems[problem]
        keys = [f"{steps}steps_{i}" for i in range(1, steps + 1)] + [f"{steps}steps_multi"]
        for key, gold, mark in zip(keys, golds, marks):
            pairs.append((f"{problem}/{key}", answer(right[gold] if mark == "1" else f"({gold})")))  # (A): wrong
    out = rescore(tmp_path, "wemath", path, pairs)
    # By hand, N = 5 multi-step problems (steps | multi):
    #   2steps_1 11|1  CM loose, CM strict     2steps_2 10|1  CM loose, RM strict     2steps_3 00|1  RM both
    #   2steps_4 11|0  IG                      3steps_1 101|0 IK
    # IK = 1/5, IG = 1/5 in both settings.
    # loose:  CM = 2/5, RM = 1/(2+1), score = (5 - 0.5*1 - 1 - 1)/5 = 0.5
    # strict: CM = 1/5, RM = 2/(1+2), score = (5 - 0.5*1 - 2 - 1)/5 = 0.3
    loose, strict = out["wemath"]["loose"], out["wemath"]["strict"]
    assert loose == pytest.approx(dict(IK=0.2, IG=0.2, CM=0.4, RM=1 / 3, score=0.5))
    assert strict == pytest.approx(dict(IK=0.2, IG=0.2, CM=0.2, RM=2 / 3, score=0.3))
    assert out["accuracy"] == 10 / 16  # 3 + 2 + 1 + 2 + 2 of the 16 items right, one sample each


def test_wemath_scores_average_over_samples():
    # one 2-step problem; sample 0: steps right, multi wrong (IG); sample 1: all right (CM)
    scores = scoring.wemath_scores([([[1, 1], [1, 1]], [0, 1])])
    assert scores["strict"] == dict(IK=0.0, IG=0.5, CM=0.5, RM=0.0, score=0.75)  # score (1 - 0.5)/1 and 1, averaged


# MathVerse testmini: sample_index, problem_index, problem_version, question, image, answer, question_type,
# metadata, query_wo, query_cot, question_for_eval
def test_mathverse_per_version_rule_based(tmp_path):
    specs = [("1", "Text Dominant", "free-form", "14"), ("2", "Text Dominant", "multi-choice", "B"),
             ("3", "Vision Only", "free-form", "14"), ("4", "Vision Only", "multi-choice", "B"),
             ("5", "Vision Only", "free-form", "2\\sqrt{3}")]
    rows = [dict(sample_index=i, problem_index="1", problem_version=v, question="q", image=embedded_png(k), answer=a,
                 question_type=t, metadata={"subject": "Plane Geometry"}, query_wo="q", query_cot=f"Question {i}",
                 question_for_eval="q") for k, (i, v, t, a) in enumerate(specs)]
    path = write_benchmark_parquet(tmp_path / "testmini.parquet", rows)
    pairs = [("1", answer("14")), ("2", answer("B. 5 cm")), ("3", answer("14.0")), ("4", answer("5 cm")),
             ("5", answer("2 \\sqrt{3}"))]  # the choice's text and an unequal string are wrong by rule
    out = rescore(tmp_path, "mathverse", path, pairs)
    assert out["scorer"] == "rule-based"
    assert out["per_version"] == {"Text Dominant": 1.0, "Vision Only": pytest.approx(1 / 3)}
    assert out["accuracy"] == 3 / 5


def test_geometry3k_uses_the_answer_checker(tmp_path):
    rows = [dict(images=[embedded_png(0)], problem="<image>Find x.", answer="12", id=7, choices=["10", "12", "14", "16"],
                 ground_truth="B")]
    path = write_benchmark_parquet(tmp_path / "test-00000-of-00001.parquet", rows)
    out = rescore(tmp_path, "geometry3k", path, [("7", answer("12.0")), (7, "\\boxed{13}"), ("7", answer("B")),
                                                 ("7", answer("C"))])  # an int id too; B is the choice "12"
    assert out["items"] == {"7": {"correct": [1, 0, 1, 0]}}


def error_line(capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        evaluation.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ")
    return err


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, mathvista, dynamath):
    def score(pairs, data=mathvista, benchmark="mathvista"):
        return error_line(capsys, ["--benchmark", benchmark, "--data", data, "--score",
                                   write_responses(tmp_path / "r.jsonl", pairs)])

    all_four = [(str(i), answer("1")) for i in range(1, 5)]
    err = score(all_four + [("9", "x"), ("10", "x"), ("11", "x"), ("12", "x")])
    assert "4 ids not in the mathvista data (9, 10, 11, ...)" in err
    assert "2 items of the mathvista data without a response (3, 4)" in score(all_four[:2])
    (tmp_path / "empty.jsonl").write_text("\n")
    assert "empty responses file" in error_line(capsys, ["--benchmark", "mathvista", "--data", mathvista,
                                                         "--score", str(tmp_path / "empty.jsonl")])
    # a DynaMath seed whose variants have different numbers of samples
    pairs = [(f"sample_variant{v}/{s}", answer("B")) for v in (1, 2, 3) for s in (1, 2)] + [
        ("sample_variant2/1", answer("B"))]
    assert "DynaMath seed 1: its items have different numbers of samples" in score(pairs, dynamath, "dynamath")
    # not the benchmark's schema: the missing columns are named
    err = error_line(capsys, ["--benchmark", "mathverse", "--data", mathvista, "--score", str(tmp_path / "r.jsonl")])
    assert "missing columns sample_index, problem_version, query_cot" in err
    (tmp_path / "bad.parquet").write_text("not parquet")
    assert "not a parquet file" in error_line(capsys, ["--benchmark", "mathvista", "--data",
                                                       str(tmp_path / "bad.parquet"), "--score", "r.jsonl"])
    assert "hf download --repo-type dataset AI4Math/MathVista" in error_line(
        capsys, ["--benchmark", "mathvista", "--data", "AI4Math/MathVista@testmini", "--score", "r.jsonl"])


def test_wemath_problem_with_unequal_samples_or_missing_step(tmp_path, capsys):
    path = write_benchmark_parquet(tmp_path / "testmini.parquet", wemath_rows({"2steps_1": (2, "ABC")}))
    keys = ["2steps_1/2steps_1", "2steps_1/2steps_2", "2steps_1/2steps_multi"]
    responses = write_responses(tmp_path / "r.jsonl", [(k, answer("A")) for k in keys + keys[:1]])
    err = error_line(capsys, ["--benchmark", "wemath", "--data", path, "--score", responses])
    assert "WeMath ID 2steps_1: its items have different numbers of samples" in err
    path = write_benchmark_parquet(tmp_path / "testmini.parquet", wemath_rows({"2steps_1": (2, "ABC")})[:2])
    responses = write_responses(tmp_path / "r.jsonl", [(k, answer("A")) for k in keys[:2]])
    assert "WeMath ID 2steps_1 has keys 2steps_1, 2steps_2" in error_line(
        capsys, ["--benchmark", "wemath", "--data", path, "--score", responses])


def test_compare_prints_the_papers_table_from_both_kinds_of_result_file(tmp_path, capsys, mathvista):
    (tmp_path / "fast-mathvista.json").write_text(json.dumps(dict(
        benchmark="mathvista", name="fast", accuracy=0.625, tokens_mean=312.4)))
    (tmp_path / "grpo-mathvista.json").write_text(json.dumps(dict(
        benchmark="mathvista", name="grpo", accuracy=0.6, tokens_mean=None)))
    summary = dict(accuracy=0.5, tokens_mean=40.0, tokens_median=40.0, well_formed=1.0, truncated=0.0, count=4)
    (tmp_path / "old.json").write_text(json.dumps(dict(name="fast", results={"data": {"all": summary}})))
    evaluation.main(["--compare", *(str(tmp_path / f) for f in ("fast-mathvista.json", "grpo-mathvista.json",
                                                                "old.json")), "--plot-dir", str(tmp_path / "plots")])
    out = capsys.readouterr().out
    assert "| name | mathvista | data |" in out
    assert "| fast | 62.5 (312) | 50.0 (40) |" in out and "| grpo | 60.0 (-) | - |" in out
    assert (tmp_path / "plots" / "accuracy_vs_tokens.png").read_bytes()[:4] == b"\x89PNG"


def test_an_image_path_is_read_relative_to_the_parquet_file(tmp_path):
    (tmp_path / "images").mkdir()
    Image.open(io.BytesIO(embedded_png(3)["bytes"])).save(tmp_path / "images" / "3.png")
    row = {"image": {"bytes": None, "path": "images/3.png"}, "_where": f"{tmp_path}/testmini.parquet:1"}
    assert protocol.decode_image(row).size == (56, 56)


def test_generation_on_the_tiny_model_and_rescoring_agree(tiny_model_dir, tmp_path, mathvista):
    data_path = write_benchmark_parquet(tmp_path / "two.parquet", pq.read_table(mathvista).to_pylist()[:2])
    responses, out = tmp_path / "tiny.jsonl", tmp_path / "tiny.json"
    evaluation.main(["--benchmark", "mathvista", "--data", data_path, "--model", tiny_model_dir, "--max-new-tokens",
                     "8", "--responses", str(responses), "--output", str(out)])
    result = json.loads(out.read_text())
    assert [json.loads(line)["id"] for line in responses.read_text().splitlines()] == ["1", "2"]
    assert 1 <= result["tokens_mean"] <= 8 and result["name"] == "tiny"
    assert rescore(tmp_path, "mathvista", data_path, [(json.loads(line)["id"], json.loads(line)["response"])
                                                      for line in responses.read_text().splitlines()],
                   name="again")["items"] == result["items"]
    # validation during training: the same greedy generations, so the same tokens
    rows = protocol.load_benchmark("mathvista", data_path, images=True)
    model, processor = loading.load_model(tiny_model_dir), loading.load_processor(tiny_model_dir)
    correct, tokens = protocol.validate(model, processor, rows, "mathvista", max_new_tokens=8)
    assert (np.mean(correct), np.mean(tokens)) == (result["accuracy"], result["tokens_mean"])


def test_the_docs_demo_files_are_in_the_published_schemas(tmp_path):
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # python -m runs from there
    subprocess.run([sys.executable, "-m", "demo.benchmark_files", "--output", str(tmp_path), "--per-level", "1"],
                   check=True, capture_output=True, cwd=root)
    mathvista = protocol.load_benchmark("mathvista", str(tmp_path / "mathvista"), images=True)
    assert [row["_id"] for row in mathvista] == ["1", "2", "3"] and protocol.decode_image(mathvista[0]).size == (
        112, 112)
    dynamath = protocol.load_benchmark("dynamath", str(tmp_path / "dynamath"))
    assert len(dynamath) == 9 and dynamath[4]["_id"] == "sample_variant2/2"
    gold = {row["_id"]: row["ground_truth"] for row in dynamath}
    pairs = [(i, answer(g)) for i, g in gold.items() if i != "sample_variant3/3"] + [("sample_variant3/3", "none")]
    out = rescore(tmp_path, "dynamath", str(tmp_path / "dynamath"), pairs)
    assert out["accuracy"] == 8 / 9 and out["worst_case_accuracy"] == 2 / 3  # seed 3 loses its third variant


def test_validation_during_training_logs_accuracy_and_tokens(warm_model_dir, dataset, tmp_path, mathvista):
    import fast_grpo

    for name, flags in (("plain", ["--eval-data", dataset]),
                        ("benchmark", ["--eval-data", mathvista, "--eval-benchmark", "mathvista"])):
        output_dir = tmp_path / name
        fast_grpo.main(["--model", warm_model_dir, "--data", dataset, "--output-dir", str(output_dir), "--max-steps",
                        "2", "--batch-size", "2", "--group-size", "2", "--max-new-tokens", "8", "--eval-every", "2",
                        "--eval-size", "3", *flags])
        metrics = [json.loads(line) for line in open(output_dir / "metrics.jsonl")]
        assert "val_accuracy" not in metrics[0]  # only every --eval-every steps
        assert 0 <= metrics[1]["val_accuracy"] <= 1 and 1 <= metrics[1]["val_tokens"] <= 8
        assert (output_dir / "validation.png").stat().st_size > 0
    with pytest.raises(SystemExit) as exit_info:
        fast_grpo.parse_args(["--model", warm_model_dir, "--eval-every", "5"])  # no --eval-data
    assert exit_info.value.code == 2


# Text-only benchmarks in their published schemas: openai/gsm8k (main/test-00000-of-00001.parquet: question, answer
# ending in '#### N'), HuggingFaceH4/MATH-500 (test.jsonl), AI-MO/aimo-validation-aime and Maxwell-Jia/AIME_2024.
GSM8K_ROWS = [{"question": "Natalia sold 48 clips in April and half as many in May. How many in all?",
               "answer": "In May she sold 48/2 = <<48/2=24>>24 clips.\n48+24 = <<48+24=72>>72\n#### 72"},
              {"question": "How many cents is $10.72?", "answer": "10.72 * 100 = <<10.72*100=1072>>1072\n#### 1,072"}]
MATH500_ROWS = [{"problem": "Convert $(0,3)$ to polar coordinates.", "solution": "... $\\boxed{(3,\\frac{\\pi}{2})}$.",
                 "answer": "\\left( 3, \\frac{\\pi}{2} \\right)", "subject": "Precalculus", "level": 2,
                 "unique_id": "test/precalculus/807.json"},
                {"problem": "What is $\\frac{2}{4}$?", "solution": "$\\boxed{\\frac12}$", "answer": "\\frac{1}{2}",
                 "subject": "Prealgebra", "level": 1, "unique_id": "test/prealgebra/1.json"}]


def test_gsm8k_math500_and_aime_are_scored_by_their_rules(tmp_path):
    gsm8k = write_benchmark_parquet(tmp_path / "test-00000-of-00001.parquet", GSM8K_ROWS)  # no id: row positions
    out = rescore(tmp_path, "gsm8k", gsm8k, [("0", answer("72")), ("0", "so \\boxed{\\$72.00}"), ("0", answer("73")),
                                             ("1", answer("The answer is $1,072.")), ("1", answer("10.72"))])
    assert out["items"] == {"0": {"correct": [1, 1, 0]}, "1": {"correct": [1, 0]}}  # 10.72 is not 1072
    assert rescore(tmp_path, "gsm8k", gsm8k, [("0", "so $72."), ("1", answer("1072"))])["accuracy"] == 0.5  # no block
    assert out["accuracy"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    math500 = tmp_path / "math500" / "test.jsonl"
    math500.parent.mkdir()
    math500.write_text("".join(json.dumps(row) + "\n" for row in MATH500_ROWS))
    out = rescore(tmp_path, "math500", str(math500.parent), [
        ("test/precalculus/807.json", answer("(3, \\frac{\\pi}{2})")), ("test/prealgebra/1.json", "\\boxed{0.5}")])
    assert out["accuracy"] == 1.0 and out["num_samples"] == 1
    out = rescore(tmp_path, "math500", str(math500), [("test/precalculus/807.json", answer("(3, \\pi)")),
                                                      ("test/prealgebra/1.json", answer("\\frac{1}{3}"))])
    assert out["accuracy"] == 0.0
    aimo = write_benchmark_parquet(tmp_path / "train-00000-of-00001.parquet", [
        {"id": 60, "problem": "Find the remainder ...", "solution": "...", "answer": 204, "url": "https://..."},
        {"id": 61, "problem": "Find m+n ...", "solution": "...", "answer": 33, "url": "https://..."}])
    out = rescore(tmp_path, "aime", aimo, [("60", answer("204")), ("61", answer("\\boxed{033}"))])
    assert out["items"] == {"60": {"correct": [1]}, "61": {"correct": [1]}}
    maxwell = write_benchmark_parquet(tmp_path / "aime_2024_problems.parquet", [  # capitalised columns
        {"ID": "2024-I-1", "Problem": "Every morning Aya ...", "Solution": "...", "Answer": 204},
        {"ID": "2024-II-4", "Problem": "Let x, y and z ...", "Solution": "...", "Answer": 33}])
    out = rescore(tmp_path, "aime", maxwell, [("2024-I-1", answer("204")), ("2024-II-4", answer("34")),
                                              ("2024-I-1", "no answer"), ("2024-II-4", answer("x = 33"))])
    assert out["items"] == {"2024-I-1": {"correct": [1, 0]}, "2024-II-4": {"correct": [0, 1]}}
    assert scoring.aime_correct("33.5", 33) is False and scoring.gsm8k_correct(None, "#### 1") is False


def test_a_text_model_generates_on_a_text_benchmark_and_is_refused_an_image_one(tiny_text_model_dir, tmp_path,
                                                                                  mathvista, capsys):
    gsm8k = write_benchmark_parquet(tmp_path / "test-00000-of-00001.parquet", GSM8K_ROWS)
    generated = tmp_path / "generated.json"
    evaluation.main(["--benchmark", "gsm8k", "--data", gsm8k, "--model", tiny_text_model_dir, "--num-samples", "2",
                     "--temperature", "1.0", "--max-new-tokens", "8", "--responses", str(tmp_path / "r.jsonl"),
                     "--output", str(generated)])
    first = json.loads(generated.read_text())
    assert first["num_samples"] == 2 and set(first["items"]) == {"0", "1"} and 0 < first["tokens_mean"] <= 8
    again = rescore(tmp_path, "gsm8k", gsm8k, [(json.loads(line)["id"], json.loads(line)["response"])
                                               for line in open(tmp_path / "r.jsonl")])
    assert again["items"] == first["items"]
    capsys.readouterr()
    assert "is a text-only model and 4 of the 4 questions have images" in error_line(
        capsys, ["--benchmark", "mathvista", "--data", mathvista, "--model", tiny_text_model_dir])
