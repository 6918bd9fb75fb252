"""The machinery behind `python -m classroom grade`: the project's own tests, run against another folder's code.

One pytest session per graded folder, in a forked child, so torch and transformers are imported once for all
folders (`preload`); a pytest plugin (`Reporter`) appends one JSON line per test event as it happens, so a child
killed for taking too long still leaves what it finished (`read_events`); a failure becomes one line naming the
check and, where it can, the file and line in the graded code (`one_line`). kit.py turns the events into scores.

The graded folder's code is what the tests see, never this checkout's: its top-level modules AND its packages
(folders with __init__.py: machinery, data_loading, ...) are the project's own (`project_modules`); the parent
never imports them (`preload`), and the child drops every one of them, packages with all their submodules, from
sys.modules and puts the graded folder first on sys.path, without this checkout (`run_tests`).
Standard library and pytest only.
"""

import ast
import gc
import json
import os
import signal
import subprocess
import sys
import time

# the grading checkout's root (above classroom/, where fast_grpo.py is): its tests/ are the ones that count
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FORK = hasattr(os, "fork")  # else each folder's tests run in a `python -m classroom run-tests` subprocess


class Reporter:
    """pytest plugin: run only the wanted tests, and append one JSON line per event to `path` as it happens
    (a child that is killed for taking too long still leaves what it finished)."""

    def __init__(self, wanted, path, folder, check_timeout):
        self.wanted, self.file, self.folder = set(wanted), open(path, "a", buffering=1), folder
        self.check_timeout = check_timeout if hasattr(signal, "setitimer") else None  # no SIGALRM on Windows

    def _write(self, **record):
        self.file.write(json.dumps(record) + "\n")

    def pytest_collection_modifyitems(self, config, items):
        keep = [item for item in items if item.nodeid.split("[")[0] in self.wanted]
        dropped = [item for item in items if item.nodeid.split("[")[0] not in self.wanted]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
        items[:] = keep

    def pytest_collectreport(self, report):
        if report.failed:
            self._write(collect_error=report.nodeid, message=one_line(report.longrepr, self.folder))

    def pytest_runtest_logstart(self, nodeid, location):
        self._write(started=nodeid)
        if self.check_timeout:  # an endless loop fails its own check, not every check after it
            signal.setitimer(signal.ITIMER_REAL, self.check_timeout)

    def pytest_runtest_logfinish(self, nodeid, location):
        if self.check_timeout:
            signal.setitimer(signal.ITIMER_REAL, 0)

    def pytest_runtest_logreport(self, report):
        if report.failed or report.skipped or report.when == "call":
            self._write(test=report.nodeid, outcome=report.outcome, when=report.when,
                        message=one_line(report.longrepr, self.folder) if report.longrepr else "")


def one_line(longrepr, folder):
    """What went wrong in a pytest failure, in one line: the crash message (an assertion's first lines joined),
    else the last 'E' line; with the place in the graded folder's code where it happened, if it did."""
    if isinstance(longrepr, tuple):  # skips: (file, line, reason)
        return str(longrepr[-1])
    text = str(longrepr)
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None and crash.message.strip():
        lines = [line.strip() for line in crash.message.splitlines() if line.strip()]
        message = lines[0] if not lines[0].endswith(":") or len(lines) == 1 else f"{lines[0]} {lines[1]}"
    else:
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        errors = [line[1:].strip() for line in lines if line.startswith("E ")]
        message = (errors or lines or ["(no message)"])[-1]
    # places look like 'File "/hw/fast_grpo.py", line 216' (syntax errors) or '/hw/fast_grpo.py:216: in f'
    folder = os.path.realpath(folder) + os.sep
    places = []
    for line in text.splitlines():
        line = line.strip()
        line = line[1:].strip() if line.startswith("E ") else line
        if line.startswith('File "') and '", line ' in line:
            path, _, number = line[len('File "'):].partition('", line ')
            places.append((path, number.split(",")[0]))
        elif ".py:" in line:  # '/hw/fast_grpo.py:216: in grpo_loss', 'fast_grpo.py:218: RuntimeError'
            path, _, rest = line.partition(".py:")
            if rest.split(":")[0].isdigit():
                places.append((path + ".py", rest.split(":")[0]))
    # not the tests' lines, nor the grader's own (classroom/, in this checkout or copied into the graded folder)
    not_graded = tuple(os.path.realpath(p) + os.sep for p in (os.path.join(HERE, "tests"),
                                                              os.path.join(HERE, "classroom"),
                                                              os.path.join(folder, "classroom")))
    places = [(os.path.normpath(os.path.join(folder, path)), number) for path, number in places]
    places = [(path, number) for path, number in places if path.startswith(folder)
              and not path.startswith(not_graded) and not os.path.realpath(path).startswith(not_graded)]
    message = message if len(message) <= 100 else message[:97] + "..."
    if places:
        path, number = places[-1]
        message += f" ({os.path.relpath(path, folder)}:{number})"
    return message


def _is_package(path):
    return os.path.isfile(os.path.join(path, "__init__.py"))


def project_modules(folder):
    """The names a folder's code may call its own: its top-level modules (*.py files) and its packages (folders
    with an __init__.py: machinery, data_loading, ...). Each package stands for all its submodules."""
    names = set()
    for name in os.listdir(folder):
        if name.endswith(".py") and name[:-3].isidentifier():
            names.add(name[:-3])
        elif name.isidentifier() and _is_package(os.path.join(folder, name)):
            names.add(name)
    return names


def is_local(module, local):
    """Whether the dotted `module` is one of the names in `local` or inside one of its packages."""
    return module.split(".")[0] in local


def local_modules(folder):
    """What the graded code and the tests call their own: the graded folder's modules and packages, this
    checkout's (never to be imported in the parent: a child must import the graded folder's) and the tests'."""
    tests = {name[:-3] for _, _, names in os.walk(os.path.join(HERE, "tests")) for name in names
             if name.endswith(".py")}  # tests/ and its folders: test modules are imported by their file names
    return project_modules(folder) | project_modules(HERE) | tests


def _source_files(folder):
    """The graded folder's top-level *.py files and the modules of its packages, sorted."""
    files = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if name.endswith(".py"):
            files.append(path)
        elif name.isidentifier() and _is_package(path):
            for root, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if _is_package(os.path.join(root, d)))
                files.extend(os.path.join(root, n) for n in sorted(names) if n.endswith(".py"))
    return files


def third_party_imports(folder, test_files):
    """(module, names) of each import at the top of the graded folder's code and of `test_files` that is not
    the project's own (`local_modules`): what `preload` imports."""
    local = local_modules(folder) | {"__future__"}
    found = []
    for path in _source_files(folder) + list(test_files):
        try:
            with open(path) as f:
                tree = ast.parse(f.read())
        except (OSError, SyntaxError, ValueError):
            continue  # the child will report it
        for node in tree.body:
            if isinstance(node, ast.Import):
                statements = [(alias.name, ()) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                statements = [(node.module, tuple(alias.name for alias in node.names))]
            else:
                continue  # relative imports are inside a package: local
            found.extend((module, names) for module, names in statements
                         if not is_local(module, local) and (module, names) not in found)
    return found


def preload(folder, test_files):
    """Import, in this parent process, the third-party modules the graded code and the tests import at the
    top of their files (torch, transformers, ...), so each forked child starts warm. Never the project's own
    modules or packages: those a child must import from its graded folder."""
    for module, names in third_party_imports(folder, test_files):
        try:
            imported = __import__(module, fromlist=list(names) or ["_"])
            for name in names:  # `from transformers import X` loads X's submodule lazily
                getattr(imported, name, None)
        except Exception:  # noqa: BLE001 -- a missing optional module is the child's to report
            pass
    gc.collect()
    gc.freeze()  # the children's garbage collections skip everything imported so far


def run_tests(folder, node_ids, events_path, log_path, check_timeout):
    """In the child: one pytest session over `node_ids` (this project's tests) importing `folder`'s code."""
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(log, 1)
    os.dup2(log, 2)
    folder = os.path.realpath(folder)
    os.chdir(folder)
    here = os.path.realpath(HERE)
    # the graded folder's modules, never this checkout's: drop it (`python -m classroom` put it there as the current
    # directory), the current directory and any other fast-grpo folder
    sys.path[:] = [folder] + [p for p in sys.path if p not in ("", ".") and os.path.realpath(p) != here
                              and not os.path.isfile(os.path.join(p, "fast_grpo.py"))]
    local = local_modules(folder)
    for name in [name for name in sys.modules if is_local(name, local)]:
        del sys.modules[name]  # imported by whoever called grade() (packages with every submodule): import afresh
    sys.dont_write_bytecode = True  # an edited file must never meet a stale .pyc from the same second
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # installed plugins (hypothesis, ...) cost seconds a folder
    import pytest

    ini = os.path.join(os.path.dirname(events_path), "pytest.ini")
    with open(ini, "w") as f:
        f.write("[pytest]\n")  # not the project's ini: its pythonpath would put the project on sys.path
    files = sorted({os.path.join(HERE, node.split("::")[0]) for node in node_ids})
    reporter = Reporter(node_ids, events_path, folder, check_timeout)
    if reporter.check_timeout:
        def too_slow(signum, frame):
            pytest.fail(f"took longer than {check_timeout:g} s (an endless loop?)")

        signal.signal(signal.SIGALRM, too_slow)
    return pytest.main(["-q", "-p", "no:cacheprovider", "-c", ini, "--rootdir", HERE,
                        "--continue-on-collection-errors", *files], plugins=[reporter])


class Child:
    """run_tests for one folder in a forked child (where there is no fork, or `fork` is False: in a
    `python -m classroom run-tests` subprocess started in this checkout, whose classroom package it runs)."""

    def __init__(self, folder, node_ids, scratch, check_timeout, deadline, fork=None):
        scratch = os.path.abspath(scratch)
        self.events_path, self.log_path = os.path.join(scratch, "events.jsonl"), os.path.join(scratch, "pytest.log")
        self.deadline, self.timed_out = time.monotonic() + deadline, False
        if not (FORK if fork is None else fork):
            environment = {k: v for k, v in os.environ.items() if k != "PYTHONSAFEPATH"}  # keep the cwd on sys.path
            self.process = subprocess.Popen([sys.executable, "-m", "classroom", "run-tests", os.path.abspath(folder),
                                             self.events_path, self.log_path, str(check_timeout), *node_ids],
                                            cwd=HERE, env=environment)
            return
        self.process, self.pid = None, os.fork()
        if self.pid == 0:  # the child: never return into the parent's code
            code = 1
            try:
                run_tests(folder, node_ids, self.events_path, self.log_path, check_timeout)
                code = 0
            except BaseException:  # noqa: BLE001 -- the parent reads the log
                import traceback

                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)

    def done(self):
        """True once the child has ended; kills it when it is past its deadline (an endless loop)."""
        if self.process is not None:
            finished = self.process.poll() is not None
        else:
            finished = os.waitpid(self.pid, os.WNOHANG)[0] != 0
        if not finished and time.monotonic() > self.deadline:
            self.timed_out = True
            if self.process is not None:
                self.process.kill()
                self.process.wait()
            else:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            return True
        return finished


def read_events(path):
    """The JSON lines a child's Reporter wrote, those a kill cut short left out."""
    events = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                try:
                    events.append(json.loads(line))
                except ValueError:
                    pass  # a line cut by a kill
    return events
