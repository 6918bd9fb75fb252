"""The classroom kit (classroom/): making an assignment, grading it, and the grader catching the mistakes students
really make.

Every folder is graded by ONE `python -m classroom grade` run (session fixture `graded`): it pays for torch and
transformers once and grades each folder in a forked child, so some fifty gradings take about a minute.
"""

import ast
import json
import os
import subprocess
import sys

import pytest

from classroom import exercises, grading, kit

from wrong_implementations import WRONG  # tests/classroom/wrong_implementations.py, beside this file


def function_text(folder, qualified):
    relative, name = exercises.function_path(qualified)
    with open(os.path.join(folder, relative)) as f:
        return kit.function_source(f.read(), name)


def defined_name(source):
    return ast.parse(source.strip()).body[0].name


def wrong_function(exercise, mistake):
    """(qualified function name, its wrong source) for one entry of WRONG."""
    if len(mistake) == 2:
        name = defined_name(mistake[1])
        qualified = next(f for f in exercise.functions if f.endswith("." + name))
        return qualified, mistake[1]
    _, old, new = mistake
    for qualified in exercise.functions:
        reference = function_text(kit.HERE, qualified)
        if reference.count(old) == 1:
            return qualified, reference.replace(old, new)
    raise AssertionError(f"{exercise.id}: {old!r} is not in the reference function exactly once; update WRONG")


def linked_copy(base, folder, changed):
    """A folder of symbolic links to `base`'s entries, except the files in `changed` ({relative path: text}; a
    file inside a package, "machinery/logs.py", makes its folder a real one, of links but for that file)."""
    os.makedirs(folder)
    changed = {os.path.normpath(path): text for path, text in changed.items()}
    for name in os.listdir(base):
        inside = {os.path.relpath(path, name): text for path, text in changed.items()
                  if path.startswith(name + os.sep)}
        if name in changed:
            with open(os.path.join(folder, name), "w") as f:
                f.write(changed[name])
        elif inside:
            linked_copy(os.path.join(base, name), os.path.join(folder, name), inside)
        elif name != kit.ASSIGNMENT_FILE:
            os.symlink(os.path.join(base, name), os.path.join(folder, name))
    return str(folder)


def with_functions(base, folder, functions, keep_assignment_file=True):
    """`base` with the given functions ({qualified name: source}) put in, as a linked copy."""
    changed = {}
    for qualified, source in functions.items():
        file, name = exercises.function_path(qualified)
        if file not in changed:
            with open(os.path.join(base, file)) as f:
                changed[file] = f.read()
        changed[file] = kit.replace_function(changed[file], name, source)
    folder = linked_copy(base, folder, changed)
    if keep_assignment_file and os.path.exists(os.path.join(base, kit.ASSIGNMENT_FILE)):
        os.symlink(os.path.join(base, kit.ASSIGNMENT_FILE), os.path.join(folder, kit.ASSIGNMENT_FILE))
    return folder


def with_text_appended(base, folder, relative, text):
    """`base` as a linked copy, with `text` appended to its file `relative` (say machinery/distributed.py)."""
    return linked_copy(base, folder, {relative: open(os.path.join(base, relative)).read() + text})


def wrong_cases():
    return [(exercise_id, number) for exercise_id, mistakes in WRONG.items() for number in range(len(mistakes))]


@pytest.fixture(scope="session")
def folders(tmp_path_factory):
    """Every folder the tests below grade: the project copied, a fresh assignment, a partial one, each
    reference function copied back into the assignment, and each wrong implementation in the project."""
    root = tmp_path_factory.mktemp("classroom")
    reference, assignment, partial = root / "reference", root / "hw", root / "hw-partial"
    kit.copy_project(kit.HERE, str(reference))
    kit.make(str(assignment))
    kit.make(str(partial), "grpo-loss,glcm-entropy")
    found = {"reference": str(reference), "assignment": str(assignment),
             # the partial assignment's code, graded on every exercise (no assignment file)
             "partial": linked_copy(str(partial), root / "partial-all", {})}
    for exercise in exercises.EXERCISES:
        restored = {q: function_text(kit.HERE, q) for q in exercise.functions}
        found["restored", exercise.id] = with_functions(str(assignment), root / f"restored-{exercise.id}", restored)
    for exercise_id, number in wrong_cases():
        qualified, source = wrong_function(exercises.BY_ID[exercise_id], WRONG[exercise_id][number])
        found["wrong", exercise_id, number] = with_functions(str(reference), root / f"wrong-{exercise_id}-{number}",
                                                             {qualified: source})
    endless = "def kl_coefficients(pass_rate, beta_min=0.001, beta_max=0.03):\n    while True:\n        pass\n"
    found["endless loop"] = with_functions(str(reference), root / "endless", {"difficulty.kl_coefficients": endless})
    broken = open(os.path.join(kit.HERE, "rewards.py")).read().replace("def format_reward(", "def format_reward((")
    found["syntax error"] = linked_copy(str(reference), root / "syntax-error", {"rewards.py": broken})
    # a packaged module of the student's copy that does not compile: fast_grpo imports it at the top
    found["package syntax error"] = with_text_appended(str(reference), root / "package-syntax-error",
                                                       PACKAGED_MODULE, "\ndef broken((:\n    pass\n")
    return found


PACKAGED_MODULE = os.path.join("machinery", "distributed.py")  # imported by fast_grpo (and so by test_vlm.py)
# the exercises whose test files import fast_grpo, and so PACKAGED_MODULE
IMPORTS_FAST_GRPO = {"advantages", "k3-kl", "grpo-loss", "loss-aggregation", "gspo-ratio", "token-logprobs"}


@pytest.fixture(scope="session")
def graded(folders, tmp_path_factory):
    """({folder key: {exercise id: row}}, the grader's output, (code, stdout, stderr) of `python fast_grpo.py
    --help` in the fresh assignment), from one `python -m classroom grade --json` run over every folder, started
    in the repository root."""
    keys = list(folders)
    scores = tmp_path_factory.mktemp("scores") / "scores.json"
    # meanwhile, the fresh assignment's training script answers --help (it imports everything, transformers too)
    help_run = subprocess.Popen([sys.executable, "fast_grpo.py", "--help"], cwd=folders["assignment"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run = subprocess.run([sys.executable, "-m", "classroom", "grade", "--jobs", "2", "--timeout", str(CHECK_TIMEOUT),
                          "--json", str(scores), *[folders[key] for key in keys]],
                         cwd=kit.HERE, capture_output=True, text=True, timeout=900)
    assert run.returncode == 1, run.stderr  # some folders fail: exit code 1, and no crash
    help_out, help_err = help_run.communicate(timeout=300)
    results = json.loads(scores.read_text())
    assert [r["directory"] for r in results] == [os.path.abspath(folders[key]) for key in keys]
    rows = {key: {row["id"]: row for row in result["exercises"]} for key, result in zip(keys, results)}
    return rows, run.stdout, (help_run.returncode, help_out, help_err)


CHECK_TIMEOUT = 10  # seconds a check may take; the slowest takes about 1 s


def statuses(rows):
    return {exercise_id: row["status"] for exercise_id, row in rows.items()}


def test_the_project_itself_gets_full_marks(graded):
    rows = graded[0]["reference"]
    assert statuses(rows) == {e.id: "passed" for e in exercises.EXERCISES}
    # every listed test ran: a renamed test must not be skipped silently
    for exercise in exercises.EXERCISES:
        assert rows[exercise.id]["checks"] >= len(exercise.tests) and rows[exercise.id]["score"] == exercise.points


def test_a_fresh_assignment_is_all_not_implemented_yet(graded):
    rows = graded[0]["assignment"]
    assert statuses(rows) == {e.id: "not implemented yet" for e in exercises.EXERCISES}
    assert sum(row["score"] for row in rows.values()) == 0
    assert "not implemented yet" in graded[1] and "Traceback" not in graded[1]


def test_a_partial_assignment_leaves_the_other_exercises_passing(graded):
    expected = {e.id: "passed" for e in exercises.EXERCISES}
    expected.update({"grpo-loss": "not implemented yet", "glcm-entropy": "not implemented yet"})
    assert statuses(graded[0]["partial"]) == expected


@pytest.mark.parametrize("exercise_id", list(exercises.BY_ID))
def test_copying_one_reference_function_back_scores_exactly_that_exercise(graded, exercise_id):
    rows = graded[0]["restored", exercise_id]
    expected = {e.id: "not implemented yet" for e in exercises.EXERCISES}
    expected[exercise_id] = "passed"
    assert statuses(rows) == expected


@pytest.mark.parametrize("exercise_id, number", wrong_cases(),
                         ids=[f"{e}-{WRONG[e][n][0]}" for e, n in wrong_cases()])
def test_the_grader_catches_a_wrong_implementation(graded, exercise_id, number):
    rows = graded[0]["wrong", exercise_id, number]
    failed = {e: row for e, row in rows.items() if row["status"] != "passed"}
    assert list(failed) == [exercise_id], f"{WRONG[exercise_id][number][0]}: {statuses(rows)}"
    row = failed[exercise_id]
    assert row["status"] == "failed" and row["score"] == 0
    assert row["reason"].startswith("test_") and "\n" not in row["reason"]  # names the check, one line


def test_an_endless_loop_fails_its_own_check_only(graded):
    rows = graded[0]["endless loop"]
    assert [e for e, row in rows.items() if row["status"] != "passed"] == ["dynamic-kl"]
    reason = rows["dynamic-kl"]["reason"]
    assert f"took longer than {CHECK_TIMEOUT} s" in reason and "(difficulty.py:" in reason


def test_a_syntax_error_is_reported_where_it_is(graded):
    rows = graded[0]["syntax error"]
    # test_fast_grpo.py and test_vlm.py import rewards through fast_grpo; test_difficulty.py does not
    for exercise in exercises.EXERCISES:
        row = rows[exercise.id]
        if exercise.functions[0].startswith("difficulty."):
            assert row["status"] == "passed", row
        else:
            assert row["status"] == "failed" and row["reason"].startswith("could not import tests/test_"), row
            assert "SyntaxError" in row["reason"] and "(rewards.py:" in row["reason"], row


def test_a_packaged_module_that_does_not_import_fails_the_exercises_that_import_it(graded):
    rows = graded[0]["package syntax error"]
    for exercise in exercises.EXERCISES:
        row = rows[exercise.id]
        if exercise.id in IMPORTS_FAST_GRPO:
            assert row["status"] == "failed" and row["reason"].startswith("could not import tests/test_"), row
            assert "SyntaxError" in row["reason"] and f"({PACKAGED_MODULE}:" in row["reason"], row
        else:
            assert row["status"] == "passed", row


# The parent has imported this checkout's fast_grpo (and with it machinery.distributed, ...) before it grades, in a
# forked child and in a `python -m classroom run-tests` subprocess (where there is no fork); argv[1] is the folder.
REGRADE = """
import json, sys
import fast_grpo
from classroom import grading, kit
found = {"parent": sys.modules["machinery.distributed"].__file__}
for way, fork in [("fork", True), ("run-tests", False)]:
    grading.FORK = fork
    rows = kit.grade([sys.argv[1]], "advantages,dynamic-kl", timeout=60)[0]["exercises"]
    found[way] = {row["id"]: row for row in rows}
print(json.dumps(found))
"""


@pytest.fixture(scope="module")
def regraded(folders, tmp_path_factory):
    """The grades of a copy whose machinery/distributed.py raises on import, from a parent that had imported
    this checkout's: {"parent": the parent's machinery/distributed.py, "fork" / "run-tests": {id: row}}."""
    folder = with_text_appended(folders["reference"], tmp_path_factory.mktemp("regrade") / "student",
                                PACKAGED_MODULE, '\nraise RuntimeError("the student copy of distributed.py")\n')
    run = subprocess.run([sys.executable, "-c", REGRADE, folder], cwd=kit.HERE, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("way", ["fork", "run-tests"])
def test_the_tests_see_the_graded_copys_packages_never_this_checkouts(regraded, way):
    assert os.path.realpath(regraded["parent"]) == os.path.realpath(os.path.join(kit.HERE, PACKAGED_MODULE))
    rows = regraded[way]
    assert rows["dynamic-kl"]["status"] == "passed", rows
    row = rows["advantages"]
    assert row["status"] == "failed" and row["reason"].startswith("could not import tests/test_fast_grpo.py"), row
    assert "the student copy of distributed.py" in row["reason"] and f"({PACKAGED_MODULE}:" in row["reason"], row


def test_packages_are_the_projects_own_and_never_preloaded():
    names = grading.project_modules(kit.HERE)
    assert {"fast_grpo", "vlm", "rewards", "machinery", "data_loading", "answer_checking", "classroom"} <= names
    assert not {"tests", "docs", "results"} & names  # folders without an __init__.py are not packages
    tests = [os.path.join(kit.HERE, "tests", name) for name in ("test_fast_grpo.py", "test_vlm.py", "conftest.py")]
    imported = [module for module, _ in grading.third_party_imports(kit.HERE, tests)]
    assert {"torch", "transformers", "numpy"} <= set(imported)
    assert "torch.distributed.fsdp" in imported  # from machinery/fsdp.py: the packages' modules are read too
    local = grading.local_modules(kit.HERE)
    assert {"conftest", "helpers", "machinery"} <= local
    assert not [module for module in imported if grading.is_local(module, local)]


def test_one_line_points_at_the_graded_code_not_at_the_tests_or_the_grader(tmp_path):
    folder = os.path.realpath(tmp_path)
    text = "\n".join([f"{os.path.join(kit.HERE, 'tests', 'test_fast_grpo.py')}:40: in test_x",
                      f"{os.path.join(folder, 'machinery', 'distributed.py')}:12: in setup",
                      f"{os.path.join(folder, 'classroom', 'grading.py')}:99: in too_slow",
                      f"{os.path.join(kit.HERE, 'classroom', 'grading.py')}:99: in too_slow",
                      "E   Failed: took longer than 10 s (an endless loop?)"])
    expected = f"Failed: took longer than 10 s (an endless loop?) ({os.path.join('machinery', 'distributed.py')}:12)"
    assert grading.one_line(text, folder) == expected


def test_python_m_classroom_runs_from_the_repository_root():
    assert grading.HERE == kit.HERE and os.path.isfile(os.path.join(kit.HERE, "fast_grpo.py"))
    assert os.path.isdir(os.path.join(kit.HERE, "tests"))
    run = subprocess.run([sys.executable, "-m", "classroom", "table"], cwd=kit.HERE, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == kit.exercise_table(), run.stderr
    run = subprocess.run([sys.executable, "-m", "classroom", "--help"], cwd=kit.HERE, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0 and "python -m classroom make --out hw" in run.stdout, run.stderr


def test_every_exercise_has_at_least_two_wrong_implementations():
    assert set(WRONG) == set(exercises.BY_ID)
    assert all(len(mistakes) >= 2 for mistakes in WRONG.values())


# ----------------------------------------------------------------------------------------------------------
# make: what the copy holds


def test_make_blanks_bodies_and_keeps_everything_else(tmp_path):
    out = tmp_path / "hw"
    kit.make(str(out), "grpo-loss,rank-difficulty")
    for qualified in ["fast_grpo.grpo_loss", "difficulty.rank_normalise", "difficulty.combined_difficulty"]:
        module, name = qualified.split(".")
        blanked = ast.parse((out / f"{module}.py").read_text())
        original = ast.parse(open(os.path.join(kit.HERE, f"{module}.py")).read())
        new, old = (next(n for n in tree.body if getattr(n, "name", None) == name) for tree in (blanked, original))
        assert ast.dump(new.args) == ast.dump(old.args)  # the signature
        assert ast.get_docstring(new) == ast.get_docstring(old)
        assert isinstance(new.body[-1], ast.Raise) and len(new.body) == 2  # docstring, raise
        source = kit.function_source((out / f"{module}.py").read_text(), name)
        assert "# Exercise " in source and "(docs/paper.md " in source and "§" in source
        assert "# Check: python -m classroom grade --only " in source
    # putting the reference functions back gives the project's files byte for byte
    for module in ["fast_grpo", "difficulty"]:
        text = (out / f"{module}.py").read_text()
        original = open(os.path.join(kit.HERE, f"{module}.py")).read()
        for qualified in ["fast_grpo.grpo_loss", "difficulty.rank_normalise", "difficulty.combined_difficulty"]:
            if qualified.startswith(module + "."):
                name = qualified.split(".")[1]
                text = kit.replace_function(text, name, kit.function_source(original, name))
        assert text == original
    for file in ["rewards.py", "vlm.py", "eval.py", "data_loading/loader.py", "machinery/harness.py"]:
        assert (out / file).read_text() == open(os.path.join(kit.HERE, file)).read()  # untouched modules: copies
    assert json.loads((out / kit.ASSIGNMENT_FILE).read_text()) == {"exercises": ["grpo-loss", "rank-difficulty"]}


def test_make_blanks_a_function_of_a_packaged_module(tmp_path, monkeypatch):
    """An exercise may come from a folder: "package.module.function" is package/module.py's function."""
    source = tmp_path / "project"
    (source / "docs").mkdir(parents=True)
    (source / "docs" / "paper.md").write_text("# the paper\n")
    (source / "pkg").mkdir()
    (source / "pkg" / "__init__.py").write_text('"""A package."""\n')
    original = 'def double(x):\n    """Twice x."""\n    return 2 * x\n\n\ndef other():\n    return 1\n'
    (source / "pkg" / "mod.py").write_text(original)
    exercise = exercises.Exercise("double", ("pkg.mod.double",), "§0", 1, 5, "none", "x -> 2 x.",
                                  ("tests/test_mod.py::test_double",))
    monkeypatch.setattr(kit, "EXERCISES", [exercise])
    monkeypatch.setattr(kit, "BY_ID", {"double": exercise})
    assert exercises.function_path("pkg.mod.double") == (os.path.join("pkg", "mod.py"), "double")
    kit.make(str(tmp_path / "hw"), "double", source=str(source))
    text = (tmp_path / "hw" / "pkg" / "mod.py").read_text()
    assert "# Check: python -m classroom grade --only double" in text and "raise NotImplementedError" in text
    assert kit.function_source(text, "other") == kit.function_source(original, "other")
    assert kit.replace_function(text, "double", kit.function_source(original, "double")) == original


def test_make_skips_what_a_student_does_not_need(tmp_path):
    source = tmp_path / "project"
    kit.copy_project(kit.HERE, str(source))
    for junk in [".git/objects", "runs/fast-grpo", "results/x", "__pycache__", ".pytest_cache", ".sweep", ".whl",
                 "tests/__pycache__", "checkpoint-3.tmp"]:
        os.makedirs(source / junk)
        (source / junk / "file").write_text("x")
    kit.make(str(source / "old-hw"), "advantages", source=str(source))  # an earlier assignment inside
    out = source / "hw"  # the output folder inside the project is not copied into itself
    kit.make(str(out), "advantages", source=str(source))
    copied = {os.path.relpath(os.path.join(d, f), out) for d, _, files in os.walk(out) for f in files}
    assert not [p for p in copied if p.split(os.sep)[0] in kit.SKIP_NAMES | {"old-hw", "hw", "checkpoint-3.tmp"}
                or "__pycache__" in p]
    assert "demo/model/model.safetensors" in copied and "tests/test_fast_grpo.py" in copied
    assert "docs/paper.md" in copied  # the specification the hints cite
    assert "classroom/kit.py" in copied  # a student checks an exercise with `python -m classroom grade --only ID`
    assert os.path.join("tests", "classroom", "test_classroom.py") not in copied  # it holds the wrong implementations
    with pytest.raises(kit.ClassroomError, match="not an empty folder"):
        kit.make(str(out))  # never over a student's work
    with pytest.raises(kit.ClassroomError, match="unknown exercise nope"):
        kit.make(str(tmp_path / "other"), "advantages,nope")


def test_a_made_assignment_still_runs_and_imports(folders, graded):
    returncode, out, err = graded[2]  # `python fast_grpo.py --help` in the fresh assignment
    assert returncode == 0 and "--method" in out, err
    for path in grading._source_files(folders["assignment"]):  # the top-level modules and the packages' modules
        compile(open(path).read(), path, "exec")


# ----------------------------------------------------------------------------------------------------------
# The command line, the table, the README


def fake_results(status):
    rows = [dict(id=e.id, function=", ".join(e.functions), reference=e.reference, points=e.points,
                 score=e.points if status == "passed" else 0, status=status,
                 reason="test_x: assert 1 == 2" if status == "failed" else "", checks=1,
                 checks_passed=int(status == "passed")) for e in exercises.EXERCISES]
    return [dict(directory="/hw", score=sum(r["score"] for r in rows), max_score=30, exercises=rows)]


@pytest.mark.parametrize("status, code", [("passed", 0), ("failed", 1), ("not implemented yet", 1)])
def test_grade_exit_code_table_and_json(status, code, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(kit, "grade", lambda folders, only, timeout, jobs: fake_results(status))
    with pytest.raises(SystemExit) as exit_info:
        kit.main(["grade", "/hw", "--json", str(tmp_path / "scores.json")])
    assert exit_info.value.code == code
    out = capsys.readouterr().out
    assert out.splitlines()[1].split() == ["exercise", "reference", "points", "status"]
    assert len(out.splitlines()) == 2 + len(exercises.EXERCISES)
    row = next(line for line in out.splitlines() if line.startswith("grpo-loss "))
    assert row.split()[:3] == ["grpo-loss", "§1", f"{5 if code == 0 else 0}/5"] and status in row
    if status == "failed":
        assert "failed: test_x: assert 1 == 2" in out
    assert json.loads((tmp_path / "scores.json").read_text()) == fake_results(status)


def test_unknown_exercise_is_a_one_line_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        kit.main(["grade", kit.HERE, "--only", "nope"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith("error: unknown exercise nope")


def test_score_says_which_check_failed_or_did_not_finish():
    exercise = exercises.BY_ID["k3-kl"]
    test = exercise.tests[0]
    events = [{"started": test}, {"test": test, "outcome": "failed", "when": "call", "message": "assert 2 == 1"}]
    row, = kit.score([exercise], events, finished=True)
    assert (row["status"], row["reason"]) == ("failed", f"{test.split('::')[1]}: assert 2 == 1")
    row, = kit.score([exercise], events[:1], finished=False, timeout=5)
    assert row["status"] == "failed" and "did not finish within 5 s" in row["reason"]
    row, = kit.score([exercise], [], finished=True)
    assert row["status"] == "failed" and "did not run" in row["reason"]
    events[1]["message"] = "NotImplementedError: exercise k3-kl: write k3_kl (see the hint above)"
    row, = kit.score([exercise], events, finished=True)
    assert row["status"] == "not implemented yet"


def test_the_teaching_page_shows_the_exercise_table():
    teaching = open(os.path.join(kit.HERE, "docs", "teaching.md")).read()
    assert kit.exercise_table() in teaching, "docs/teaching.md out of date: paste `python -m classroom table`"
    assert "python -m classroom make --out hw" in teaching and "python -m classroom grade hw" in teaching
    assert "python classroom.py" not in teaching


def test_every_exercise_function_and_test_exists():
    for exercise in exercises.EXERCISES:
        for qualified in exercise.functions:
            function_text(kit.HERE, qualified)  # raises if missing
        for node in exercise.tests:
            file, name = node.split("::")
            tree = ast.parse(open(os.path.join(kit.HERE, file)).read())
            assert any(getattr(n, "name", None) == name for n in tree.body), node
