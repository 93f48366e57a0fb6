"""Dimensions (integers or symbolic polynomials), tensor shapes and dtypes, and their notation."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction
from typing import NamedTuple, Union


class Sym(NamedTuple):
    """A symbolic size. ``free`` symbols stand for sizes nobody named (an input of unknown rank)."""

    name: str
    free: bool = False

    def __str__(self) -> str:
        return self.name


class FloorDiv(NamedTuple):
    """``num // den`` for a polynomial that does not divide evenly."""

    num: Poly
    den: int

    def __str__(self) -> str:
        inner = str(self.num)
        if len(self.num.terms) > 1:
            inner = f"({inner})"
        return f"{inner}//{self.den}"


class Scaled(NamedTuple):
    """``floor(base * factor)`` for a factor with no short exact fraction (Upsample by 1.1)."""

    base: Poly
    factor: float

    def __str__(self) -> str:
        return f"floor({self.base}*{self.factor!r})"


Atom = Union[Sym, FloorDiv, Scaled]
Monomial = tuple  # sorted tuple of atoms; () is the constant term


def _atom_key(atom) -> tuple:
    return (0, atom.name) if isinstance(atom, Sym) else (1, str(atom))


class Poly(NamedTuple):
    """An integer polynomial over atoms, in canonical form (sorted, no zero coefficients)."""

    terms: tuple[tuple[Monomial, int], ...]

    @staticmethod
    def of(mapping: dict) -> Dim:
        items = tuple(sorted(((m, c) for m, c in mapping.items() if c), key=_term_key))
        if not items:
            return 0
        if len(items) == 1 and items[0][0] == ():
            return items[0][1]
        return Poly(items)

    def as_dict(self) -> dict:
        return dict(self.terms)

    def atoms(self) -> set:
        return {a for m, _ in self.terms for a in m}

    def __str__(self) -> str:
        parts: list[str] = []
        for mono, coef in self.terms:
            mag = abs(coef)
            body = "*".join(_fmt_atom(a, len(mono) > 1 or mag != 1) for a in mono)
            if not body:
                text = str(mag)
            elif mag == 1:
                text = body
            else:
                text = f"{mag}*{body}"
            if not parts:
                parts.append(text if coef > 0 else f"-{text}")
            else:
                parts.append(f"+ {text}" if coef > 0 else f"- {text}")
        return " ".join(parts)


def _fmt_atom(atom, in_product: bool) -> str:
    text = str(atom)
    if in_product and isinstance(atom, FloorDiv):
        return f"({text})"
    return text


def _term_key(term) -> tuple:
    mono, _ = term
    # higher degree first, constants last
    return (-len(mono), [_atom_key(a) for a in mono]) if mono else (1, [])


Dim = Union[int, Poly]


def sym(name: str, free: bool = False) -> Poly:
    return Poly((((Sym(name, free),), 1),))


def _as_dict(d: Dim) -> dict:
    if isinstance(d, int):
        return {(): d} if d else {}
    return d.as_dict()


def add(a: Dim, b: Dim) -> Dim:
    if isinstance(a, int) and isinstance(b, int):
        return a + b
    out = _as_dict(a)
    for m, c in _as_dict(b).items():
        out[m] = out.get(m, 0) + c
    return Poly.of(out)


def neg(a: Dim) -> Dim:
    return -a if isinstance(a, int) else Poly.of({m: -c for m, c in a.terms})


def sub(a: Dim, b: Dim) -> Dim:
    if isinstance(a, int) and isinstance(b, int):
        return a - b
    return add(a, neg(b))


def mul(a: Dim, b: Dim) -> Dim:
    if isinstance(a, int) and isinstance(b, int):
        return a * b
    out: dict = {}
    for (m1, c1), (m2, c2) in itertools.product(_as_dict(a).items(), _as_dict(b).items()):
        mono = tuple(sorted(m1 + m2, key=_atom_key))
        out[mono] = out.get(mono, 0) + c1 * c2
    return Poly.of(out)


def floordiv(a: Dim, k: int) -> Dim:
    """``a // k`` for a positive integer k, keeping the exact part outside the floor."""
    if isinstance(a, int):
        return a // k
    if k == 1:
        return a
    inner = _single_floor(a)
    if inner is not None:
        # floor((floor(q/d) + c)/k) == floor((q + c*d)/(d*k)) for positive d, k
        (q, d), c = inner
        return floordiv(add(q, c * d), d * k)
    # Canonical form: every coefficient left inside the floor lies in [0, k), the multiples
    # of k move outside, so equal sizes print alike: (H - 2)//2 + 1 is H//2.
    whole: dict = {}
    rest: dict = {}
    for m, c in a.terms:
        whole[m] = c // k
        rest[m] = c % k
    rest_poly = Poly.of(rest)
    if isinstance(rest_poly, int):
        return add(Poly.of(whole), rest_poly // k)
    return add(Poly.of(whole), Poly(((((FloorDiv(rest_poly, k)),), 1),)))


def _single_floor(a: Poly):
    """((q, d), c) when ``a`` is exactly ``q//d + c``, else None."""
    terms = dict(a.terms)
    c = terms.pop((), 0)
    if len(terms) != 1:
        return None
    ((mono, coef),) = terms.items()
    if coef != 1 or len(mono) != 1 or not isinstance(mono[0], FloorDiv):
        return None
    return (mono[0].num, mono[0].den), c


def ceildiv(a: Dim, k: int) -> Dim:
    return floordiv(add(a, k - 1), k)


def prod(dims) -> Dim:
    out: Dim = 1
    for d in dims:
        out = mul(out, d)
    return out


def substitute(d: Dim, bindings: dict[Sym, Dim]) -> Dim:
    """Replace bound symbols (also inside floors) and re-normalise."""
    if isinstance(d, int) or not bindings:
        return d
    total: Dim = 0
    for mono, coef in d.terms:
        term: Dim = coef
        for atom in mono:
            if isinstance(atom, Sym):
                value = bindings.get(atom, Poly((((atom,), 1),)))
            elif isinstance(atom, Scaled):
                value = scale(substitute(atom.base, bindings), atom.factor)
            else:
                value = floordiv(substitute(atom.num, bindings), atom.den)
            term = mul(term, value)
        total = add(total, term)
    return total


def scale(d: Dim, factor: float) -> Dim:
    """``floor(d * factor)`` as torch computes it (in floating point) for an int; exact for a
    symbolic size when the factor is a short fraction (1.5 -> (3*H)//2), an opaque atom else."""
    if isinstance(d, int):
        return math.floor(float(d) * factor)
    frac = Fraction(factor)
    if frac.denominator <= 16:
        return floordiv(mul(d, frac.numerator), frac.denominator)
    # A factor like 1.1 is a binary fraction over 2**51: exact, but the expression would
    # double in length with every layer; keep it as one atom instead.
    return Poly((((Scaled(d, factor),), 1),))


def single_symbol(d: Dim) -> Sym | None:
    """The symbol if ``d`` is exactly one plain symbol, else None."""
    if isinstance(d, Poly) and len(d.terms) == 1:
        mono, coef = d.terms[0]
        if coef == 1 and len(mono) == 1 and isinstance(mono[0], Sym):
            return mono[0]
    return None


def known_equal(a: Dim, b: Dim) -> bool | None:
    """True or False when decidable for every value of the symbols, None when it depends on them."""
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    diff = sub(a, b)
    if isinstance(diff, int):
        return diff == 0
    return None


# ---------------------------------------------------------------- tensor types

DTYPES = {
    "float": "float32",
    "float32": "float32",
    "float64": "float64",
    "double": "float64",
    "float16": "float16",
    "half": "float16",
    "bfloat16": "bfloat16",
    "long": "int64",
    "int64": "int64",
    "int": "int32",
    "int32": "int32",
    "bool": "bool",
}
INTEGER_DTYPES = {"int64", "int32"}


class Shape(NamedTuple):
    """A tensor shape; ``rest`` means unknown leading dims (a bare chain given no --input)."""

    dims: tuple[Dim, ...]
    rest: bool = False

    @property
    def rank(self) -> int:
        return len(self.dims)

    def __str__(self) -> str:
        items = (["*"] if self.rest else []) + [str(d) for d in self.dims]
        return "[" + ", ".join(items) + "]"

    def substitute(self, bindings: dict[Sym, Dim]) -> Shape:
        if not bindings:
            return self
        return Shape(tuple(substitute(d, bindings) for d in self.dims), self.rest)

    def to_json(self) -> list:
        return (["*"] if self.rest else []) + [d if isinstance(d, int) else str(d) for d in self.dims]


class TensorType(NamedTuple):
    shape: Shape
    dtype: str = "float32"
    #: the memory layout (nndsl.layout): None for row-major memory, which ``view`` needs; the
    #: strides after a Permute or Transpose; ``"unknown"`` where the checker does not follow it
    strides: tuple | str | None = None

    @property
    def contiguous(self) -> bool:
        return self.strides is None

    def __str__(self) -> str:
        return str(self.shape) if self.dtype == "float32" else f"{self.dtype}{self.shape}"
