"""The kanpiler: a formula -> a MultKAN whose edges are all symbolic and that computes it exactly.

KAN 2.0 "Compiling Symbolic Formulas", without silently substituting a function it does not
know (as the reference implementation does): every sympy node is either translated exactly or
rejected with a ``FormulaError`` that names the sub-expression.

Translation (sympy tree -> nodes and edges c·f(a·x+b)+d):

- a sum of non-constant terms is a sum node; each term is one edge into its single subnode;
- a product of non-constant factors is a multiplication node of that arity, one edge per factor;
- a one-variable function that is a library function (``sympy_head`` in
  :mod:`kandisc.model.functions`: ``exp, log, sin, ...``) or a power with a library exponent
  (``power``: ±1..±5, ±1/2, 3/2) is one edge; other integer and half-integer powers become
  several factors of a product (x**7 = x^4·x^3, x**(7/2) = x^3·sqrt(x), x**-7 = 1/x^4·1/x^3);
  c**g is exp(g·ln c);
- numeric addends and factors are folded into the neighbouring affines: inside an argument into
  (a, b), around a function into (c, d), around the whole formula into the output node's
  scale and bias. Identical sub-expressions share one node.

Layout: a node's layer is one more than its deepest source; an edge that skips layers goes
through a chain of identity sum nodes (``x`` edges, a=1, b=0, c=1, d=0), shared per source, so
every variable enters at layer 0 and every path has the same depth. Two edges from one source
into one subnode (x + sin(x)) would be one KAN edge, so the extra ones go through their own node.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import sympy as sp
import torch

from kandisc.defaults import GRID, ORDER
from kandisc.errors import FormulaError
from kandisc.knowledge.formula import formula_variables, parse_formula
from kandisc.model.functions import FUNCTIONS

_R = sp.Rational


def _function_edges() -> dict:
    """sympy function -> library name, for the library functions that are one sympy function."""
    return {getattr(sp, f.sympy_head): f.name for f in FUNCTIONS.values() if f.sympy_head}


def _power_edges() -> dict[sp.Rational, str]:
    """exponent -> library name of the power functions (x, x^2, 1/x, sqrt, x^1.5, ...)."""
    return {_R(f.power.numerator, f.power.denominator): f.name for f in FUNCTIONS.values() if f.power is not None}


def _supported() -> str:
    names = ", ".join(f.parse_names[0] for f in FUNCTIONS.values() if f.parse_names)
    return f"+ - * /, integer and half-integer powers, c**expr, pi, E and {names}"


IDENTITY = (1.0, 0.0, 1.0, 0.0)


@dataclass(eq=False)
class _Node:
    kind: str  # "input" | "sum" | "mult"
    subnodes: list[list[_Edge]] = field(default_factory=list)
    index: int = -1  # input column, for kind "input"
    scale: float = 1.0  # node affine (non-identity only at the output)
    bias: float = 0.0
    layer: int = -1
    position: int = -1


@dataclass
class _Edge:
    src: _Node
    fn: str
    params: tuple[float, float, float, float]  # (a, b, c, d)


Edge = tuple[int, int, int, str, tuple[float, float, float, float]]  # (layer, i, j, fn, (a, b, c, d))


@dataclass
class NetworkPlan:
    """A MultKAN as plain data: widths, arities, symbolic edges, node affines."""

    width: list[list[int]]  # [n_sum, n_mult] per node layer
    mult_arity: list[list[int]]  # per node layer, per mult node
    edges: list[Edge]
    node_affine: dict[tuple[int, int], tuple[float, float]]  # (layer, node of layer+1) -> (scale, bias)

    def build(self, grid: int = GRID, k: int = ORDER, dtype: torch.dtype = torch.float64, **spec_options):
        """The MultKAN: every listed edge symbolic, every other edge removed."""
        from kandisc.model import ModelSpec, MultKAN

        spec = ModelSpec.build(self.width, mult_arity=self.mult_arity, grid=grid, k=k, **spec_options)
        model = MultKAN(spec, dtype=dtype)
        for kan in model.layers:
            kan.remove_edges(torch.ones(kan.in_dim, kan.out_dim, dtype=torch.bool))
        for layer, i, j, fn, params in self.edges:
            model.set_symbolic(layer, i, j, fn, params)
        with torch.no_grad():
            for (layer, node), (scale, bias) in self.node_affine.items():
                model.node_scale[layer][node] = scale
                model.node_bias[layer][node] = bias
        return model


def _show(expr: sp.Expr) -> str:
    """A sub-expression for messages, floats at 15 digits (0.3, not 0.29999999999999999)."""
    return sp.sstr(expr.xreplace({f: sp.Float(float(f), 15) for f in expr.atoms(sp.Float)}))


def _num(expr: sp.Expr, where: sp.Expr) -> float:
    try:
        value = float(expr)
    except TypeError:
        raise FormulaError(f"cannot compile {_show(where)!r}: {_show(expr)!r} is not a real number") from None
    if not math.isfinite(value):
        raise FormulaError(f"cannot compile {_show(where)!r}: the constant {_show(expr)} is not finite")
    return value


def _split(expr: sp.Expr, is_op: bool, op) -> tuple[sp.Expr, sp.Expr]:
    """(numeric part, the rest) of an Add or Mul; the rest has free symbols."""
    if not is_op:
        return op.identity, expr
    numbers = [a for a in expr.args if a.is_number]
    return op(*numbers), op(*[a for a in expr.args if not a.is_number])


def _power_parts(exponent: sp.Rational) -> list[sp.Rational]:
    """Library exponents whose sum is ``exponent`` (an integer or half-integer, not 0)."""
    if exponent in _power_edges():
        return [exponent]
    if exponent.q == 2:
        half = _R(1, 2) if exponent > 0 else _R(-1, 2)
        return _power_parts(exponent - half) + [half]
    n = abs(int(exponent))
    count = math.ceil(n / 5)
    parts = [n // count + (1 if p < n % count else 0) for p in range(count)]
    return [_R(p if exponent > 0 else -p) for p in parts]


class _TreeBuilder:
    """sympy expression -> a DAG of nodes and edges (before layers are assigned)."""

    def __init__(self, expr: sp.Expr, variables: list[str]):
        self.expr = expr
        self.inputs = {name: _Node("input", index=i) for i, name in enumerate(variables)}
        self.cache: dict[sp.Expr, _Node] = {}
        self.functions, self.powers = _function_edges(), _power_edges()

    def fail(self, sub: sp.Expr, why: str) -> FormulaError:
        return FormulaError(
            f"cannot compile {_show(sub)!r} in {_show(self.expr)!r}: {why}; the compiler supports {_supported()}"
        )

    def root(self) -> _Node:
        if not self.expr.free_symbols:
            return _Node("sum", [[]], bias=_num(self.expr, self.expr))
        const, rest = _split(self.expr, self.expr.is_Add, sp.Add)
        coeff, core = _split(rest, rest.is_Mul, sp.Mul)
        if not (core.is_Add or core.is_Mul or self.split_power(core)):
            return _Node("sum", [[self.edge(self.expr)]])  # one edge: its (c, d) take the constants
        node = self.node(core)
        node.scale, node.bias = _num(coeff, self.expr), _num(const, self.expr)
        return node

    def operand(self, expr: sp.Expr) -> tuple[_Node, float, float]:
        """(node, alpha, beta) with expr = alpha·node + beta."""
        const, rest = _split(expr, expr.is_Add, sp.Add)
        coeff, core = _split(rest, rest.is_Mul, sp.Mul)
        return self.node(core), _num(coeff, expr), _num(const, expr)

    def edge(self, expr: sp.Expr) -> _Edge:
        """One edge computing ``expr`` from a single source node."""
        const, rest = _split(expr, expr.is_Add, sp.Add)
        if not rest.is_Add:
            coeff, core = _split(rest, rest.is_Mul, sp.Mul)
            direct = self.direct_edge(core)
            if direct is not None:
                gamma, delta = _num(coeff, expr), _num(const, expr)
                a, b, c, d = direct.params
                return _Edge(direct.src, direct.fn, (a, b, gamma * c, gamma * d + delta))
        node, alpha, beta = self.operand(expr)
        return _Edge(node, "x", (1.0, 0.0, alpha, beta))

    def exponent(self, power: sp.Expr) -> sp.Rational:
        e = power.exp
        if not e.is_number:
            raise self.fail(power, "a power with a symbolic exponent is not supported")
        value = sp.Rational(float(e)) if e.is_Float else sp.nsimplify(e) if not e.is_Rational else e
        if not (value.is_Rational and value.q in (1, 2)):
            raise self.fail(power, f"only integer and half-integer powers are supported, not {_show(e)}")
        return value

    def direct_edge(self, core: sp.Expr) -> _Edge | None:
        """The edge computing ``core`` = f(affine of a node), or None for sums, products, variables."""
        if core.is_Pow:
            base = core.base
            if base.is_number:  # c**g = exp(ln(c)·g)
                value = _num(base, core)
                if value <= 0:
                    raise self.fail(core, "a power of a non-positive constant is not real")
                node, alpha, beta = self.operand(core.exp)
                ln = math.log(value)
                return _Edge(node, "exp", (alpha * ln, beta * ln, 1.0, 0.0))
            if self.split_power(core):
                return None
            node, alpha, beta = self.operand(base)
            return _Edge(node, self.powers[self.exponent(core)], (alpha, beta, 1.0, 0.0))
        name = self.functions.get(core.func)
        if name is not None and len(core.args) == 1:
            node, alpha, beta = self.operand(core.args[0])
            return _Edge(node, name, (alpha, beta, 1.0, 0.0))
        if core.is_Symbol or core.is_Add or core.is_Mul:
            return None
        head = getattr(core.func, "__name__", type(core).__name__)
        raise self.fail(core, f"'{head}' is not in the compiler's function library")

    def split_power(self, core: sp.Expr) -> bool:
        """Whether ``core`` is a power that needs several library factors."""
        return core.is_Pow and not core.base.is_number and len(_power_parts(self.exponent(core))) > 1

    def factors(self, factors: tuple[sp.Expr, ...]) -> list[_Edge]:
        """One edge per factor; powers without a library exponent become several factors."""
        edges = []
        for factor in factors:
            if self.split_power(factor):
                node, alpha, beta = self.operand(factor.base)
                parts = _power_parts(self.exponent(factor))
                edges += [_Edge(node, self.powers[p], (alpha, beta, 1.0, 0.0)) for p in parts]
            else:
                edges.append(self.edge(factor))
        return edges

    def node(self, core: sp.Expr) -> _Node:
        """The node computing ``core`` (no numeric addend or factor)."""
        if core in self.cache:
            return self.cache[core]
        if core.is_Symbol:
            if core.name not in self.inputs:
                raise FormulaError(
                    f"variable '{core.name}' of {_show(self.expr)!r} is not among the inputs ({', '.join(self.inputs)})"
                )
            return self.inputs[core.name]
        if core.is_Add:
            node = _Node("sum", [[self.edge(t) for t in core.args]])
        elif core.is_Mul or self.split_power(core):
            node = _Node("mult", [[e] for e in self.factors(core.args if core.is_Mul else (core,))])
        else:
            node = _Node("sum", [[self.edge(core)]])
        for edges in node.subnodes:
            _separate_shared_sources(edges)
        self.cache[core] = node
        return node


def _separate_shared_sources(edges: list[_Edge]) -> None:
    """Route the 2nd, 3rd, ... edge from one source into one subnode through its own node."""
    seen = set()
    for pos, edge in enumerate(edges):
        if id(edge.src) in seen:
            edges[pos] = _Edge(_Node("sum", [[edge]]), "x", IDENTITY)
        seen.add(id(edge.src))


def _assign_layers(node: _Node) -> int:
    if node.layer < 0:
        sources = [e.src for edges in node.subnodes for e in edges]
        node.layer = 1 + max((_assign_layers(s) for s in sources), default=0)
    return node.layer


class _Layout:
    """Places the nodes in layers, padding skipped layers with shared identity chains."""

    def __init__(self, inputs: list[_Node], depth: int):
        self.layers: list[list[_Node]] = [list(inputs)] + [[] for _ in range(depth)]
        self.pads: dict[tuple[int, int], _Node] = {}
        self.placed: set[int] = set()

    def place(self, node: _Node) -> None:
        if node.kind == "input" or id(node) in self.placed:
            return
        self.placed.add(id(node))
        resolved = []
        for edges in node.subnodes:
            for e in edges:
                self.place(e.src)
            resolved.append([_Edge(self.padded(e.src, node.layer - 1), e.fn, e.params) for e in edges])
        node.subnodes = resolved
        self.layers[node.layer].append(node)

    def padded(self, src: _Node, layer: int) -> _Node:
        """``src`` itself, or its identity copy in ``layer``."""
        if src.layer == layer:
            return src
        key = (id(src), layer)
        if key not in self.pads:
            pad = _Node("sum", [[_Edge(self.padded(src, layer - 1), "x", IDENTITY)]], layer=layer)
            self.pads[key] = pad
            self.layers[layer].append(pad)
        return self.pads[key]

    def plan(self) -> NetworkPlan:
        for i, node in enumerate(self.layers[0]):
            node.position = i
        width, arity, edges, affine = [[len(self.layers[0]), 0]], [[]], [], {}
        for layer in range(1, len(self.layers)):
            nodes = self.layers[layer]
            sums = [n for n in nodes if n.kind == "sum"]
            mults = [n for n in nodes if n.kind == "mult"]
            width.append([len(sums), len(mults)])
            arity.append([len(n.subnodes) for n in mults])
            next_sub = len(sums)
            for pos, node in enumerate(sums + mults):
                node.position = pos
                if node.kind == "sum":
                    subs = [pos]
                else:
                    subs = list(range(next_sub, next_sub + len(node.subnodes)))
                    next_sub += len(node.subnodes)
                for j, row in zip(subs, node.subnodes, strict=True):
                    edges += [(layer - 1, e.src.position, j, e.fn, e.params) for e in row]
                if (node.scale, node.bias) != (1.0, 0.0):
                    affine[(layer - 1, pos)] = (node.scale, node.bias)
        if len({e[:3] for e in edges}) != len(edges):
            raise RuntimeError("compiler bug: two edges share one (layer, input, subnode)")
        return NetworkPlan(width, arity, edges, affine)


def plan_network(expr: sp.Expr, variables: list[str]) -> NetworkPlan:
    """The network computing ``expr`` with one input per name of ``variables`` (unused ones unconnected)."""
    builder = _TreeBuilder(expr, list(variables))
    inputs = list(builder.inputs.values())
    for node in inputs:
        node.layer = 0
    root = builder.root()
    layout = _Layout(inputs, _assign_layers(root))
    layout.place(root)
    return layout.plan()


def read_formula(text_or_expr, variables: list[str] | None) -> tuple[sp.Expr, list[str], str]:
    """(expression, variable names, source text) of formula text or a sympy expression."""
    if isinstance(text_or_expr, str):
        names = list(variables) if variables is not None else formula_variables(text_or_expr)
        expr, source = parse_formula(text_or_expr, names), text_or_expr.strip()
    elif isinstance(text_or_expr, sp.Basic):
        expr, source = text_or_expr, sp.sstr(text_or_expr)
        names = list(variables) if variables is not None else formula_variables(expr)
        unknown = sorted(s.name for s in expr.free_symbols if s.name not in names)
        if unknown:
            listed = ", ".join(names)
            raise FormulaError(f"variable '{unknown[0]}' of {source!r} is not among the inputs ({listed})")
    else:
        raise FormulaError(f"a formula must be text or a sympy expression, got {type(text_or_expr).__name__}")
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise FormulaError(f"variable '{dup}' is listed twice")
    if not names:
        raise FormulaError(f"formula {source!r} has no variables; name the model's inputs")
    return expr, names, source
