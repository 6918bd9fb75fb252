"""Bounded equivalence of two math answers: numeric evaluation of parsed expressions, no simplify.

answer_checking/grade.py decides *what* to compare (the answer, its letter, list items, the value after
"x ="); this module decides whether two single expressions or relations are equal, the way careful graders do
(Math-Verify, mathruler/PRM800K): parse both (answer_checking/latex_parse.py), then compare values. Instead of
symbolic simplification, which can run for minutes (sympy's simplify has no time bound), both sides are
*evaluated*: exactly with Fractions while only + - * / and small powers occur, otherwise as complex floats, at a
few fixed points when they have variables. Equal values at every point means equal expressions (2\\sqrt{2} = \\sqrt{8},
4\\pi+6\\sqrt{3} = 6\\sqrt{3}+4\\pi, \\tan^2 y+1 = \\sec^2 y); two different real answers agreeing at all
the points by chance does not happen.

Bounds, without signals or threads (so it works off the main thread and under torchrun): latex_parse.screen
refuses long or deeply nested input before any parsing; every power, factorial and big integer is
size-checked before it is computed (9^{9^{9^{9}}} and 10^{100000} are refused in microseconds, not
evaluated). Anything refused or unparseable returns None, and the caller compares text.
"""
import cmath
import math
import re
from fractions import Fraction

from answer_checking.latex_parse import FUNCTIONS, Refused, clean, parse, screen, split_relation

MAX_BITS = 4096       # exact integers/fractions larger than this are not computed
MAX_LOG = 700.0       # |result| must stay below e^700 (float range)
MAX_FACTORIAL = 300
REL_TOL = 1e-9        # exact answers: equal up to float rounding
APPROX_TOL = 1e-4     # an expression with decimals against an exact one: 0.5\\pi+1 = \\frac{\\pi}{2}+1.0000
# points at which expressions with variables are compared: rationals (exact polynomial arithmetic),
# of both signs and away from 0 and 1 so |x| != x, x^2 != x, 1/x stays finite
_POINTS = (Fraction(7, 5), Fraction(-13, 6), Fraction(23, 7), Fraction(-3, 11), Fraction(17, 4))
_FUNCS = {"sin": cmath.sin, "cos": cmath.cos, "tan": cmath.tan, "sec": lambda z: 1 / cmath.cos(z),
          "csc": lambda z: 1 / cmath.sin(z), "cot": lambda z: 1 / cmath.tan(z), "arcsin": cmath.asin,
          "arccos": cmath.acos, "arctan": cmath.atan, "sinh": cmath.sinh, "cosh": cmath.cosh,
          "tanh": cmath.tanh, "ln": cmath.log, "log": cmath.log, "exp": cmath.exp, "lg": cmath.log10}
assert set(_FUNCS) == FUNCTIONS  # the parser knows exactly the functions evaluated here


# ---------------------------------------------------------------- evaluation with size checks

def _exact(v) -> bool:
    return isinstance(v, Fraction)


def _small(v: Fraction) -> Fraction | complex:
    """Keep a Fraction while it is small; past MAX_BITS it becomes a float (or is refused if out of range)."""
    if v.numerator.bit_length() <= MAX_BITS and v.denominator.bit_length() <= MAX_BITS:
        return v
    return _to_complex(v)


def _to_complex(v) -> complex:
    if isinstance(v, complex):
        return v
    try:
        return complex(float(v))
    except OverflowError:
        raise Refused("too large") from None


def _power(b, e):
    if _exact(b) and _exact(e) and e.denominator == 1:
        n = e.numerator
        size = max(b.numerator.bit_length(), b.denominator.bit_length()) * abs(n)
        if b == 0 and n < 0:
            raise Refused("0 to a negative power")
        if size <= MAX_BITS:
            return b ** n
    if _exact(e) and _exact(b) and b > 0 and 1 < e.denominator <= 64:
        r = [_int_root(b.numerator, e.denominator), _int_root(b.denominator, e.denominator)]
        if None not in r:
            return _power(Fraction(r[0], r[1]), Fraction(e.numerator))  # 8^{2/3} = 4 exactly
    if _exact(e) and _exact(b) and b < 0 and e.denominator % 2 == 1:
        sign = -1 if e.numerator % 2 else 1  # real odd roots: (-8)^(1/3) = -2, (-8)^(2/3) = 4
        return sign * _power(-b, e)
    b, e = _to_complex(b), _to_complex(e)
    if b == 0:
        if e.real > 0:
            return complex(0)
        raise Refused("0 to a non-positive power")
    magnitude = e.real * math.log(abs(b)) - e.imag * cmath.phase(b)
    if magnitude > MAX_LOG:
        raise Refused("too large")  # 9^{9^{9^{9}}}, 10^{100000}: refused before computing
    return b ** e


def _root(index, x):
    if _exact(index) and index.denominator == 1 and index > 0 and _exact(x) and x >= 0:
        n = index.numerator
        r = [_int_root(x.numerator, n), _int_root(x.denominator, n)]
        if None not in r:
            return Fraction(r[0], r[1])  # \sqrt{9/4} = 3/2 stays exact
    if _exact(index) and index == 0:
        raise Refused("0th root")
    return _power(x, 1 / index if _exact(index) else 1 / _to_complex(index))


def _int_root(n: int, k: int) -> int | None:
    if n.bit_length() > MAX_BITS or k > 64:
        return None
    r = round(n ** (1.0 / k)) if n < 2 ** 1000 else math.isqrt(n) if k == 2 else None
    if r is None:
        return None
    for c in (r - 1, r, r + 1):
        if c >= 0 and c ** k == n:
            return c
    return None


def _factorial(x):
    if not (_exact(x) and x.denominator == 1 and 0 <= x <= MAX_FACTORIAL):
        raise Refused("factorial of a non-integer or a large number")
    return _small(Fraction(math.factorial(int(x))))


def evaluate(node, env: dict):
    """Value of a tree: a Fraction while exact, else a complex; Refused if undefined or too large."""
    kind = node[0]
    if kind == "num":
        return Fraction(node[1])
    if kind == "var":
        if node[1] == "e":
            return complex(math.e)  # e is Euler's number in answers (1 - 1/e)
        return env[node[1]]
    if kind == "const":
        return complex(math.pi) if node[1] == "pi" else complex(math.inf)
    if kind == "neg":
        return -evaluate(node[1], env)
    if kind == "fn":
        try:
            return _FUNCS[node[1]](_to_complex(evaluate(node[2], env)))
        except (ValueError, ZeroDivisionError, OverflowError):
            raise Refused(f"{node[1]} undefined") from None
    if kind == "fact":
        return _factorial(evaluate(node[1], env))
    if kind == "abs":
        v = evaluate(node[1], env)
        return abs(v) if _exact(v) else complex(abs(v))
    a, b = evaluate(node[1], env), evaluate(node[2], env)
    try:
        if kind == "add":
            v = a + b
        elif kind == "sub":
            v = a - b
        elif kind == "mul":
            v = a * b
        elif kind == "div":
            v = a / b
        elif kind == "pow":
            v = _power(a, b)
        elif kind == "root":
            v = _root(a, b)
        else:  # binom
            if not all(_exact(x) and x.denominator == 1 and 0 <= x <= MAX_FACTORIAL for x in (a, b)):
                raise Refused("binomial of non-integers")
            v = Fraction(math.comb(int(a), int(b)))
    except ZeroDivisionError:
        raise Refused("division by zero") from None
    except OverflowError:
        raise Refused("too large") from None
    return _small(v) if _exact(v) else v


def variables(node) -> set:
    """Free variable names of a tree (e is a constant)."""
    if node[0] == "var":
        return set() if node[1] == "e" else {node[1]}
    return set().union(*(variables(c) for c in node[1:] if isinstance(c, tuple)))


def _has_decimal(text: str) -> bool:
    return re.search(r"\d\.\d|(?<!\d)\.\d", text) is not None


def _terminating(v) -> bool:
    """A Fraction with a finite decimal expansion (denominator 2^a 5^b): 3/4 yes, 1/3 no."""
    if not _exact(v):
        return False
    d = v.denominator
    for p in (2, 5):
        while d % p == 0:
            d //= p
    return d == 1


def _close(a, b, tol: float) -> bool:
    if _exact(a) and _exact(b):
        if a == b:
            return True
        if tol == REL_TOL:
            return False  # exact against exact: no tolerance
    a, b = _to_complex(a), _to_complex(b)
    if math.isinf(a.real) or math.isinf(b.real):
        return a.real == b.real and a.imag == b.imag == 0
    if math.isnan(abs(a)) or math.isnan(abs(b)):
        return False
    return abs(a - b) <= tol * max(abs(a), abs(b)) + 1e-12


_LITERAL = re.compile(r"[-+]?(\d*)\.(\d+)")


def _decimal_matches(literal: str, exact, is_answer: bool) -> bool | None:
    """A written decimal against an exact value that has no finite decimal expansion (1/3, \\sqrt{3}, \\pi).
    The answer's decimal must have >= 4 significant digits and agree to its last digit (rounded or cut):
    0.3333 = 1/3 and 2.828 = 2\\sqrt{2}, but 0.333 != 1/3 and 1.73 != \\sqrt{3} (near misses stay wrong).
    A gold's decimal (>= 3 significant digits) is the dataset's rounding of the exact answer: 40.84 accepts
    13\\pi, 6.28 accepts 2\\pi, 0.3 does not accept 1/3."""
    m = _LITERAL.fullmatch(literal.strip())
    if m is None:
        return None
    places = len(m.group(2))
    significant = len((m.group(1) + m.group(2)).lstrip("0"))
    x = _to_complex(exact)
    if abs(x.imag) > 1e-12 or math.isinf(x.real):
        return False
    error = abs(x.real - float(Fraction(literal.strip())))
    if is_answer:
        return significant >= 4 and error < 10.0 ** -places * (1 + 1e-9)
    return significant >= 3 and error <= 0.5 * 10.0 ** -places * (1 + 1e-9)  # 0.3 is not 1/3


def _constants_equal(a_text: str, b_text: str, va, vb) -> bool:
    """Equality of two constant answers (a: the answer, b: the gold), with the rounding rules of docs/answers.md:
    exact against exact must be equal (10000 != 10001, 1e-9 for floats); two written decimals must be equal
    (51.045 != 51.04); a decimal against an exact value with a finite expansion too (0.5001 != 1/2); a decimal
    against 1/3 or \\sqrt{3}: _decimal_matches; a decimal inside a larger expression: 1e-4 relative."""
    da, db = _has_decimal(a_text), _has_decimal(b_text)
    if da == db:
        return _close(va, vb, REL_TOL)
    exact = vb if da else va
    if _terminating(exact) and _exact(va) and _exact(vb):
        return va == vb
    matched = _decimal_matches(a_text if da else b_text, exact, is_answer=da)
    return _close(va, vb, APPROX_TOL) if matched is None else matched


def _values(tree, names, env_index):
    env = {n: _POINTS[(env_index + k) % len(_POINTS)] for k, n in enumerate(names)}
    return evaluate(tree, env)


def expressions_equal(a: str, b: str, precision: int | None = None) -> bool | None:
    """a: the answer, b: the gold. True/False if both parse as expressions and are equal/unequal by value;
    None if either does not parse or is refused (the caller then compares text). precision: round both to
    that many decimals first (MathVista's `precision` field)."""
    if not (screen(a) and screen(b)):
        return None
    try:
        ta, tb = parse(a), parse(b)
        names = sorted(variables(ta) | variables(tb))
        if variables(ta) != variables(tb):
            return False  # strict: f(x) is not f(y)
        if not names:
            va, vb = evaluate(ta, {}), evaluate(tb, {})
            if precision is not None:
                return _rounded(va, precision) == _rounded(vb, precision)
            return _constants_equal(a, b, va, vb)
        tol = APPROX_TOL if _has_decimal(a) != _has_decimal(b) else REL_TOL
        compared = 0
        for k in range(3):
            try:
                va, vb = _values(ta, names, k), _values(tb, names, k)
            except Refused:
                continue
            if not _close(va, vb, tol):
                return False
            compared += 1
        return True if compared >= 2 else None
    except (Refused, KeyError, RecursionError, TypeError, ValueError, OverflowError, ZeroDivisionError):
        return None


def _rounded(v, digits: int):
    if _exact(v):
        return round(v, digits)
    v = _to_complex(v)
    return None if abs(v.imag) > 1e-12 else round(Fraction(v.real), digits)


# ---------------------------------------------------------------- relations: equations and inequalities

def _oriented(rel):
    """(f, op) with f = lhs - rhs and op one of = != < <=: 'a > b' becomes 'b - a < 0'."""
    lhs, op, rhs = rel
    if op in (">", ">="):
        return ("sub", parse(rhs), parse(lhs)), op.replace(">", "<")
    return ("sub", parse(lhs), parse(rhs)), op


def relations_equal(a: str, b: str) -> bool | None:
    """Equations/inequalities with the same solutions in either orientation: f1 = c * f2 for a constant c
    (positive for inequalities). (x+3)^2+(y+3)^2=9 = x^2+y^2+6x+6y+9=0; x>5 = 5<x; x<5 != x>5.
    None if either is not one parseable relation."""
    a, b = clean(a), clean(b)
    ra, rb = split_relation(a), split_relation(b)
    if ra is None or rb is None or not (screen(a) and screen(b)):
        return None
    try:
        (fa, opa), (fb, opb) = _oriented(ra), _oriented(rb)
        if opa != opb or variables(fa) != variables(fb):
            return False
        names = sorted(variables(fa))
        ratios = []
        for k in range(len(_POINTS)):
            try:
                va, vb = _values(fa, names, k), _values(fb, names, k)
            except Refused:
                continue
            if _close(vb, Fraction(0), REL_TOL):
                if not _close(va, Fraction(0), REL_TOL):
                    return False
                continue
            ratios.append(_to_complex(va) / _to_complex(vb))
        if len(ratios) < 2 or abs(ratios[0]) < 1e-12:
            return None if len(ratios) < 2 else False
        if opa in ("<", "<=") and not (ratios[0].real > 0 and abs(ratios[0].imag) < 1e-12):
            return False
        return all(_close(r, ratios[0], REL_TOL) for r in ratios[1:])
    except (Refused, KeyError, RecursionError, TypeError, ValueError, OverflowError, ZeroDivisionError):
        return None
