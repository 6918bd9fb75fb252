"""Read the (gold, prediction, expected) cases out of Math-Verify's public test files, at run time.

Math-Verify (github:huggingface/Math-Verify, MIT) keeps its regression cases in pytest parametrize lists
under tests/. This script reads those files from a local git snapshot of that repository and returns the
cases as plain dicts; nothing of theirs is copied into this project. Used by tools/measure_answers.py.

    python -m tools.mathverify_suite /path/to/Math-Verify.git     # prints how many cases each file has

The snapshot may be a bare git directory (read with `git show HEAD:tests/...`) or a checkout.
"""
import argparse
import ast
import math
import os
import subprocess

# files whose parametrize lists are (gold, pred, expected)-like comparisons; the others test configs/timeouts
SUITE_FILES = ("test_all.py", "test_boxed.py", "test_numina_cases.py", "test_open_thoughts.py",
               "test_strict.py", "test_yujianll.py")


def read_test_file(repo: str, name: str) -> str:
    """The text of tests/NAME in a checkout or a bare git directory."""
    path = os.path.join(repo, "tests", name)
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            return f.read()
    return subprocess.run(["git", "--git-dir", repo, "show", f"HEAD:tests/{name}"], check=True,
                          capture_output=True, text=True).stdout


def _value(node):
    """A literal, or the one f-string their suite has (f"{math.sqrt(17):.15f}"), evaluated with math only."""
    try:
        return ast.literal_eval(node)
    except ValueError:
        return eval(compile(ast.Expression(node), "<case>", "eval"), {"__builtins__": {}, "math": math})


def _call_options(func: ast.FunctionDef) -> dict:
    """How the test calls Math-Verify: compare_strings' keywords (a name means: this case's argument)."""
    for node in ast.walk(func):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "compare_strings":
            opts = {}
            for kw in node.keywords:
                opts[kw.arg] = ("arg", kw.value.id) if isinstance(kw.value, ast.Name) else _value(kw.value)
            return {"call": "compare_strings", **opts}
    return {"call": "parse_verify"}  # parse(gold), parse(pred), verify with its defaults


def cases_in(source: str, file: str) -> list[dict]:
    """Every parametrized case that has a gold, a prediction and an expected 0/1."""
    out = []
    for func in ast.walk(ast.parse(source)):
        if not isinstance(func, ast.FunctionDef):
            continue
        for dec in func.decorator_list:
            if not (isinstance(dec, ast.Call) and getattr(dec.func, "attr", "") == "parametrize"):
                continue
            names = [n.strip() for n in _value(dec.args[0]).split(",")]
            if not {"gold", "pred"} <= set(names) or not ({"expected", "result"} & set(names)):
                continue
            opts = _call_options(func)
            for row in dec.args[1].elts:
                vals = dict(zip(names, (_value(e) for e in row.elts)))
                kwargs = {k: (vals[v[1]] if isinstance(v, tuple) else v) for k, v in opts.items()}
                out.append({"file": file, "test": func.name, "gold": vals["gold"], "pred": vals["pred"],
                            "expected": int(vals.get("expected", vals.get("result"))), "options": kwargs})
    return out


def load_cases(repo: str) -> list[dict]:
    """All comparison cases of Math-Verify's suite, in file order."""
    return [c for name in SUITE_FILES for c in cases_in(read_test_file(repo, name), name)]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m tools.mathverify_suite", description=__doc__.splitlines()[0])
    parser.add_argument("repo", metavar="PATH", help="a checkout or bare git directory of Math-Verify")
    cases = load_cases(parser.parse_args().repo)
    for name in SUITE_FILES:
        print(name, sum(c["file"] == name for c in cases))
    print("total", len(cases), "expected 1:", sum(c["expected"] for c in cases))
