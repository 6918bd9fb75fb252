"""The repository's shape: flat modules under 600 lines, no import cycle, a README that is a front door, and
nothing that points outside the repository (a clone has only what it tracks)."""

import ast
import glob
import os
import subprocess

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODULES = {os.path.basename(p)[:-3]: p for p in glob.glob(os.path.join(HERE, "*.py"))}


def imports_of(path):
    """The top-level project modules a file imports, anywhere in it (function-level imports too)."""
    names = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names & set(MODULES)


def test_no_import_cycle_between_the_top_level_modules():
    graph = {name: imports_of(path) - {name} for name, path in MODULES.items()}
    done, on_path = set(), []

    def visit(name):
        assert name not in on_path, "import cycle: " + " -> ".join(on_path[on_path.index(name):] + [name])
        if name in done:
            return
        on_path.append(name)
        for other in sorted(graph[name]):
            visit(other)
        on_path.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)


def test_modules_stay_readable_and_the_readme_is_a_front_door():
    long = {name: n for name, path in MODULES.items() if (n := sum(1 for _ in open(path))) >= 600}
    assert not long, long
    assert sum(1 for _ in open(os.path.join(HERE, "README.md"))) <= 300


def test_nothing_points_outside_the_repository():
    outside = ["../sh", "ared"], ["paper-", "notes"]  # spelled in pieces, so this file does not match itself
    found = subprocess.run(["git", "grep", "-l", "-F", "-e", "".join(outside[0]), "-e", "".join(outside[1])],
                           cwd=HERE, capture_output=True, text=True).stdout
    assert found == "", found
