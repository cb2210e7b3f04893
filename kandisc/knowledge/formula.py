"""The one safe formula parser: formula text -> sympy, plus the sympy -> numpy and torch evaluators.

Every formula kandisc reads (CLI arguments, YAML ``prior:`` / ``auxiliary:``, model files) goes
through :func:`parse_formula`. The text is parsed by Python's ``ast`` and the tree is walked with
a whitelist; the sympy expression is built node by node, so user text is never given to ``eval``,
``sympify`` or ``parse_expr``. Allowed:

- numbers (int, float; ints stay exact, floats keep their full float64 value) and ``pi``, ``E``;
- variables: the known names (``variables``), or, when ``variables`` is None, any identifier
  except dunder names. A known variable named ``pi`` or ``E`` wins over the constant;
- ``+ - * / **`` and unary ``-``/``+`` (``^`` is rejected with a hint to use ``**``);
- calls of one positional argument to the library functions that have formula names
  (:func:`kandisc.model.functions.parse_table`: ``exp``, ``sin``, ``arcsin``/``asin``, ... and
  the functions a config adds; an added function expands into its defining formula).

Anything else raises :class:`~kandisc.errors.FormulaError` naming the offending token, its column
and what is allowed. Symbols are plain ``sympy.Symbol(name)`` (no assumptions), so expressions
built elsewhere with the same names compare equal.
"""

from __future__ import annotations

import ast
import builtins
import difflib
import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import sympy as sp

from kandisc.errors import DataError, FormulaError
from kandisc.model.functions import FUNCTIONS, parse_listing, parse_table

CONSTANTS: dict[str, sp.Expr] = {"pi": sp.pi, "E": sp.E}

_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
_OP_SYMBOLS = {
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.MatMult: "@",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.Not: "not",
    ast.Invert: "~",
}
_NODE_NAMES = {
    ast.Lambda: "lambda",
    ast.Subscript: "subscript",
    ast.ListComp: "list comprehension",
    ast.SetComp: "set comprehension",
    ast.DictComp: "dict comprehension",
    ast.GeneratorExp: "generator expression",
    ast.Compare: "comparison",
    ast.BoolOp: "boolean operator",
    ast.IfExp: "conditional expression",
    ast.List: "list",
    ast.Tuple: "tuple",
    ast.Set: "set",
    ast.Dict: "dict",
    ast.NamedExpr: "assignment ':='",
    ast.JoinedStr: "f-string",
    ast.Starred: "starred expression",
    ast.Await: "await",
    ast.Yield: "yield",
}
_OPERATORS = "+ - * / ** and unary -"
_ONE_ARG = "functions take one positional argument"


def _allowed_summary() -> str:
    return f"allowed: numbers, variables, pi, E, + - * / ** and the functions {parse_listing()}"


# Exact integer powers with more bits than this are refused (10**10**10 would never finish).
_MAX_INT_BITS = 100_000
# A variable's power beyond this is never physics, and x**(2**100) or x**1e9 made sympy, the
# compiler and the evaluators run for hours.
MAX_EXPONENT = 100
# Constants beyond this overflow float64 once multiplied or squared (data values share the limit).
MAX_CONSTANT = 1e100


def _suggest(name: str, candidates: Sequence[str]) -> str:
    """A ' (did you mean 'x'?)' hint, preferring a case-insensitive match."""
    for c in candidates:
        if c.lower() == name.lower():
            return f" (did you mean '{c}'?)"
    close = difflib.get_close_matches(name, list(candidates), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _is_dunder(name: str) -> bool:
    return name.startswith("__")


class _Builder:
    """Walks a whitelisted ``ast`` tree and builds the sympy expression."""

    def __init__(self, text: str, variables: Sequence[str] | None):
        self.text = text
        self.variables = None if variables is None else list(dict.fromkeys(variables))
        self.order: list[str] = []  # variable names in order of first appearance
        self.functions = parse_table()

    def fail(self, node: ast.AST | None, message: str, col: int | None = None) -> FormulaError:
        shown = self.text if len(self.text) <= 80 else self.text[:77] + "..."
        where = ""
        if node is not None and hasattr(node, "col_offset"):
            line = f"line {node.lineno}, " if node.lineno > 1 else ""
            where = f" ({line}column {(node.col_offset if col is None else col) + 1})"
        return FormulaError(f"formula {shown!r}: {message}{where}")

    def segment(self, node: ast.AST) -> str:
        return ast.get_source_segment(self.text, node) or type(node).__name__

    def build(self, node: ast.AST) -> sp.Expr:
        method = getattr(self, "_" + type(node).__name__, None)
        if method is not None:
            return method(node)
        kind = _NODE_NAMES.get(type(node), type(node).__name__)
        raise self.fail(node, f"{kind} '{self.segment(node)}' is not allowed; {_allowed_summary()}")

    def _Expression(self, node: ast.Expression) -> sp.Expr:
        return self.build(node.body)

    def _BinOp(self, node: ast.BinOp) -> sp.Expr:
        left, right = self.build(node.left), self.build(node.right)
        op = type(node.op)
        if op in _BINOPS:
            return _BINOPS[op](left, right)
        if op is ast.Pow:
            return self._power(node, left, right)
        if op is ast.BitXor:
            raise self.fail(node, f"'^' in '{self.segment(node)}' is not a power; use ** for powers")
        raise self.fail(
            node,
            f"operator '{_OP_SYMBOLS.get(op, op.__name__)}' in '{self.segment(node)}' is not allowed; "
            f"allowed operators: {_OPERATORS}",
        )

    def _power(self, node: ast.AST, base: sp.Expr, exponent: sp.Expr) -> sp.Expr:
        if exponent.is_Number and base.free_symbols and abs(exponent) > MAX_EXPONENT:
            raise self.fail(
                node, f"exponent in '{self.segment(node)}' is too large; powers of variables go up to ±{MAX_EXPONENT}"
            )
        if base.is_Rational and exponent.is_Integer and abs(base) not in (0, 1):
            p, q = sp.fraction(abs(base))
            bits = abs(int(exponent)) * max(int(p).bit_length(), int(q).bit_length())
            if bits > _MAX_INT_BITS:
                raise self.fail(node, f"number '{self.segment(node)}' is too large")
        return base**exponent

    def _UnaryOp(self, node: ast.UnaryOp) -> sp.Expr:
        operand = self.build(node.operand)
        if isinstance(node.op, ast.USub):
            return -operand
        if isinstance(node.op, ast.UAdd):
            return operand
        symbol = _OP_SYMBOLS.get(type(node.op), type(node.op).__name__)
        raise self.fail(node, f"operator '{symbol}' is not allowed; allowed operators: {_OPERATORS}")

    def _Constant(self, node: ast.Constant) -> sp.Expr:
        value = node.value
        if isinstance(value, bool) or value is None or value is Ellipsis:
            raise self.fail(node, f"'{value!r}' is not allowed; only numbers")
        if isinstance(value, int):
            return sp.Integer(value)
        if isinstance(value, float):
            if not math.isfinite(value):
                raise self.fail(node, f"number '{self.segment(node)}' is not finite")
            return sp.Float(value, 17)
        if isinstance(value, complex):
            raise self.fail(node, f"complex number '{self.segment(node)}' is not allowed; only real numbers")
        kind = "string" if isinstance(value, str | bytes) else type(value).__name__
        raise self.fail(node, f"{kind} {self.segment(node)} is not allowed; only numbers")

    def _Name(self, node: ast.Name) -> sp.Expr:
        name = node.id
        if _is_dunder(name):
            raise self.fail(node, f"name '{name}' is not allowed")
        known = self.variables
        if (known is None and name not in CONSTANTS and name not in self.functions) or (
            known is not None and name in known
        ):
            if name not in self.order:
                self.order.append(name)
            return sp.Symbol(name)
        if name in CONSTANTS:
            return CONSTANTS[name]
        if name in self.functions:
            raise self.fail(node, f"'{name}' is a function; call it as {name}(...)")
        listed = ", ".join(known) if known else "(none)"
        hint = _suggest(name, list(known) + list(CONSTANTS))
        raise self.fail(node, f"unknown variable '{name}'{hint}; known: {listed}")

    def _Attribute(self, node: ast.Attribute) -> sp.Expr:
        self.build(node.value)  # report a forbidden call inside first, e.g. __import__('os').system
        col = (node.end_col_offset or 0) - len(node.attr) - 1
        raise self.fail(node, f"attribute access '.{node.attr}' is not allowed", col=max(col, 0))

    def _Subscript(self, node: ast.Subscript) -> sp.Expr:
        self.build(node.value)
        raise self.fail(node, f"subscript '{self.segment(node)}' is not allowed")

    def _Call(self, node: ast.Call) -> sp.Expr:
        if not isinstance(node.func, ast.Name):
            self.build(node.func)  # an attribute or subscript reports itself
            raise self.fail(node, f"only named functions can be called, not '{self.segment(node.func)}'")
        name = node.func.id
        allowed = f"allowed functions: {parse_listing()}"
        if name not in self.functions:
            if _is_dunder(name) or hasattr(builtins, name):
                raise self.fail(node, f"function '{name}' is not allowed; {allowed}")
            if self.variables is not None and name in self.variables:
                raise self.fail(node, f"'{name}' is a variable, not a function; {allowed}")
            hint = _suggest(name, list(self.functions))
            raise self.fail(node, f"unknown function '{name}'{hint}; {allowed}")
        if node.keywords:
            kw = node.keywords[0]
            label = f"'{kw.arg}='" if kw.arg else "'**'"
            raise self.fail(kw, f"keyword argument {label} is not allowed; {_ONE_ARG}")
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise self.fail(arg, f"'{self.segment(arg)}' is not allowed; {_ONE_ARG}")
        if len(node.args) != 1:
            raise self.fail(node, f"function '{name}' takes exactly 1 argument ({len(node.args)} given)")
        return self.functions[name].sympy(self.build(node.args[0]))


def _syntax_error(text: str, err: SyntaxError) -> FormulaError:
    lines = text.splitlines() or [""]
    lineno = err.lineno if err.lineno and err.lineno <= len(lines) else len(lines)
    line = f"line {lineno}, " if len(lines) > 1 else ""
    if err.offset and 0 < err.offset <= len(lines[lineno - 1]):
        where = f"at {line}column {err.offset}"
    else:
        where = "at the end (unfinished expression?)"
    shown = text if len(text) <= 80 else text[:77] + "..."
    return FormulaError(f"formula {shown!r}: syntax error {where}: {err.msg}")


def _parse(text: str, variables: Sequence[str] | None) -> tuple[sp.Expr, list[str]]:
    if not isinstance(text, str):
        raise FormulaError(f"a formula must be a string, got {type(text).__name__} {text!r}")
    source = text.strip()
    if not source:
        raise FormulaError("empty formula; write an expression such as 'x*y + sin(z)'")
    builder = _Builder(source, variables)
    try:
        tree = ast.parse(source, mode="eval")
        expr = builder.build(tree)
    except SyntaxError as err:
        raise _syntax_error(source, err) from None
    except (RecursionError, MemoryError):
        raise FormulaError(f"formula {source[:60]!r}...: nested too deeply; write it with fewer levels") from None
    if expr.has(sp.zoo, sp.oo, sp.S.NegativeInfinity, sp.nan, sp.I):
        raise builder.fail(None, f"evaluates to {expr} (a division by zero, log(0) or a complex number)")
    _check_sizes(builder, expr)
    return expr, builder.order


def _check_sizes(builder: _Builder, expr: sp.Expr) -> None:
    """Constants and powers as sympy combined them: (x**50)**50 is x**2500, 10**400 one number."""
    huge = [a for a in expr.atoms(sp.Number) if abs(a) > MAX_CONSTANT]
    if huge:
        shown = sp.sstr(sp.Float(huge[0], 3))
        raise builder.fail(None, f"constant {shown} is beyond ±{MAX_CONSTANT:g} (float64 would overflow)")
    for power in expr.atoms(sp.Pow):
        if power.exp.is_Number and power.base.free_symbols and abs(power.exp) > MAX_EXPONENT:
            shown = sp.sstr(power)[:40]
            raise builder.fail(None, f"power {shown} is too large; powers of variables go up to ±{MAX_EXPONENT}")


def parse_formula(text: str, variables: Sequence[str] | None) -> sp.Expr:
    """Parse ``text`` into a sympy expression, allowing only the whitelisted syntax.

    ``variables`` are the names the formula may use (e.g. the CSV columns); ``None`` lets every
    identifier-shaped, non-dunder name become a symbol. Raises FormulaError.
    """
    return _parse(text, variables)[0]


def formula_variables(expr: sp.Expr | str) -> list[str]:
    """The variable names of a formula, in the order they appear.

    For text: order of first appearance in the text (``"x*y + sin(z)"`` -> x, y, z). For a sympy
    expression: order of first appearance in its printed form, which is sympy's canonical order.
    """
    if isinstance(expr, str):
        return _parse(expr, None)[1]
    names = {s.name for s in expr.free_symbols}
    order = [t for t in dict.fromkeys(re.findall(r"[A-Za-z_]\w*", sp.sstr(expr))) if t in names]
    return order + sorted(names - set(order))


def _as_expr(expr: sp.Expr | str | float, variables: Sequence[str]) -> sp.Expr:
    """Accept a sympy expression, a plain number, or formula text (parsed safely)."""
    if isinstance(expr, str):
        return parse_formula(expr, variables)
    if isinstance(expr, sp.Basic):
        return expr
    if isinstance(expr, int | float) and not isinstance(expr, bool):
        return sp.Integer(expr) if isinstance(expr, int) else sp.Float(expr, 17)
    raise TypeError(f"expected a sympy expression or formula text, got {type(expr).__name__}")


def _check_symbols(expr: sp.Expr, variables: Sequence[str]) -> list[str]:
    names = list(variables)
    missing = sorted(s.name for s in expr.free_symbols if s.name not in names)
    if missing:
        raise FormulaError(
            f"formula {sp.sstr(expr)!r} uses {', '.join(missing)}, which are not among the variables "
            f"({', '.join(names) or 'none'})"
        )
    return names


def _column(data: Mapping, name: str):
    try:
        return data[name]
    except KeyError:
        raise DataError(f"the formula needs column '{name}', which the data lacks") from None


def to_numpy_function(expr: sp.Expr, variables: Sequence[str]) -> Callable[[Mapping[str, np.ndarray]], np.ndarray]:
    """A numpy evaluator ``f({name: array}) -> float64 array`` of a (parsed, hence safe) expression.

    Domain errors give NaN/inf (no warnings); the caller checks finiteness. The result has the
    broadcast shape of the inputs, also for a constant expression.
    """
    expr = _as_expr(expr, variables)
    names = _check_symbols(expr, variables)
    by_name = {s.name: s for s in expr.free_symbols}
    # Rename the symbols: lambdify puts symbol names into the generated code's namespace, so a
    # column called 'exp' would shadow numpy's exp.
    safe = [sp.Symbol(f"_kandisc_arg{i}") for i in range(len(names))]
    renamed = expr.xreplace({by_name[n]: s for n, s in zip(names, safe, strict=True) if n in by_name})
    if renamed.has(sp.zoo):  # 1/0 in the formula (e.g. a constant rounded to 0): numpy has no complex ∞

        def compiled(*_arrays):
            return np.nan

    else:
        compiled = sp.lambdify(safe, renamed, modules="numpy")

    def evaluate(data: Mapping[str, np.ndarray]) -> np.ndarray:
        arrays = [np.asarray(_column(data, n), dtype=np.float64) for n in names]
        shape = np.broadcast_shapes(*(a.shape for a in arrays)) if arrays else ()
        with np.errstate(all="ignore"):
            out = np.asarray(compiled(*arrays))
        if np.iscomplexobj(out):
            out = np.where(out.imag == 0, out.real, np.nan)
        return np.broadcast_to(out.astype(np.float64), shape).copy()

    return evaluate


def evaluate_rows(expr: sp.Expr | str, names: Sequence[str], x: np.ndarray) -> np.ndarray:
    """``expr`` on the rows of ``x`` (N, len(names)), whose columns follow ``names``: shape (N,)."""
    x = np.asarray(x)
    values = to_numpy_function(expr, names)({n: x[:, k] for k, n in enumerate(names)})
    return np.broadcast_to(values, (x.shape[0],)).copy()


def _torch_table() -> dict:
    """sympy function -> torch function, for the library functions that are one sympy function
    (torch names them the same, in lower case: ``Abs`` -> ``torch.abs``)."""
    import torch

    heads = [f.sympy_head for f in FUNCTIONS.values() if f.sympy_head and hasattr(torch, f.sympy_head.lower())]
    return {getattr(sp, head): getattr(torch, head.lower()) for head in heads}


def _constant(expr: sp.Expr) -> float:
    try:
        return float(expr)
    except TypeError:
        raise FormulaError(f"constant {sp.sstr(expr)!r} is not a real number") from None


def _torch_node(expr: sp.Expr, index: dict[str, int], table: dict) -> Callable:
    """Compile one sympy node into ``f(columns) -> Tensor`` (or a float for constant subtrees)."""
    import torch

    if not expr.free_symbols:
        value = _constant(expr)
        return lambda cols: value
    if expr.is_Symbol:
        i = index[expr.name]
        return lambda cols: cols[i]
    parts = [_torch_node(a, index, table) for a in expr.args]
    if expr.is_Add:
        return lambda cols: sum((p(cols) for p in parts[1:]), parts[0](cols))
    if expr.is_Mul:
        return lambda cols: math.prod((p(cols) for p in parts[1:]), start=parts[0](cols))
    if expr.is_Pow:
        base, exponent = parts
        e = expr.exp
        if e.is_Integer:
            n = int(e)
            return lambda cols: torch.pow(base(cols), n)
        if e == sp.Rational(1, 2):
            return lambda cols: torch.sqrt(base(cols))
        if e == sp.Rational(-1, 2):
            return lambda cols: torch.rsqrt(base(cols))
        return lambda cols: torch.pow(base(cols), exponent(cols))
    fn = table.get(expr.func)
    if fn is None or len(parts) != 1:
        supported = ", ".join(sorted(f.__name__ for f in table))
        raise FormulaError(
            f"cannot evaluate {sp.sstr(expr)!r} on tensors: '{expr.func.__name__}' is not supported; "
            f"supported: +, *, **, {supported}"
        )
    (arg,) = parts
    return lambda cols: fn(arg(cols))


def to_torch_function(expr: sp.Expr, variables: Sequence[str]) -> Callable:
    """A torch evaluator of a sympy expression, differentiable, in the inputs' dtype and device.

    The returned ``f(x)`` takes either a mapping ``{name: Tensor}`` or a 2-D tensor whose columns
    follow ``variables``, and returns the values (shape of one column). Supports Add, Mul, Pow,
    numbers, symbols and the whitelisted functions; anything else raises FormulaError.
    """
    import torch

    expr = _as_expr(expr, variables)
    names = _check_symbols(expr, variables)
    compiled = _torch_node(expr, {n: i for i, n in enumerate(names)}, _torch_table())

    def evaluate(x) -> torch.Tensor:
        if isinstance(x, torch.Tensor):
            if x.ndim != 2 or x.shape[1] != len(names):
                raise DataError(
                    f"expected a 2-D tensor with {len(names)} columns ({', '.join(names)}), got shape {tuple(x.shape)}"
                )
            cols = list(x.unbind(1))
        else:
            cols = [torch.as_tensor(_column(x, n)) for n in names]
        cols = [c if c.is_floating_point() else c.to(torch.float64) for c in cols]
        out = compiled(cols)
        if isinstance(out, torch.Tensor):
            return out
        if cols:
            return torch.full_like(cols[0], out)
        if isinstance(x, torch.Tensor):
            dtype = x.dtype if x.is_floating_point() else torch.float64
            return torch.full((x.shape[0],), out, dtype=dtype, device=x.device)
        return torch.tensor(out, dtype=torch.float64)

    return evaluate
