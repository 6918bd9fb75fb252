"""A small, bounded LaTeX parser for answers: text -> expression tree (nested tuples), or Refused.

answer_checking/math_equivalence.py evaluates the trees; answer_checking/grade.py uses `relation_parts`. It
reads LaTeX as models and datasets write it: any spacing, \\frac/\\dfrac/\\tfrac with braces or as \\frac73,
\\sqrt and \\sqrt[n], \\left/\\right, \\cdot/\\times, Unicode signs, implicit multiplication (2x, 4\\pi,
x(x+1)), trig and log functions, factorials, \\binom, |x|, subscripted names. Bounds: `screen` refuses long or
deeply nested text before any parsing, and the recursive descent has a depth cap, so no input makes it slow or
exhausts the stack.
"""
import functools
import re

MAX_LEN = 300         # longer expressions are not parsed (300 nested \frac is 1,800+ characters)
MAX_DEPTH = 20        # brackets/braces nested deeper than this are not parsed
MAX_DIGITS = 40       # a longer digit run is not a number we evaluate (100,000 digits: text compare only)
MAX_POWERS = 8        # '^' signs in one expression


_GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta", "theta", "vartheta",
          "iota", "kappa", "lambda", "mu", "nu", "xi", "rho", "sigma", "tau", "upsilon", "phi", "varphi",
          "chi", "psi", "omega", "Gamma", "Delta", "Theta", "Lambda", "Xi", "Sigma", "Phi", "Psi", "Omega"}
_SPACING = re.compile(r"\\(?:left|right|bigl|bigr|Bigl|Bigr|big|Big|displaystyle|textstyle)(?![a-zA-Z])|"
                      r"\\[,;:! ]|\\q?quad|~")
_TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d*)?|\.\d+)|\\([a-zA-Z]+)|([a-zA-Z])|(<=|>=|!=|[-+*/^_(){}\[\]|!=<>]))")
_RELATIONS = {"=": "=", "<": "<", ">": ">", "<=": "<=", ">=": ">=", "!=": "!=", "\\le": "<=", "\\leq": "<=",
              "\\ge": ">=", "\\geq": ">=", "\\lt": "<", "\\gt": ">", "\\neq": "!=", "\\ne": "!=",
              "\\leqslant": "<=", "\\geqslant": ">="}
FUNCTIONS = {"sin", "cos", "tan", "sec", "csc", "cot", "arcsin", "arccos", "arctan", "sinh", "cosh",
             "tanh", "ln", "log", "exp", "lg"}
_REL_SPLIT = re.compile(r"<=|>=|!=|=|<|>|\\(?:leqslant|geqslant|leq|geq|neq|le|ge|lt|gt|ne)(?![a-zA-Z])")


class Refused(Exception):
    """Input we do not parse or evaluate: too large, malformed, or undefined (1/0)."""


def clean(s: str) -> str:
    """LaTeX spelling differences removed: spacing commands, \\left/\\right, frac variants, operator words,
    Unicode signs. The result is still LaTeX, just one spelling of it."""
    s = _SPACING.sub(" ", s)
    for a, b in (("\\dfrac", "\\frac"), ("\\tfrac", "\\frac"), ("\\cfrac", "\\frac"), ("\\cdot", "*"),
                 ("\\times", "*"), ("\\div", "/"), ("×", "*"), ("·", "*"), ("∙", "*"), ("÷", "/"),
                 ("−", "-"), ("–", "-"), ("√", "\\sqrt"), ("π", "\\pi "), ("∞", "\\infty "), ("≤", "<="),
                 ("≥", ">="), ("≠", "!="), ("\\mathrm{e}", "e"), ("\\operatorname", ""), ("\\mathrm", ""),
                 ("\\mathbf", ""), ("\\mathit", "")):
        s = s.replace(a, b)
    return s.strip()


def screen(s: str) -> bool:
    """The input screen (docs/answers.md, "The rules, in order"): only short, shallow expressions with small numbers reach the parser."""
    if len(s) > MAX_LEN or s.count("^") > MAX_POWERS:
        return False
    depth = run = 0
    for ch in s:
        if ch in "([{":
            depth += 1
            if depth > MAX_DEPTH:
                return False
        elif ch in ")]}":
            depth -= 1
        run = run + 1 if ch.isdigit() else 0
        if run > MAX_DIGITS:
            return False
    return True


# ---------------------------------------------------------------- parser: LaTeX/plain text -> tuple tree

def _tokens(s: str) -> list:
    out, pos = [], 0
    while pos < len(s):
        if s[pos:].isspace():
            break
        m = _TOKEN.match(s, pos)
        if m is None:
            raise Refused(f"unexpected {s[pos]!r}")
        num, cmd, letter, sym = m.groups()
        out.append(("num", num) if num else ("cmd", cmd) if cmd else ("var", letter) if letter else ("sym", sym))
        pos = m.end()
    return out


class _Parser:
    """Recursive descent: expr = term (+|- term)*; term = unary ((*|/)? unary)*; unary = -unary | power;
    power = postfix (^ unary)?; postfix = atom !*. Implicit multiplication as in 2x, 4\\pi, x(x+1)."""

    def __init__(self, text: str):
        self.toks, self.i, self.depth = _tokens(text), 0, 0

    def peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else (None, None)

    def take(self, kind=None, value=None):
        tok = self.peek()
        if tok[0] is None or (kind and tok[0] != kind) or (value and tok[1] != value):
            raise Refused(f"expected {value or kind}, got {tok[1]!r}")
        self.i += 1
        return tok

    def enter(self):
        self.depth += 1
        if self.depth > 2 * MAX_DEPTH:
            raise Refused("too deep")

    def parse(self):
        node = self.expr()
        if self.peek()[0] is not None:
            raise Refused(f"trailing {self.peek()[1]!r}")
        return node

    def expr(self):
        self.enter()
        node = self.term()
        while self.peek() in (("sym", "+"), ("sym", "-")):
            op = self.take()[1]
            node = ("add" if op == "+" else "sub", node, self.term())
        self.depth -= 1
        return node

    def _starts_atom(self):
        kind, val = self.peek()
        if kind in ("num", "var"):
            return True
        if kind == "cmd":
            return val in ("frac", "sqrt", "pi", "infty", "binom") or val in FUNCTIONS or val in _GREEK
        return kind == "sym" and val in "({["

    def term(self):
        node = self.unary()
        while True:
            if self.peek() in (("sym", "*"), ("sym", "/")):
                op = self.take()[1]
                node = ("mul" if op == "*" else "div", node, self.unary())
            elif self._starts_atom():
                if self.peek()[0] == "num" and self.toks[self.i - 1][0] == "num":
                    raise Refused("two numbers in a row")  # "2 3" is not 6
                node = ("mul", node, self.power())
            else:
                return node

    def unary(self):
        if self.peek() == ("sym", "-"):
            self.take()
            return ("neg", self.unary())
        if self.peek() == ("sym", "+"):
            self.take()
            return self.unary()
        return self.power()

    def power(self):
        node = self.postfix()
        if self.peek() == ("sym", "^"):
            self.take()
            node = ("pow", node, self.exponent())
        return node

    def exponent(self):
        if self.peek() == ("sym", "-"):
            self.take()
            return ("neg", self.exponent())
        return self.power() if self.peek() != ("sym", "{") else self.group()

    def postfix(self):
        node = self.atom()
        while self.peek() == ("sym", "!"):
            self.take()
            node = ("fact", node)
        return node

    def group(self):
        """{...}, (...) or [...] around an expression."""
        close = {"{": "}", "(": ")", "[": "]"}[self.take("sym")[1]]
        node = self.expr()
        self.take("sym", close)
        return node

    def operand(self):
        """A \\frac/\\sqrt argument: a braced group, or one character as LaTeX reads \\frac12 and \\sqrt3."""
        kind, val = self.peek()
        if (kind, val) == ("sym", "{"):
            return self.group()
        if kind == "num" and len(val) > 1:
            self.toks[self.i] = ("num", val[1:])
            return ("num", val[0])
        return self.atom()

    def atom(self):
        self.enter()
        kind, val = self.peek()
        if kind == "num":
            self.take()
            node = ("num", val)
        elif kind == "var":
            self.take()
            node = ("var", val + self.subscript())
        elif kind == "sym" and val in "({[":
            node = self.group()
        elif (kind, val) == ("sym", "|"):
            self.take()
            node = ("abs", self.expr())
            self.take("sym", "|")
        elif kind == "cmd":
            node = self.command()
        else:
            raise Refused(f"unexpected {val!r}")
        self.depth -= 1
        return node

    def subscript(self) -> str:
        if self.peek() != ("sym", "_"):
            return ""
        self.take()
        start = self.i
        self.operand()  # parsed only to find its end; the subscript is part of the name
        return "_" + "".join(str(t[1]) for t in self.toks[start:self.i])

    def command(self):
        name = self.take("cmd")[1]
        if name == "frac":
            return ("div", self.operand(), self.operand())
        if name == "binom":
            return ("binom", self.operand(), self.operand())
        if name == "sqrt":
            if self.peek() == ("sym", "["):
                self.take()
                index = self.expr()
                self.take("sym", "]")
                return ("root", index, self.operand())
            return ("root", ("num", "2"), self.operand())
        if name in ("pi", "infty"):
            return ("const", name)
        if name in _GREEK:
            return ("var", name + self.subscript())
        if name in FUNCTIONS:
            base = None
            if name == "log" and self.peek() == ("sym", "_"):
                self.take()
                base = self.operand()
            power = None
            if self.peek() == ("sym", "^"):  # \sin^2 x
                self.take()
                power = self.exponent()
            arg = self.group() if self.peek() in (("sym", "("), ("sym", "{")) else self.power()
            node = ("fn", name, arg) if base is None else ("div", ("fn", "ln", arg), ("fn", "ln", base))
            return node if power is None else ("pow", node, power)
        raise Refused(f"unknown command \\{name}")


@functools.lru_cache(maxsize=4096)
def parse(text: str):
    """The expression tree of text, or Refused (cached: list items repeat across the pairs compared)."""
    return _Parser(clean(text)).parse()


# ---------------------------------------------------------------- relations: the sides and signs

def relation_parts(s: str) -> tuple[list[str], list[str]]:
    """The sides and relation signs of s, signs spelled = != < <= > >=: '-2 \\le x < 7' is
    (['-2', 'x', '7'], ['<=', '<'])."""
    s = clean(s)
    return [p.strip() for p in _REL_SPLIT.split(s)], [_RELATIONS[o] for o in _REL_SPLIT.findall(s)]


def split_relation(s: str):
    """(lhs, op, rhs) for one relation like 'x^2+y^2=9' or '5 \\geq x'; None for chains or no relation."""
    parts, ops = relation_parts(s)
    if len(ops) != 1 or not parts[0] or not parts[1]:
        return None
    return parts[0], ops[0], parts[1]
