"""The repository's shape: the paper's code flat at the top, everything else in role folders one level deep, no
import circle between modules or between folders, files a reader can take in, a README that is a front door, and
nothing that points outside the repository (a clone has only what it tracks)."""

import ast
import glob
import os
import re
import subprocess

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOP_LEVEL = {os.path.basename(p)[:-3]: p for p in glob.glob(os.path.join(HERE, "*.py"))}
FOLDERS = sorted(os.path.basename(os.path.dirname(p)) for p in glob.glob(os.path.join(HERE, "*", "__init__.py")))
# notebooks/: notebooks and their jupytext .py pairs, which nothing imports; not a package, but its tests mirror it
NOTEBOOK_FOLDERS = sorted({os.path.basename(os.path.dirname(p)) for p in glob.glob(os.path.join(HERE, "*", "*.ipynb"))})
# every module of the project, by its import name: fast_grpo, machinery.harness, ...
MODULES = {**TOP_LEVEL, **{f"{folder}.{os.path.basename(p)[:-3]}": p for folder in FOLDERS
                           for p in glob.glob(os.path.join(HERE, folder, "*.py"))
                           if not p.endswith("__init__.py")}}
STUDENTS_PATH = ("fast_grpo", "difficulty", "rewards", "methods", "vlm")  # the files that hold the whole algorithm
CODE_FILES = [p for p in glob.glob(os.path.join(HERE, "**", "*.py"), recursive=True)
              if os.path.relpath(p, HERE).split(os.sep)[0] not in ("tests",)]


def lines(path):
    with open(path) as f:
        return sum(1 for _ in f)


def imported_modules(path):
    """The project modules a file imports, anywhere in it (function-level imports too), by import name."""
    names = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:  # from machinery import harness: machinery.harness
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in names if name in MODULES}


def find_cycle(graph):
    """A circle in a {node: set of nodes} graph as a list (first node repeated at the end), or None."""
    done, on_path = set(), []

    def visit(name):
        if name in on_path:
            return on_path[on_path.index(name):] + [name]
        if name in done:
            return None
        on_path.append(name)
        for other in sorted(graph.get(name, ())):
            cycle = visit(other)
            if cycle:
                return cycle
        on_path.pop()
        done.add(name)
        return None

    return next((cycle for name in sorted(graph) if (cycle := visit(name))), None)


def room(module):
    """A folder counts as one room; a top-level script is its own."""
    return module.split(".")[0]


def test_find_cycle_finds_a_circle_and_only_a_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle_between_modules_or_between_folders():
    module_graph = {name: imported_modules(path) - {name} for name, path in MODULES.items()}
    assert find_cycle(module_graph) is None, "import cycle: " + " -> ".join(find_cycle(module_graph))
    room_graph = {}
    for name, imported in module_graph.items():
        room_graph.setdefault(room(name), set()).update(room(other) for other in imported if room(other) != room(name))
    assert find_cycle(room_graph) is None, "folders import each other: " + " -> ".join(find_cycle(room_graph))


def test_the_paper_is_flat_at_the_top_and_everything_else_is_in_role_folders_one_level_deep():
    assert sorted(TOP_LEVEL) == sorted(["fast_grpo", "rewards", "difficulty", "eval", "methods", "vlm",
                                        "prepare_data"])
    for folder in FOLDERS:
        docstring = ast.get_docstring(ast.parse(open(os.path.join(HERE, folder, "__init__.py")).read()))
        assert docstring and len(docstring.split()) >= 8, f"{folder}/__init__.py must say what the folder is for"
        assert not glob.glob(os.path.join(HERE, folder, "*", "*.py")), f"{folder}/ nests Python folders"
    for folder in NOTEBOOK_FOLDERS:  # a .py there is a notebook's text pair, not a module
        assert folder not in FOLDERS, f"{folder}/ holds notebooks: it is not a package"
        for path in glob.glob(os.path.join(HERE, folder, "*.py")):
            assert os.path.exists(path[:-3] + ".ipynb"), f"{os.path.relpath(path, HERE)} pairs no notebook"
    for path in CODE_FILES:  # every import names its folder: nothing makes a folder importable by other means
        assert "sys.path" not in open(path).read() or path.endswith(os.path.join("classroom", "grading.py")), path


def test_files_stay_readable_and_the_students_path_is_short():
    long = {os.path.relpath(p, HERE): n for p in glob.glob(os.path.join(HERE, "**", "*.py"), recursive=True)
            if (n := lines(p)) > 600}
    assert not long, long
    # 1,194 lines at the layout's commit; the chunked log-probs and the §10 length variants (GSPO, Dr. GRPO, DAPO)
    # added about 130: a reader's one sitting, with room for a few more flags, not for a second algorithm
    assert sum(lines(TOP_LEVEL[name]) for name in STUDENTS_PATH) <= 1400
    rewards, vlm = open(TOP_LEVEL["rewards"]).read(), open(TOP_LEVEL["vlm"]).read()
    assert lines(TOP_LEVEL["rewards"]) <= 200 and not re.search(r"^\s*(import re\b|from re import)", rewards, re.M)
    assert lines(TOP_LEVEL["vlm"]) <= 250 and "from_pretrained" not in vlm
    assert lines(os.path.join(HERE, "README.md")) <= 300


def test_tests_mirror_the_code_without_being_a_package():
    test_files = glob.glob(os.path.join(HERE, "tests", "**", "test_*.py"), recursive=True)
    names = [os.path.basename(p) for p in test_files]
    assert len(names) == len(set(names)), "test file names must be unique across tests/ (pytest's import mode)"
    assert not glob.glob(os.path.join(HERE, "tests", "**", "__init__.py"), recursive=True)
    for path in test_files:  # a test folder is named for the code folder it tests
        folder = os.path.relpath(os.path.dirname(path), os.path.join(HERE, "tests"))
        assert folder == "." or folder in FOLDERS + NOTEBOOK_FOLDERS, path


def cited_sections(text):
    """(page, section) for every "docs/PAGE.md §n" and every bare "§n" (which means docs/paper.md's §n)."""
    cited = {(page, int(n)) for page, n in re.findall(r"docs/(\w+)\.md,? §(\d+)", text)}
    bare = re.sub(r"docs/\w+\.md,? §\d+", "", text)
    return cited | {("paper", int(n)) for n in re.findall(r"§(\d+)", bare)}


def test_every_cited_docs_section_exists():
    headings = {os.path.basename(p)[:-3]: set(map(int, re.findall(r"^#+ §(\d+)", open(p).read(), re.M)))
                for p in glob.glob(os.path.join(HERE, "docs", "*.md"))}
    assert cited_sections("see docs/demo.md §3 and §4") == {("demo", 3), ("paper", 4)}
    for path in CODE_FILES + [os.path.join(HERE, "README.md")]:
        for page, number in cited_sections(open(path).read()):
            assert number in headings.get(page, set()), f"{os.path.relpath(path, HERE)} cites docs/{page}.md §{number}"


def test_nothing_points_outside_the_repository():
    outside = ["../sh", "ared"], ["paper-", "notes"]  # spelled in pieces, so this file does not match itself
    found = subprocess.run(["git", "grep", "-l", "-F", "-e", "".join(outside[0]), "-e", "".join(outside[1])],
                           cwd=HERE, capture_output=True, text=True).stdout
    assert found == "", found
