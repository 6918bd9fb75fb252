"""The classroom kit: assignments cut from the project's own code, graded by the project's own tests.
Run from the repository root (the folder that holds fast_grpo.py):

    python -m classroom make --out hw [--only advantages,grpo-loss]   # a copy with exercise functions blanked
    python -m classroom grade hw [--json scores.json]                 # one table: exercise, points, status
    python -m classroom grade                                         # the project itself: full marks
    python -m classroom table                                         # the exercise table of docs/teaching.md

`make` copies the project and replaces the body of each chosen exercise's function (found with `ast`, by line
range) with a short hint and `raise NotImplementedError`, keeping its signature and docstring; everything else
stays byte for byte. `grade` runs, for every exercise, the tests listed for it in EXERCISES (the tests in this
checkout's tests/ folder) against the code in the graded folder, all in one pytest session per folder (the
machinery is in grading.py), and reports passed / failed (with the check that failed) / not implemented yet.

Standard library and pytest only. classroom/exercises.py is the one place the exercises are defined:
docs/teaching.md's table is `python -m classroom table` (tests/classroom/test_classroom.py checks that they agree).
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

from classroom import grading
from classroom.exercises import BY_ID, EXERCISES, function_path

HERE = grading.HERE  # the repository root (the folder above classroom/): its tests/ are the ones that count
ASSIGNMENT_FILE = "classroom-assignment.json"  # written by `make`: which exercises this copy asks for
# Never copied into an assignment: version control, run outputs, caches, local wheels, the kit's own tests
# (they hold the wrong implementations it is tested with).
SKIP_NAMES = {".git", "results", "runs", ".sweep", ".whl", "__pycache__", ".pytest_cache", ".benchmarks",
              "results-tmp"}
SKIP_PATHS = {os.path.join("tests", "classroom", name)
              for name in ("test_classroom.py", "wrong_implementations.py")}
NOT_IMPLEMENTED = "NotImplementedError: exercise "  # how a blanked body's error starts in a test report
FOLDER_TIMEOUTS = 20  # a folder's tests are stopped after this many --timeout (a check stuck where no signal reaches)


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
            f"Check: python -m classroom grade --only {exercise.id}"]
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

    demo/model/ (3.5 MB) is copied: the experiment questions of docs/teaching.md run the demo. An exercise's
    functions are "module.function" (module.py) or "package.module.function" (package/module.py). Returns the
    exercises blanked.
    """
    exercises = pick_exercises(only)
    copy_project(source, out)
    if not os.path.isfile(os.path.join(out, "docs", "paper.md")):  # the hints cite its sections
        raise ClassroomError(f"{source}: no docs/paper.md to copy into the assignment")
    for exercise in exercises:
        for qualified in exercise.functions:
            relative, name = function_path(qualified)
            path = os.path.join(out, relative)
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
# grade: one pytest session per graded folder, in a forked child (so third-party imports are paid once; grading.py)


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
    """`python -m classroom ...` (classroom/__main__.py calls this)."""
    parser = argparse.ArgumentParser(prog="python -m classroom", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("make", help="write an assignment: a copy of the project with exercises blanked")
    p.add_argument("--out", required=True, help="new (or empty) folder for the assignment")
    p.add_argument("--only", help="comma-separated exercise ids (default: all); see `python -m classroom table`")
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
                  f"({', '.join(e.id for e in exercises)}); grade with: python -m classroom grade {args.out}")
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
            sys.exit(grading.run_tests(args.folder, args.node_ids, args.events_path, args.log_path,
                                       args.check_timeout))
    except ClassroomError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)

