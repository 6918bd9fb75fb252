"""A classroom kit: assignments cut from the project's own code, graded by the project's own tests.

    python classroom.py make --out hw [--only advantages,grpo-loss]   # a copy with exercise functions blanked
    python classroom.py grade hw [--json scores.json]                 # one table: exercise, points, status
    python classroom.py grade                                         # the project itself: full marks
    python classroom.py table                                         # the exercise table of docs/teaching.md

`make` copies the project and replaces the body of each chosen exercise's function (found with `ast`, by line
range) with a short hint and `raise NotImplementedError`, keeping its signature and docstring; everything else
stays byte for byte. `grade` runs, for every exercise, the tests listed for it in EXERCISES (the tests in this
file's tests/ folder) against the code in the graded folder, all in one pytest session per folder, and reports
passed / failed (with the check that failed) / not implemented yet.

Standard library and pytest only. EXERCISES below is the one place the exercises are defined: docs/teaching.md's
table is `python classroom.py table` (tests/test_classroom.py checks that they agree).
"""

import argparse
import ast
import json
import os
import shutil
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass

import grading

HERE = os.path.dirname(os.path.abspath(__file__))
ASSIGNMENT_FILE = "classroom-assignment.json"  # written by `make`: which exercises this copy asks for
# Never copied into an assignment: version control, run outputs, caches, local wheels, the kit's own tests
# (they hold the wrong implementations it is tested with).
SKIP_NAMES = {".git", "results", "runs", ".sweep", ".whl", "__pycache__", ".pytest_cache", ".benchmarks",
              "results-tmp"}
SKIP_PATHS = {os.path.join("tests", "test_classroom.py")}
NOT_IMPLEMENTED = "NotImplementedError: exercise "  # how a blanked body's error starts in a test report
FOLDER_TIMEOUTS = 20  # a folder's tests are stopped after this many --timeout (a check stuck where no signal reaches)


@dataclass(frozen=True)
class Exercise:
    """One idea a course teaches: the function(s) a student writes and the project tests that grade them."""
    id: str
    functions: tuple  # "module.function", blanked together
    reference: str  # the section of docs/paper.md (the specification, copied into every assignment) defining it
    points: int
    minutes: int  # a fair time for a student who has read the reference
    prerequisites: str
    hint: str  # shapes and what the tests check; goes into the blanked body
    tests: tuple  # pytest node ids (without parameters) relative to the project root


def _tests(file, *names):
    """Node ids of tests in tests/`file`."""
    return tuple(f"tests/{file}::{name}" for name in names)


EXERCISES = [
    Exercise(
        "advantages", ("fast_grpo.group_advantages",), "§1", 2, 15, "torch basics",
        "rewards: (questions, G) -> float32 tensor (questions, G), one advantage per response, normalised "
        "within its own question's group. The tests check a group worked by hand (torch's default, unbiased "
        "std) and that an all-equal group gives exactly 0, not NaN.",
        _tests("test_fast_grpo.py", "test_group_advantages_by_hand")),
    Exercise(
        "k3-kl", ("fast_grpo.k3_kl",), "§1", 2, 15, "torch basics, log-probabilities",
        "logp, ref_logp: (N, T) per-token log-probs of the policy and of the frozen reference -> (N, T). "
        "The tests check 0 where the two agree, one value by hand (mind which way round the ratio goes), "
        "and finite values for log-ratios of +-1000 in either direction (clamp to [-20, 20]).",
        _tests("test_fast_grpo.py", "test_k3_kl_zero_when_policies_match_and_positive_otherwise")),
    Exercise(
        "grpo-loss", ("fast_grpo.grpo_loss",), "§1", 5, 45, "advantages, k3-kl",
        "logp, old_logp, ref_logp, response_mask: (N, T); advantages: (N,); kl_coef: (N,) or a scalar -> a "
        "scalar to minimise. The tests check the on-policy value for both aggregations, where the clip "
        "acts, the per-question KL weight, the gradient (REINFORCE weights 1/(N |o_i|) for 'seq'), and "
        "that -inf log-probs on padding do not leak into the loss. They use a known-good k3_kl.",
        _tests("test_fast_grpo.py", "test_grpo_loss_on_policy_equals_minus_mean_advantage",
               "test_grpo_loss_kl_term_per_question_coefficient", "test_grpo_loss_clips_the_ratio",
               "test_seq_and_token_aggregation_differ_on_unequal_lengths",
               "test_gradient_is_reinforce_with_mu_1_and_no_kl",
               "test_padding_with_minus_infinity_log_probs_does_not_poison_the_loss")),
    Exercise(
        "token-logprobs", ("vlm.token_logprobs",), "§1 (log-probs)", 4, 45, "grpo-loss; a causal LM's logits",
        "completion_ids, response_mask: (N, T) -> float32 (N, T), the log-prob of each completion token under "
        "the model, from one forward pass over the prompt rows of `inputs` (left-padded) followed by the "
        "completions: model(input_ids=..., attention_mask=..., mm_token_type_ids=..., pixel_values=..., "
        "image_grid_thw=...), the masks extended over the completion (its mm_token_type_ids are 0). The logit "
        "at position t predicts token t + 1. The test samples at temperatures 1.0 and 0.7 and checks that your "
        "log-probs equal the ones `generate` sampled with, to 1e-4.",
        _tests("test_vlm.py", "test_training_logprobs_match_generate_scores")),
    Exercise(
        "thinking-reward", ("rewards.thinking_reward",), "Eq. 4 (§3)", 3, 30, "numpy boolean masks",
        "lengths, correct, hard: one value per response of the batch -> float64 array of r_t. The tests "
        "check each branch by hand: easy and correct (no lower clip), hard and wrong (capped at 1), the "
        "zero cases, all-empty responses (no 0/0) and an empty batch.",
        _tests("test_rewards.py", "test_thinking_easy_correct_shorter_than_average_is_rewarded",
               "test_thinking_easy_correct_longer_than_average_is_negative_without_clip",
               "test_thinking_hard_wrong_capped_at_one", "test_thinking_hard_wrong_below_cap",
               "test_thinking_zero_cases", "test_thinking_all_zero_lengths_and_empty",
               "test_thinking_returns_float_array_and_accepts_numpy")),
    Exercise(
        "dynamic-kl", ("difficulty.kl_coefficients",), "Eq. 5 (§4)", 1, 10, "numpy basics",
        "pass_rate: (questions,) in [0, 1] -> beta per question. The tests check values by hand and the "
        "direction: which questions get the loose leash?",
        _tests("test_difficulty.py", "test_kl_coefficients_eq5_values_and_direction")),
    Exercise(
        "rank-difficulty", ("difficulty.rank_normalise", "difficulty.combined_difficulty"), "Eq. 3 (§2)", 3, 30,
        "numpy sorting (np.unique)",
        "rank_normalise: values (n,) -> (n,) in [0, 1]; combined_difficulty: pass_rate, complexity (n,) -> "
        "S_d (n,). The tests check ties (they share their average rank), all-equal values (0.5), one value, "
        "an empty batch, and S_d by hand.",
        _tests("test_difficulty.py", "test_rank_normalise_with_ties", "test_rank_normalise_degenerate",
               "test_combined_difficulty_by_hand")),
    Exercise(
        "hard-threshold", ("difficulty.hard_questions",), "§2", 2, 20, "rank-difficulty (S_d)",
        "s_d: (questions,) -> bool (questions,). theta is numpy's default (linear) percentile. The tests "
        "check the top 20% by hand, ties at the threshold, percentile 0, and that S_d = 0 is never hard.",
        _tests("test_difficulty.py", "test_hard_questions_all_zero_batch_has_no_hard",
               "test_hard_questions_top_20_percent", "test_hard_questions_requires_positive_sd")),
    Exercise(
        "slow-to-fast", ("difficulty.slow_to_fast_keep",), "§5", 2, 15, "pass rates (§2)",
        "pass_rate: (groups,), progress in [0, 1] -> bool keep mask. The tests check both halves on G = 8 "
        "pass rates, the switch at progress 0.5, pass rates a rounding step off the bounds (compare with "
        "the tolerance TOL), and pass rates of 0.7 and 0.3 (the paper's bounds, not the released code's).",
        _tests("test_difficulty.py", "test_curriculum_slow_half_drops_easy_and_keeps_unsolved",
               "test_curriculum_fast_half_drops_hard_and_keeps_solved", "test_curriculum_switches_at_half",
               "test_curriculum_uses_the_papers_bounds")),
    Exercise(
        "glcm-entropy", ("difficulty.glcm_entropy",), "Eq. 2 (§2)", 4, 60, "numpy indexing, np.bincount",
        "image: PIL image or array -> float, bits. Use the helpers _grey, _patches, _entropy_bits and the "
        "constants LEVELS, OFFSETS. The tests check constant and 2-level images by hand, quantisation to "
        "64 levels, a pixel-by-pixel reference, the mean over patches, tiny images, PIL and numpy inputs.",
        _tests("test_difficulty.py", "test_constant_image_has_zero_entropy", "test_single_row_stripes_by_hand",
               "test_8x8_stripes_by_hand", "test_matches_naive_reference", "test_mean_over_patches_and_ignored_border",
               "test_noise_has_more_entropy_than_gradient", "test_small_images_work", "test_pil_and_numpy_agree",
               "test_image_complexity_adds_classifier_entropy")),
    Exercise(
        "format-reward", ("rewards.format_reward",), "§6, §7", 2, 30, "Python strings",
        "response: str, style 'think' or 'answer-first' -> 1.0 or 0.0. The tests check accepted and rejected "
        "responses (text between or around the blocks, nested, repeated or foreign tags, a blank answer), "
        "both styles, an unknown style (ValueError) and random hostile strings (never raise). Keep it "
        "linear-time: str.count / str.find, no backtracking regex.",
        _tests("test_rewards.py", "test_format_think_ok", "test_format_think_rejects", "test_format_answer_first",
               "test_format_unknown_style", "test_hostile_random_strings_never_raise", "test_hostile_edge_strings")),
]
BY_ID = {exercise.id: exercise for exercise in EXERCISES}


class ClassroomError(Exception):
    """A usage problem worth one line, not a traceback (unknown exercise, output folder not empty, ...)."""


def pick_exercises(only):
    """Exercises named in a comma-separated `only` string (or list), in table order; all when empty."""
    if not only:
        return list(EXERCISES)
    ids = [i.strip() for i in (only.split(",") if isinstance(only, str) else only) if i.strip()]
    unknown = [i for i in ids if i not in BY_ID]
    if unknown:
        raise ClassroomError(f"unknown exercise {', '.join(unknown)}; the exercises are {', '.join(BY_ID)}")
    return [exercise for exercise in EXERCISES if exercise.id in ids]


# ----------------------------------------------------------------------------------------------------------
# Functions by line range (ast), not by regex


def _find_function(tree, name):
    """The module-level `def name` of an ast tree, or ClassroomError."""
    found = [node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
             and node.name == name]
    if len(found) != 1:
        raise ClassroomError(f"expected one module-level function {name}, found {len(found)}")
    return found[0]


def function_source(text, name):
    """The source lines of module-level function `name` in `text`, decorators included."""
    node = _find_function(ast.parse(text), name)
    first = min([node.lineno] + [d.lineno for d in node.decorator_list])
    return "".join(text.splitlines(keepends=True)[first - 1:node.end_lineno])


def replace_function(text, name, new_source):
    """`text` with module-level function `name` (decorators included) replaced by `new_source`."""
    node = _find_function(ast.parse(text), name)
    first = min([node.lineno] + [d.lineno for d in node.decorator_list])
    lines = text.splitlines(keepends=True)
    new_source = textwrap.dedent(new_source).strip("\n") + "\n"
    return "".join(lines[:first - 1]) + new_source + "".join(lines[node.end_lineno:])


def blank_function(text, name, exercise):
    """`text` with the body of `name` after its docstring replaced by a hint and `raise NotImplementedError`.

    Signature, decorators and docstring stay; so does every other line of the file.
    """
    node = _find_function(ast.parse(text), name)
    body = node.body
    has_docstring = isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
        and isinstance(body[0].value.value, str)
    if body[0].lineno == node.lineno:
        raise ClassroomError(f"{name}: its body starts on the `def` line; put it on lines of its own to blank it")
    start = body[0].end_lineno + 1 if has_docstring else body[0].lineno  # first line to replace (1-based)
    indent = " " * body[0].col_offset
    header = (f"Exercise {exercise.id} (docs/paper.md {exercise.reference}; {exercise.points} points, about "
              f"{exercise.minutes} minutes).")
    hint = [*textwrap.wrap(header, 100), *textwrap.wrap(exercise.hint, 100),
            f"Check: python classroom.py grade --only {exercise.id}"]
    stub = [f"{indent}# {line}\n" for line in hint]
    stub.append(f'{indent}raise NotImplementedError("exercise {exercise.id}: write {name} (see the hint above)")\n')
    lines = text.splitlines(keepends=True)
    return "".join(lines[:start - 1]) + "".join(stub) + "".join(lines[node.end_lineno:])


# ----------------------------------------------------------------------------------------------------------
# make


def _ignore_for(source, out):
    """shutil.copytree's ignore function: skip SKIP_NAMES, SKIP_PATHS, the output folder itself and any
    assignment made earlier inside the project."""
    out = os.path.realpath(out)

    def ignore(folder, names):
        skipped = set()
        for name in names:
            path = os.path.join(folder, name)
            relative = os.path.relpath(path, source)
            if (name in SKIP_NAMES or name.endswith(".tmp") or relative in SKIP_PATHS
                    or os.path.realpath(path) == out or os.path.exists(os.path.join(path, ASSIGNMENT_FILE))):
                skipped.add(name)
        return skipped

    return ignore


def copy_project(source, out):
    """Copy the project at `source` into the new or empty folder `out`, without what SKIP_NAMES and SKIP_PATHS
    name, the output folder itself and assignments made earlier inside the project."""
    if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise ClassroomError(f"{out} exists and is not an empty folder; choose a new --out")
    shutil.copytree(source, out, ignore=_ignore_for(source, out), dirs_exist_ok=True)


def make(out, only=None, source=HERE):
    """Write an assignment into `out`: a copy of the project at `source` with the chosen exercises blanked.

    demo_model/ (3.5 MB) is copied: the experiment questions of docs/teaching.md run the demo. Returns the
    exercises blanked.
    """
    exercises = pick_exercises(only)
    copy_project(source, out)
    if not os.path.isfile(os.path.join(out, "docs", "paper.md")):  # the hints cite its sections
        raise ClassroomError(f"{source}: no docs/paper.md to copy into the assignment")
    for exercise in exercises:
        for qualified in exercise.functions:
            module, name = qualified.split(".")
            path = os.path.join(out, module + ".py")
            with open(path) as f:
                text = blank_function(f.read(), name, exercise)
            compile(text, path, "exec")  # a blanked file must still be valid Python
            with open(path, "w") as f:
                f.write(text)
    with open(os.path.join(out, ASSIGNMENT_FILE), "w") as f:
        json.dump({"exercises": [exercise.id for exercise in exercises]}, f, indent=1)
        f.write("\n")
    return exercises


# ----------------------------------------------------------------------------------------------------------
# grade: one pytest session per graded folder, in a forked child (so third-party imports are paid once)


def score(exercises, events, finished, timeout=None):
    """Per exercise: dict(id, function, reference, points, score, status, reason, checks, checks_passed).

    A check is one test (one per parameter set). Passed: every check ran and passed. Not implemented yet:
    a check failed on the blanked body's NotImplementedError. Failed: otherwise, with the first failure.
    """
    outcome, message, collect_errors, started = {}, {}, [], []
    for event in events:
        if "started" in event:
            started.append(event["started"])
        elif "collect_error" in event:
            collect_errors.append(event)
        elif "test" in event:
            node = event["test"]
            if event["outcome"] == "failed" or node not in outcome:
                outcome[node] = event["outcome"] if event["outcome"] != "skipped" else "failed"
            if event["outcome"] != "passed" and node not in message:
                prefix = "skipped: " if event["outcome"] == "skipped" else ""
                message[node] = prefix + event["message"]
    rows = []
    for exercise in exercises:
        wanted = set(exercise.tests)
        checks = [node for node in dict.fromkeys(started) if node.split("[")[0] in wanted]
        failed = [node for node in checks if outcome.get(node) != "passed"]
        ran = {node.split("[")[0] for node in checks}
        status, reason = "passed", ""
        if any(message.get(node, "").startswith(NOT_IMPLEMENTED) for node in failed):
            status = "not implemented yet"
        elif failed:
            node = failed[0]
            name = node.split("::")[-1]
            if node not in outcome:  # started, never reported: the child was killed in it
                status, reason = "failed", f"{name}: did not finish within {timeout} s"
            else:
                status, reason = "failed", f"{name}: {message.get(node, '')}"
        elif ran != wanted:
            missing = sorted(wanted - ran)[0].split("::")[-1]
            errors = [e for e in collect_errors if os.path.basename(e["collect_error"]) in {
                os.path.basename(t.split("::")[0]) for t in wanted}]
            if errors:
                reason = f"could not import {errors[0]['collect_error']}: {errors[0]['message']}"
            elif not finished:
                reason = f"{missing}: not reached within {timeout} s"
            else:
                reason = f"{missing}: did not run"
            status = "failed"
        rows.append(dict(id=exercise.id, function=", ".join(exercise.functions), reference=exercise.reference,
                         points=exercise.points, score=exercise.points if status == "passed" else 0,
                         status=status, reason=reason, checks=len(checks),
                         checks_passed=len(checks) - len(failed)))
    return rows


def assigned_exercises(folder, only=None):
    """`only` if given, else the exercises the folder's assignment file names, else all."""
    if only:
        return pick_exercises(only)
    path = os.path.join(folder, ASSIGNMENT_FILE)
    if os.path.exists(path):
        with open(path) as f:
            return pick_exercises(json.load(f)["exercises"])
    return list(EXERCISES)


def grade(folders, only=None, timeout=60, jobs=1):
    """Grade each folder, `jobs` folders at a time; returns one dict per folder, in order: directory, score,
    max_score, exercises (the rows of `score`).

    A check that takes longer than `timeout` seconds fails; a folder whose child is still running after
    FOLDER_TIMEOUTS times that (stuck in C code, say) is stopped, its unfinished checks failed.
    """
    for folder in folders:
        if not os.path.isfile(os.path.join(folder, "fast_grpo.py")):
            raise ClassroomError(f"{folder}: not a fast-grpo folder (no fast_grpo.py)")
    plans = []
    for folder in folders:
        exercises = assigned_exercises(folder, only)
        plans.append((folder, exercises, sorted({node for exercise in exercises for node in exercise.tests})))
    if folders:
        test_files = {os.path.join(HERE, node.split("::")[0]) for _, _, node_ids in plans for node in node_ids}
        grading.preload(folders[0], sorted(test_files | {os.path.join(HERE, "tests", "conftest.py")}))
    results, waiting, running = [None] * len(folders), list(range(len(folders))), {}
    with tempfile.TemporaryDirectory(prefix="classroom-") as scratch:
        while waiting or running:
            while waiting and len(running) < max(1, jobs):
                number = waiting.pop(0)
                folder, _, node_ids = plans[number]
                os.makedirs(os.path.join(scratch, str(number)))
                running[number] = grading.Child(folder, node_ids, os.path.join(scratch, str(number)), timeout,
                                         FOLDER_TIMEOUTS * timeout)
            for number, child in list(running.items()):
                if child.done():
                    del running[number]
                    results[number] = _result(plans[number], child, FOLDER_TIMEOUTS * timeout)
            time.sleep(0.01)
    return results


def _result(plan, child, timeout):
    """The grades of one folder from its child's event file."""
    folder, exercises, _ = plan
    events = grading.read_events(child.events_path)
    rows = score(exercises, events, not child.timed_out, timeout)
    if not child.timed_out and not any("started" in e or "collect_error" in e for e in events):
        with open(child.log_path) as f:  # pytest itself broke: its last line says why
            lines = [line.strip() for line in f if line.strip()] or ["(no output)"]
        for row in rows:
            row.update(status="failed", score=0, reason=f"the tests did not start: {lines[-1]}")
    return dict(directory=os.path.abspath(folder), score=sum(r["score"] for r in rows),
                max_score=sum(r["points"] for r in rows), exercises=rows)


def format_table(result):
    """One folder's grades as a plain-text table, failures with the one line that says why."""
    rows = result["exercises"]
    passed = sum(r["status"] == "passed" for r in rows)
    head = [f"{result['directory']}: {result['score']} of {result['max_score']} points "
            f"({passed} of {len(rows)} exercises passed)"]
    columns = [("exercise", "id"), ("reference", "reference"), ("points", None), ("status", None)]
    cells = [[r["id"], r["reference"], f"{r['score']}/{r['points']}",
              r["status"] + (f": {r['reason']}" if r["reason"] else "")] for r in rows]
    sizes = [max(len(name), *(len(c[i]) for c in cells)) for i, (name, _) in enumerate(columns[:3])]
    line = lambda values: "  ".join(v.ljust(s) for v, s in zip(values, sizes + [0])).rstrip()  # noqa: E731
    out = head + [line([name for name, _ in columns])]
    out.extend(line(c) for c in cells)
    return "\n".join(out)


def exercise_table():
    """docs/teaching.md's exercise table (markdown), from EXERCISES."""
    lines = ["| exercise | function | docs/paper.md | points | time | prerequisites |", "|---|---|---|---|---|---|"]
    for e in EXERCISES:
        functions = ", ".join(f"`{f}`" for f in e.functions)
        lines.append(f"| `{e.id}` | {functions} | {e.reference} | {e.points} | {e.minutes} min | {e.prerequisites} |")
    total_points, total_minutes = sum(e.points for e in EXERCISES), sum(e.minutes for e in EXERCISES)
    lines.append(f"| all | | | {total_points} | {total_minutes // 60} h {total_minutes % 60} min | |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------
# Command line


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("make", help="write an assignment: a copy of the project with exercises blanked")
    p.add_argument("--out", required=True, help="new (or empty) folder for the assignment")
    p.add_argument("--only", help="comma-separated exercise ids (default: all); see `python classroom.py table`")
    p = commands.add_parser("grade", help="grade folders with the project's tests; exit code 0 iff all pass")
    p.add_argument("folders", nargs="*", default=[HERE], help="assignment folders (default: this project)")
    p.add_argument("--only", help="comma-separated exercise ids (default: the assignment's, else all)")
    p.add_argument("--json", help="write the scores here, a list with one entry per folder (for a gradebook)")
    p.add_argument("--timeout", type=float, default=60, help="seconds a check may take before it fails (an endless "
                   "loop fails only its own check)")
    p.add_argument("--jobs", type=int, default=1, help="folders graded at the same time (one CPU core each)")
    commands.add_parser("table", help="print the exercise table (markdown), as in docs/teaching.md")
    p = commands.add_parser("run-tests", help="(internal) one folder's tests, where there is no os.fork")
    p.add_argument("folder")
    p.add_argument("events_path")
    p.add_argument("log_path")
    p.add_argument("check_timeout", type=float)
    p.add_argument("node_ids", nargs="+")
    args = parser.parse_args(argv)
    try:
        if args.command == "make":
            exercises = make(args.out, args.only)
            print(f"wrote {args.out}: {len(exercises)} exercises to write "
                  f"({', '.join(e.id for e in exercises)}); grade with: python classroom.py grade {args.out}")
        elif args.command == "grade":
            results = grade(args.folders, args.only, args.timeout, args.jobs)
            print("\n\n".join(format_table(result) for result in results))
            if args.json:
                with open(args.json, "w", encoding="utf-8") as f:
                    json.dump(results, f, indent=1, ensure_ascii=False)
                    f.write("\n")
            all_passed = all(r["status"] == "passed" for result in results for r in result["exercises"])
            sys.exit(0 if all_passed else 1)
        elif args.command == "table":
            print(exercise_table())
        else:
            sys.exit(grading.run_tests(args.folder, args.node_ids, args.events_path, args.log_path, args.check_timeout))
    except ClassroomError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
