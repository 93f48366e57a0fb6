"""Memory layout of checked tensors: strides as torch would have them, and when ``view`` can use them.

A ``TensorType``'s ``strides`` is ``None`` for row-major (contiguous) memory, a tuple of
sizes (``Dim``) for a known other layout (after Permute or Transpose, a batch_first
recurrent layer, or a view of such a tensor), or ``UNKNOWN`` where the checker does not
follow the layout (a layer with its own memory-format rules on a reordered input).

:func:`view_strides` is torch's ``computeStride`` (aten/src/ATen/TensorUtils.cpp), the rule
that decides whether ``Tensor.view`` succeeds, evaluated on symbolic sizes: each comparison
that the sizes do not decide is explored both ways, so the answer is exact where the sizes
decide it and ``DEPENDS`` where they do not. Sizes are taken to be positive: torch views a
tensor with no elements in any shape.
"""

from __future__ import annotations

from nndsl import shapes
from nndsl.shapes import Dim

#: the layout of a tensor the checker does not follow
UNKNOWN = "unknown"
#: :func:`view_strides` when the answer depends on the values of symbolic sizes
DEPENDS = "depends"
_MAX_PATHS = 64


def row_major(dims: tuple[Dim, ...]) -> tuple[Dim, ...]:
    """The strides of contiguous memory of these sizes."""
    out: list[Dim] = []
    step: Dim = 1
    for d in reversed(dims):
        out.append(step)
        step = shapes.mul(step, d)
    return tuple(reversed(out))


def normal(dims: tuple[Dim, ...], strides) -> tuple[Dim, ...] | str | None:
    """``strides`` with row-major memory written as None (the stride of a size-1 dim never matters)."""
    if strides is None or strides == UNKNOWN:
        return strides
    for d, s, c in zip(dims, strides, row_major(dims)):
        if d != 1 and shapes.known_equal(s, c) is not True:
            return tuple(strides)
    return None


def strides_of(dims: tuple[Dim, ...], strides) -> tuple[Dim, ...]:
    """Explicit strides for a known layout (None means row-major)."""
    return row_major(dims) if strides is None else strides


class _Undecided(Exception):
    """A comparison the current path has not decided yet."""


class _Path:
    """One sequence of answers to the comparisons that the sizes leave open. A comparison in one
    symbol (``c*S + k``) narrows that symbol's range, so that later comparisons on the path are
    decided consistently with the earlier answers; sizes are at least 1."""

    def __init__(self, answers: list[bool]):
        self.answers = answers
        self.used = 0
        self.ranges: dict = {}  # symbol -> [lowest, highest (None: unbounded), excluded values]

    def _answer(self, verdict: bool | None) -> bool:
        if verdict is not None:
            return verdict
        if self.used == len(self.answers):
            raise _Undecided
        self.used += 1
        return self.answers[self.used - 1]

    def _linear(self, diff: Dim):
        """``diff`` with the symbols fixed so far in place: an int, or (S, c, k, range) for c*S + k."""
        fixed = {sym: r[0] for sym, r in self.ranges.items() if r[0] == r[1]}
        diff = shapes.substitute(diff, fixed)
        if isinstance(diff, int):
            return diff
        terms = dict(diff.terms)
        k = terms.pop((), 0)
        if len(terms) == 1:
            ((mono, c),) = terms.items()
            if len(mono) == 1 and isinstance(mono[0], shapes.Sym):
                return mono[0], c, k, self.ranges.setdefault(mono[0], [1, None, set()])
        return None

    def equal(self, a: Dim, b: Dim) -> bool:
        found = self._linear(shapes.sub(a, b))
        if isinstance(found, int):
            return found == 0
        if found is None:
            return self._answer(None)
        _, c, k, r = found
        lo, hi, excluded = r
        if k % c or not (lo <= -k // c and (hi is None or -k // c <= hi)) or -k // c in excluded:
            return False
        if self._answer(None):
            r[0] = r[1] = -k // c
            return True
        excluded.add(-k // c)
        return False

    def less(self, a: Dim, b: Dim) -> bool:
        """a < b, that is b - a = c*S + k > 0."""
        found = self._linear(shapes.sub(b, a))
        if isinstance(found, int):
            return found > 0
        if found is None:
            return self._answer(None)
        _, c, k, r = found
        lo, hi = r[0], r[1]
        # c*S + k > 0: S >= bound for c > 0, S <= bound for c < 0
        bound = -k // c + 1 if c > 0 else (k - 1) // -c
        if c > 0:
            if lo >= bound:
                return True
            if hi is not None and hi < bound:
                return False
            if self._answer(None):
                r[0] = bound
                return True
            r[1] = bound - 1
            return False
        if hi is not None and hi <= bound:
            return True
        if lo > bound:
            return False
        if self._answer(None):
            r[1] = bound
            return True
        r[0] = bound + 1
        return False


def _compute_stride(old: tuple, old_strides: tuple, new: tuple, path: _Path):
    """torch's computeStride on one path: the new strides, or None where view raises."""
    if not old:
        return (1,) * len(new)
    new_strides: list[Dim] = [0] * len(new)
    view_d = len(new) - 1
    chunk_base = old_strides[-1]
    tensor_numel: Dim = 1
    view_numel: Dim = 1
    for tensor_d in range(len(old) - 1, -1, -1):
        tensor_numel = shapes.mul(tensor_numel, old[tensor_d])
        boundary = tensor_d == 0 or (
            not path.equal(old[tensor_d - 1], 1)
            and not path.equal(old_strides[tensor_d - 1], shapes.mul(tensor_numel, chunk_base))
        )
        if boundary:
            while view_d >= 0 and (path.less(view_numel, tensor_numel) or path.equal(new[view_d], 1)):
                new_strides[view_d] = shapes.mul(view_numel, chunk_base)
                view_numel = shapes.mul(view_numel, new[view_d])
                view_d -= 1
            if not path.equal(view_numel, tensor_numel):
                return None
            if tensor_d > 0:
                chunk_base = old_strides[tensor_d - 1]
                tensor_numel = 1
                view_numel = 1
    if view_d != -1:
        return None
    return tuple(new_strides)


def view_strides(old: tuple[Dim, ...], strides, new: tuple[Dim, ...]):
    """The strides ``view`` gives a tensor of sizes ``old`` and ``strides`` (None: row-major) viewed
    as ``new`` (same number of elements): a tuple (None when row-major), ``False`` where torch
    raises for every non-empty input, ``DEPENDS`` where it depends on symbolic sizes."""
    if strides is None:
        return None
    if strides == UNKNOWN:
        return DEPENDS
    if shapes.known_equal(shapes.prod(old), 0):
        return None  # torch views an empty tensor in any shape
    results = []
    pending: list[list[bool]] = [[]]
    while pending:
        if len(results) >= _MAX_PATHS:
            return DEPENDS
        answers = pending.pop()
        path = _Path(answers)
        try:
            results.append(_compute_stride(old, tuple(strides), new, path))
        except _Undecided:
            pending += [answers + [False], answers + [True]]
    if all(r is None for r in results):
        return False
    if any(r is None for r in results):
        return DEPENDS
    layouts = {normal(new, r) for r in results}
    return layouts.pop() if len(layouts) == 1 else UNKNOWN


def reshaped(old: tuple[Dim, ...], strides, new: tuple[Dim, ...]):
    """The layout after ``reshape`` (and ``flatten``): a view where ``view`` works, else a copy."""
    result = view_strides(old, strides, new)
    if result is False:
        return None
    return UNKNOWN if result == DEPENDS else result


def of_reshape(x, out) -> tuple | str | None:
    """The layout of ``out`` (a TensorType) made from ``x`` by ``reshape`` or ``flatten``."""
    if x.strides is None:
        return None
    if x.strides == UNKNOWN or x.shape.rest or out.shape.rest:
        return UNKNOWN
    return reshaped(x.shape.dims, x.strides, out.shape.dims)


def substitute(strides, bindings) -> tuple | str | None:
    """Strides with bound symbols replaced."""
    if strides is None or strides == UNKNOWN or not bindings:
        return strides
    return tuple(shapes.substitute(s, bindings) for s in strides)
