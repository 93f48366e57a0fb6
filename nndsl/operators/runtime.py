"""Runtime sizes: a symbolic size (``T`` of ``tokens: long[N, T]``) that an operation needs as a
number at run time (``arange(T)``, ``expand(x, N, -1)``), read from a tensor that has it.

The checker finds, for each symbol a size holds, a tensor in scope with that symbol as one of its
sizes (``sources``); that tensor becomes an input of the operation and the operation's arguments
hold a table of ``(symbol, input index, axis)``. An operation that reads sizes of its first
input only (an index's bound, ``x[:, : T - 2]``) writes its size in symbols ``#k`` instead, the
size of that input's dim ``k`` (``relative``), and needs no table. The backends then write the
size as the tensor's size (``tokens.size(1)``, ``x.size(2) - 2``: ``python_size``) or compute it
in ONNX with Shape and Gather (``onnx_size``). A size that is a known integer is written as the
integer.
"""

from __future__ import annotations

from typing import Any

from nndsl import shapes
from nndsl.shapes import Dim, FloorDiv, Poly, Sym
from nndsl.statements import Code

#: ``(symbol name, input index, axis)``: where an operation reads a symbol at run time
Source = tuple[str, int, int]


def symbols_of(values: Any) -> list[str]:
    """The names of the symbols in a size or a (nested) tuple of sizes, in order of appearance."""
    out: list[str] = []
    for value in values if type(values) is tuple else (values,):
        if type(value) is tuple:
            out += [s for s in symbols_of(value) if s not in out]
        elif isinstance(value, Poly):
            for atom in sorted(value.atoms(), key=str):
                inner = atom.num.atoms() if isinstance(atom, FloorDiv) else {atom}
                out += [a.name for a in sorted(inner, key=str) if isinstance(a, Sym) and a.name not in out]
    return out


def find(tensors: list, name: str) -> tuple[Any, int] | None:
    """The first of ``tensors`` (checker values with ``type``) with the symbol ``name`` as one of
    its sizes, and that size's axis; None if none has it."""
    wanted = Sym(name)
    for t in tensors:
        if t.type is None or t.type.shape.rest:
            continue
        for axis, d in enumerate(t.type.shape.dims):
            if shapes.single_symbol(d) == wanted:
                return t, axis
    return None


def relative(value: Poly, dims: tuple[Dim, ...]) -> Dim | None:
    """``value`` in terms of the sizes ``dims`` of the operation's first input, as a polynomial in
    symbols ``#k`` (the size of its dim ``k``): one size plus a number where one differs from it by
    a number (``#2 - 2``), else each symbol replaced by a dim of that size; None where a symbol is
    no dim's size."""
    for k, d in enumerate(dims):
        rest = shapes.sub(value, d)
        if isinstance(d, Poly) and isinstance(rest, int):
            return shapes.add(shapes.sym(f"#{k}"), rest)
    bindings = {}
    for atom in value.atoms():
        at = next((k for k, d in enumerate(dims) if shapes.single_symbol(d) == atom), None)
        if not isinstance(atom, Sym) or at is None:
            return None
        bindings[atom] = shapes.sym(f"#{at}")
    return shapes.substitute(value, bindings)


def _lookup(name: str, table: tuple[Source, ...]) -> tuple[int, int]:
    if name.startswith("#"):  # the size of a dim of the first input (``relative``)
        return 0, int(name[1:])
    for sym, index, axis in table:
        if sym == name:
            return index, axis
    raise KeyError(f"no runtime source of the size {name}")


def _atom_code(atom, table: tuple[Source, ...], inputs: list[str]) -> str:
    if isinstance(atom, Sym):
        index, axis = _lookup(atom.name, table)
        return f"{inputs[index]}.size({axis})"
    if isinstance(atom, FloorDiv):
        return f"({_poly_code(atom.num, table, inputs)}) // {atom.den}"
    raise ValueError(f"cannot write the size {atom} at run time")


def _poly_code(d: Dim, table: tuple[Source, ...], inputs: list[str]) -> str:
    if isinstance(d, int):
        return str(d)
    text = ""
    for mono, coef in d.terms:
        factors = [_atom_code(a, table, inputs) for a in mono]
        if abs(coef) != 1 or not factors:
            factors.insert(0, str(abs(coef)))
        term = " * ".join(factors)
        text = (("-" if coef < 0 else "") + term) if not text else f"{text} {'-' if coef < 0 else '+'} {term}"
    return text


def python_size(d: Dim, table: tuple[Source, ...], inputs: list[str]) -> int | Code:
    """``d`` in the emitted forward: the integer, or an expression of the inputs' sizes
    (``tokens.size(1)``, ``2 * x.size(0)``)."""
    return d if isinstance(d, (int, Code)) else Code(_poly_code(d, table, inputs))


def onnx_size(g, d: Dim, table: tuple[Source, ...], inputs: list[str]) -> str:
    """``d`` in an exported graph: an int64 scalar, computed from the inputs' Shape where symbolic."""
    import numpy as np

    def const(v: int) -> str:
        return g.const(np.asarray(v, dtype=np.int64), np.int64, "size")

    if isinstance(d, int):
        return const(d)

    def atom_value(atom) -> str:
        if isinstance(atom, Sym):
            index, axis = _lookup(atom.name, table)
            return g.op("Gather", [g.op("Shape", [inputs[index]]), const(axis)], axis=0)
        if isinstance(atom, FloorDiv):
            return g.op("Div", [onnx_size(g, atom.num, table, inputs), const(atom.den)])  # sizes are >= 0
        raise ValueError(f"cannot compute the size {atom} at run time")

    total = None
    for mono, coef in d.terms:
        term = None
        for atom in mono:
            value = atom_value(atom)
            term = value if term is None else g.op("Mul", [term, value])
        if term is None:
            term = const(coef)
        elif coef != 1:
            term = g.op("Mul", [term, const(coef)])
        total = term if total is None else g.op("Add", [total, term])
    return total
