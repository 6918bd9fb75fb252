"""Measure the project's answer checker next to math-verify and mathruler on the same pairs (docs/answers.md).

    python -m tools.measure_answers [--mirror PATH] [--hostile]      # from the repository root

Rows: tests/answer_cases.py (the project's table) and, when --mirror points at a git snapshot of
github:huggingface/Math-Verify, the cases of its public test suite (read at run time by
tools/mathverify_suite.py; nothing of theirs is stored here). Prints agreement, false positives (expected 0,
said 1), false negatives, and time per call (median, worst) for each checker; --hostile adds the issue's
hostile inputs (each library call in a subprocess with a 60 s cap) and an off-main-thread call.

The libraries are optional: pip install math-verify==0.9.0 mathruler==0.1.0 (into a separate virtual
environment; the project does not need them). Each is put behind the project's extraction, as the issue
asks: the content of the one <answer> block, \\boxed{} unwrapped. math-verify runs with its defaults (signal
timeouts on, main thread); on its own suite it gets the options each of its tests passes.
Times are wall-clock on whatever machine runs this; a shared machine makes them noisy.
"""
import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import threading
import time

import rewards
from answer_checking.extract import unwrap_boxed

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load_cases():
    """tests/answer_cases.py's CASES, loaded by its path (tests/ is a folder of test files, not a package)."""
    spec = importlib.util.spec_from_file_location("answer_cases", os.path.join(ROOT, "tests", "answer_cases.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.CASES


CASES = _load_cases()

HOSTILE = {
    "100,000 digits": "9" * 100_000,
    "300 nested \\frac": "\\frac{1}{" * 300 + "2" + "}" * 300,
    "9^{9^{9^{9}}}": "9^{9^{9^{9}}}",
    "10^{100000}": "10^{100000}",
    "5,000 open parentheses": "(" * 5000,
    "50 KB of prose with numbers": ("The value is 3 and then 4.5 plus $x=7$ so 12. " * 1200)[:50_000],
}


def project(gold, answer, options):
    return rewards.accuracy_reward(f"<think></think><answer>{answer}</answer>", gold, **options)


def _math_verify():
    try:
        from math_verify import parse, verify
    except ImportError:
        return None

    def read(text):
        """As math-verify is fed in TRL/open-r1: a LaTeX answer in \\boxed{} (or $...$ where a box does not parse)."""
        text = unwrap_boxed(text)
        return parse(f"\\boxed{{{text}}}") or parse(f"${text}$") or parse(text)

    def check(gold, answer, options):
        return float(verify(read(gold), read(answer)))
    return check


def _mathruler():
    try:
        from mathruler.grader import grade_answer
    except ImportError:
        return None
    return lambda gold, answer, options: float(grade_answer(answer, unwrap_boxed(gold)))


def _mv_suite_math_verify(case):
    """math-verify as its own test calls it (match types, precision, strict, set relations)."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify
    o = case["options"]
    if o["call"] == "parse_verify":
        return float(verify(parse(case["gold"]), parse(case["pred"])))
    config = [LatexExtractionConfig(boxed_match_priority=0) if t == "latex" else ExprExtractionConfig()
              for t in o.get("match_types", ["latex", "expr"])]
    return float(verify(parse(case["gold"], config), parse(case["pred"], config),
                        float_rounding=o.get("precision", 6), strict=o.get("strict", True),
                        allow_set_relation_comp=o.get("allow_set_relation_comp", False)))


def score(name, check, rows):
    """rows: (gold, answer, expected, options). Prints agreement, FP, FN and time per call."""
    agree = fp = fn = errors = 0
    times, misses = [], []
    for gold, answer, expected, options in rows:
        t0 = time.perf_counter()
        try:
            got = check(gold, answer, options)
        except Exception:  # a library raising counts as a 0 verdict and is reported
            got, errors = 0.0, errors + 1
        times.append(time.perf_counter() - t0)
        agree += got == expected
        fp += got == 1 and expected == 0
        fn += got == 0 and expected == 1
        if got != expected:
            misses.append((gold, answer, expected))
    n = len(rows)
    print(f"  {name:<12} agreement {agree}/{n} = {100 * agree / n:5.1f}%   false positives {fp:3d}   "
          f"false negatives {fn:3d}   median {1e3 * statistics.median(times):7.3f} ms   "
          f"worst {1e3 * max(times):8.1f} ms" + (f"   raised {errors}" if errors else ""))
    return misses


def hostile(checkers):
    print("hostile inputs (as the answer, gold '1'): seconds per call")
    for label, text in HOSTILE.items():
        t0 = time.perf_counter()
        r = project("1", text, {})
        line = f"  {label:<30} project {time.perf_counter() - t0:8.4f} s (={r})"
        for name in checkers:
            line += f"   {name} {_in_subprocess(name, text)}"
        print(line)
    print("off the main thread (threading.Thread), answer 2\\sqrt{2} against \\sqrt{8}:")
    for name, check in [("project", project)] + [(n, c) for n, c in checkers.items()]:
        out = []

        def run():
            try:
                out.append(check("\\sqrt{8}", "2\\sqrt{2}", {}))
            except Exception as e:
                out.append(f"raised {type(e).__name__}: {e}")
        t = threading.Thread(target=run)
        t.start()
        t.join()
        print(f"  {name:<12} {out[0]}")


def _in_subprocess(name, text, cap=60):
    code = ("import sys,time; import tools.measure_answers as m; c={'math-verify':m._math_verify,"
            "'mathruler':m._mathruler}[%r](); t=time.perf_counter(); r=c('1', sys.stdin.read(), {}); "
            "print(f'{time.perf_counter()-t:.4f} s (={r})')") % name
    try:  # python -c imports from its working directory: the repository root
        p = subprocess.run([sys.executable, "-c", code], input=text, capture_output=True, text=True, timeout=cap,
                           cwd=ROOT)
        return p.stdout.strip() or ("error: " + (p.stderr.strip().splitlines() or ["?"])[-1][:60])
    except subprocess.TimeoutExpired:
        return f"> {cap} s (killed)"


def main():
    ap = argparse.ArgumentParser(prog="python -m tools.measure_answers", description=__doc__.splitlines()[0])
    ap.add_argument("--mirror", default=None,
                    help="git snapshot (bare or checkout) of github:huggingface/Math-Verify")
    ap.add_argument("--hostile", action="store_true")
    ap.add_argument("--show-misses", action="store_true")
    args = ap.parse_args()
    checkers = {n: c for n, c in (("math-verify", _math_verify()), ("mathruler", _mathruler())) if c}
    rows = [(g, a, e, o) for _, g, a, e, o in CASES]
    print(f"tests/answer_cases.py: {len(rows)} pairs, {sum(r[2] for r in rows)} correct answers")
    for name, check in [("project", project)] + list(checkers.items()):
        misses = score(name, check, rows)
        if args.show_misses:
            for m in misses:
                print("      miss:", m)
    if args.mirror and os.path.exists(args.mirror):
        from tools.mathverify_suite import load_cases
        cases = load_cases(args.mirror)
        rows = [(c["gold"], c["pred"], c["expected"], c) for c in cases]
        print(f"Math-Verify's test suite: {len(rows)} cases, {sum(r[2] for r in rows)} expected 1")
        suite = {"project": lambda g, a, case: project(g, a, {})}
        if "math-verify" in checkers:
            suite["math-verify"] = lambda g, a, case: _mv_suite_math_verify(case)
        if "mathruler" in checkers:
            from mathruler.grader import extract_boxed_content, grade_answer

            def boxed_or_all(s):
                b = extract_boxed_content(s)
                return s if b == "None" else b
            suite["mathruler"] = lambda g, a, o: float(grade_answer(boxed_or_all(a), boxed_or_all(g)))
        for name, check in suite.items():
            misses = score(name, check, rows)
            if args.show_misses:
                for m in misses:
                    print("      miss:", tuple(x[-80:] if isinstance(x, str) else x for x in m))
    if args.hostile:
        hostile(checkers)


if __name__ == "__main__":
    main()
