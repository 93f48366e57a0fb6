"""Basic indexing of a tensor (``x[:, 0]``, ``x[..., :-2]``, ``mask[:, None]``) with torch's rules.

An index is a tuple of items: an integer (removes its dim; negative counts from the end), a
:class:`Slice` (keeps its dim, clamped as Python clamps), ``Ellipsis`` (the dims the other items
leave) or ``None`` (inserts a dim of size 1). Integers and slice bounds may be symbolic sizes; a
symbolic bound is computed at run time from the sizes of the indexed tensor (a :class:`Runtime`).
The result is a view of the input: it keeps the dtype and takes the input's strides.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from nndsl import layout, shapes
from nndsl.layers.base import ArgValueError, Kind, Param, ShapeError, WrongType
from nndsl.operators.base import TENSOR, Operator
from nndsl.operators.registry import register
from nndsl.operators.runtime import onnx_size, python_size, relative
from nndsl.shapes import Dim, Poly, Shape, Sym, TensorType
from nndsl.statements import Assign, Code, assign


class Runtime(NamedTuple):
    """A symbolic bound and how it is computed at run time: ``sizes`` is the bound as a
    polynomial in symbols ``#k``, the size of the indexed tensor's dim ``k`` (``x.size(2) - 2``)."""

    value: Poly
    sizes: Dim


def runtime(value: Poly, dims: tuple[Dim, ...]) -> Runtime | None:
    """``value`` in terms of the sizes ``dims`` of the indexed tensor (``runtime.relative``);
    None where a symbol is no dim's size."""
    sizes = relative(value, dims)
    return None if sizes is None else Runtime(value, sizes)


class TensorIndex(NamedTuple):
    """A tensor of integers as an item (``table[index]``): its values pick along the dim, the
    operation's second input."""

    input: int = 1


class Slice(NamedTuple):
    """``start:stop:step``; each part None (left out), an int, a symbolic size or a Runtime."""

    start: Any = None
    stop: Any = None
    step: Any = None


def dim_value(bound) -> Dim | None:
    """The size a bound stands for (a Runtime's polynomial)."""
    return bound.value if isinstance(bound, Runtime) else bound


def _item(value):
    if value is None or value is Ellipsis or isinstance(value, (Slice, Runtime, TensorIndex)):
        return value
    if type(value) is int:
        return value
    raise WrongType


def _index(value) -> tuple:
    """An index as a tuple of items (``getitem(x, 0)`` gives one integer)."""
    items = value if type(value) is tuple else (value,)
    try:
        return tuple(_item(v) for v in items)
    except WrongType:
        raise ArgValueError("an index holds integers, slices, '...' and None", code="E210") from None


#: an index: an integer, or a tuple of integers, slices, ``...`` and None
INDEX = Kind("an index", _index)


# ---------------------------------------------------------------- deciding signs


def _nonneg(d: Dim) -> bool | None:
    """Whether ``d >= 0`` for every value of its symbols (sizes are at least 1), None if that depends."""
    if isinstance(d, int):
        return d >= 0
    low = high = 0
    low_known = high_known = True
    for mono, coef in d.terms:
        least = 1 if all(isinstance(a, Sym) for a in mono) else 0  # a symbol is >= 1, a floor >= 0
        if not mono:
            low += coef
            high += coef
        elif coef > 0:
            low += coef * least
            high_known = False
        else:
            high += coef * least
            low_known = False
    if low_known and low >= 0:
        return True
    if high_known and high < 0:
        return False
    return None


def _sign(d: Dim, notes: list[str]) -> bool:
    """Whether ``d >= 0``; where the symbols decide it, the sign it has for large sizes (``T - 2``
    is taken as >= 0, ``1 - T`` as negative), written to ``notes``."""
    sign = _nonneg(d)
    if sign is not None:
        return sign
    sign = not all(coef < 0 for mono, coef in d.terms if mono)
    notes.append(f"{d} >= 0" if sign else f"{d} < 0")
    return sign


def _bound(b, size: Dim, default: Dim, notes: list[str]) -> Dim:
    """A slice bound as an offset in ``0..size``, as Python normalises and clamps it; where the
    symbols decide it, what was assumed goes to ``notes``."""
    if b is None:
        return default
    b = dim_value(b)
    if not _sign(b, notes):  # counts from the end
        b = shapes.add(size, b)
        low = _nonneg(b)
        if low is False:
            return 0
        if low is None:
            notes.append(f"{b} >= 0")
    high = _nonneg(shapes.sub(size, b))
    if high is False:
        return size
    if high is None:
        notes.append(f"{dim_value(b)} <= {size}")
    return b


def _length(item: Slice, size: Dim, notes: list[str]) -> Dim:
    step = 1 if item.step is None else item.step
    start = _bound(item.start, size, 0, notes)
    stop = _bound(item.stop, size, size, notes)
    diff = shapes.sub(stop, start)
    sign = _nonneg(diff)
    if sign is False:
        return 0
    if sign is None and not (start == 0 and f"{stop} >= 0" in notes):  # not said twice
        notes.append(f"{start} <= {stop}")
    return diff if step == 1 else shapes.ceildiv(diff, step)


def _position(i: Dim, size: Dim, axis: int, at: int, notes: list[str]) -> None:
    """Checks an integer index ``i`` of a dim of ``size`` (item ``at``): IndexError as torch's."""
    i = dim_value(i)
    if not _sign(i, notes):  # counts from the end: -size <= i
        inside, need = _nonneg(shapes.add(size, i)), f"{size} >= {shapes.neg(i)}"
    else:  # i < size
        inside, need = _nonneg(shapes.sub(shapes.sub(size, i), 1)), f"{size} > {i}"
    if inside is False:
        raise ShapeError(
            "E210",
            f"index {i} is out of bounds for dimension {axis} with size {size}",
            "out of range",
            param=at,
        )
    if inside is None:
        notes.append(need)


# ---------------------------------------------------------------- the shape rule


def indexed(t: TensorType, items: tuple) -> tuple[TensorType, list[tuple[str, int]]]:
    """The type of ``t[items]`` as torch's basic indexing gives it, and what it had to assume of
    symbolic sizes (each with the position of its item); ShapeError (``param``: the item's
    position) as torch's IndexError."""
    ellipses = [at for at, item in enumerate(items) if item is Ellipsis]
    if len(ellipses) > 1:
        raise ShapeError("E210", "an index can only have a single ellipsis ('...')", "second '...'", param=ellipses[1])
    used = sum(1 for item in items if item is not None and item is not Ellipsis)
    dims = t.shape.dims
    if used > len(dims):
        raise ShapeError(
            "E210",
            f"too many indices for a tensor of dimension {len(dims)}: {used} given",
            f"{used} indices",
            help="index at most one item per dim; None adds a dim without using one",
        )
    fill = len(dims) - used
    strides = layout.strides_of(dims, t.strides) if t.strides != layout.UNKNOWN else None
    out: list[Dim] = []
    out_strides: list[Dim] = []
    notes: list[str] = []
    axis = 0
    expanded = list(items) if ellipses else [*items, Ellipsis]
    owners: list[int] = []  # the item of each note
    for at, item in enumerate(expanded):
        owners += [at - 1] * (len(notes) - len(owners))
        if item is Ellipsis:
            out += dims[axis : axis + fill]
            if strides is not None:
                out_strides += strides[axis : axis + fill]
            axis += fill
        elif item is None:
            out.append(1)
            if strides is not None:  # as torch's unsqueeze: the stride of the next dim, times its size
                out_strides.append(shapes.mul(strides[axis], dims[axis]) if axis < len(dims) else 1)
        elif isinstance(item, Slice):
            step = 1 if item.step is None else item.step
            if not isinstance(step, int):
                raise ShapeError(
                    "E211", f"a slice's step must be an integer constant, got {step}", "symbolic", param=at
                )
            if step <= 0:
                raise ShapeError(
                    "E210", "a slice's step must be greater than zero, as torch requires", "step", param=at
                )
            out.append(_length(item, dims[axis], notes))
            if strides is not None:
                out_strides.append(shapes.mul(strides[axis], step))
            axis += 1
        else:
            _position(item, dims[axis], axis, at, notes)
            axis += 1
    if t.strides == layout.UNKNOWN:
        kept = layout.UNKNOWN
    else:
        kept = layout.normal(tuple(out), tuple(out_strides))
    owners += [len(expanded) - 1] * (len(notes) - len(owners))
    return TensorType(Shape(tuple(out), t.shape.rest), t.dtype, kept), list(dict.fromkeys(zip(notes, owners)))


def gathered(t: TensorType, items: tuple, index: TensorType) -> TensorType:
    """The type of ``t[..., index, ...]`` for a tensor ``index`` of integers among ':' and '...'
    items (torch's advanced indexing on one dim): that dim replaced by the index's dims."""
    if index.dtype == "bool":
        raise ShapeError(
            "E211",
            "indexing with a bool mask is not supported: the result's size depends on the mask's values",
            "a mask",
            help="where(mask, x, other) or masked_fill keep the shape",
            param=items.index(TensorIndex()),
        )
    if index.dtype not in shapes.INTEGER_DTYPES:
        raise ShapeError(
            "E210",
            f"tensors used as indices must be long, int, byte or bool tensors, got {index.dtype}",
            "not integers",
            param=items.index(TensorIndex()),
        )
    dims = t.shape.dims
    used = sum(1 for item in items if item is not None and item is not Ellipsis)
    if used > len(dims):
        raise ShapeError("E210", f"too many indices for a tensor of dimension {len(dims)}: {used} given", "indices")
    axis = 0
    for at, item in enumerate(items):
        if isinstance(item, TensorIndex):
            break
        if item is Ellipsis:
            axis += len(dims) - used
        elif item == Slice():
            axis += 1
        else:
            raise ShapeError(
                "E211",
                "a tensor index combines only with ':' and '...' items",
                "not ':' or '...'",
                help="index in two steps: x[:, 0][index]",
                param=at,
            )
    for at, item in enumerate(items):
        if not (item is Ellipsis or item == Slice() or isinstance(item, TensorIndex)):
            raise ShapeError(
                "E211", "a tensor index combines only with ':' and '...' items", "not ':' or '...'", param=at
            )
    out = (*dims[:axis], *index.shape.dims, *dims[axis + 1 :])
    strides = None if t.strides is None else layout.UNKNOWN  # a new tensor, as torch's index kernel writes it
    return TensorType(Shape(out, t.shape.rest or index.shape.rest), t.dtype, strides)


# ---------------------------------------------------------------- emission


def _runtime_text(bound: Runtime, var: str) -> str:
    """``x.size(2) - 2``: the bound in terms of the sizes of ``var``."""
    return str(python_size(bound.sizes, (), [var]))


def _bound_text(bound, var: str) -> str:
    if bound is None:
        return ""
    if isinstance(bound, Runtime):
        return _runtime_text(bound, var)
    return str(bound)


def _item_text(item, var: str, index_var: str = "") -> str:
    if isinstance(item, TensorIndex):
        return index_var
    if item is Ellipsis:
        return "..."
    if item is None:
        return "None"
    if isinstance(item, Slice):
        parts = [_bound_text(item.start, var), _bound_text(item.stop, var)]
        if item.step is not None:
            parts.append(str(item.step))
        if all(b is None or type(b) is int for b in item):
            return ":".join(parts)
        # as ruff formats a slice with a call in it: spaces around ':' beside a written part
        text = parts[0]
        for before, part in zip(parts, parts[1:]):
            text += " :" if before else ":"
            text += f" {part}" if part else ""
        return text
    if isinstance(item, Runtime):
        return _runtime_text(item, var)
    return str(item)


def subscript_text(var: str, items: tuple, index_var: str = "") -> str:
    """``x[:, 0]``, ``table[index]``: the index as a person writes it."""
    return f"{var}[{', '.join(_item_text(item, var, index_var) for item in items)}]"


# ---------------------------------------------------------------- ONNX


def _onnx_bound(g, x: str, bound) -> tuple[str | None, int | None]:
    """A bound as an ONNX value (a 1-element int64 tensor) when it is symbolic, or as an int."""
    if not isinstance(bound, Runtime):
        return None, bound
    return g.unsqueeze(onnx_size(g, bound.sizes, (), [x]), [0]), None


def _onnx(g, x: str, t: TensorType, items: tuple) -> str:
    """Slice (+ Squeeze for integers, Unsqueeze for None) computing ``x[items]``."""
    import numpy as np

    big = np.iinfo(np.int64).max
    rank = t.shape.rank
    used = sum(1 for item in items if item is not None and item is not Ellipsis)
    expanded = list(items) if Ellipsis in items else [*items, Ellipsis]
    axis = 0
    starts, ends, axes, steps, squeezed, inserted = [], [], [], [], [], []
    out_axis = 0
    for item in expanded:
        if item is Ellipsis:
            axis += rank - used
            out_axis += rank - used
            continue
        if item is None:
            inserted.append(out_axis)
            out_axis += 1
            continue
        if isinstance(item, Slice):
            if item.start is None and item.stop is None and item.step in (None, 1):
                axis += 1
                out_axis += 1
                continue
            start = item.start if item.start is not None else 0
            stop = item.stop if item.stop is not None else big
            starts.append(start)
            ends.append(stop)
            steps.append(item.step or 1)
            out_axis += 1
        else:  # an integer: the one item at it, then the dim goes
            starts.append(item)
            ends.append(None if isinstance(item, Runtime) else (item + 1 if item != -1 else big))
            steps.append(1)
            squeezed.append(axis)
            if isinstance(item, Runtime):  # counted from the start, so that -1 + 1 is no empty slice
                starts[-1] = ("at", item, axis)
                ends[-1] = ("after", item, axis)
        axes.append(axis)
        axis += 1
    y = x
    if axes:
        if any(isinstance(v, (Runtime, tuple)) for v in starts + ends):
            y = g.op("Slice", [x, _onnx_list(g, x, starts), _onnx_list(g, x, ends), g.const(axes), g.const(steps)])
        else:
            y = g.slice(x, starts, ends, axes, steps)
    if squeezed:
        y = g.squeeze(y, squeezed)
    if inserted:
        y = g.unsqueeze(y, inserted)
    return y


def _onnx_list(g, x: str, values: list) -> str:
    """A 1-D int64 tensor of ``values``, symbolic ones computed from ``x``'s shape."""
    pieces = []
    for value in values:
        if isinstance(value, tuple) and value and value[0] in ("at", "after"):
            # an integer item at run time: (i + size) % size, the position Python's i means
            size = g.op("Shape", [x], start=value[2], end=value[2] + 1)
            computed, _ = _onnx_bound(g, x, value[1])
            at = g.op("Mod", [g.op("Add", [computed, size]), size])
            pieces.append(at if value[0] == "at" else g.op("Add", [at, g.const([1])]))
        elif isinstance(value, Runtime):
            pieces.append(_onnx_bound(g, x, value)[0])
        else:
            pieces.append(g.const([value]))
    return pieces[0] if len(pieces) == 1 else g.op("Concat", pieces, axis=0)


@register
class GetItem(Operator):
    """``input[index]``: torch's basic indexing (integers, slices, ``...``, None); a view of the input."""

    name = "getitem"
    params = (Param("input", TENSOR), Param("index", INDEX))
    examples = (
        ("x[:, 0]", "x: [2, 3]", "[2]"),
        ("x[..., :-2]", "x: [2, 3, 5]", "[2, 3, 3]"),
        ("x[:, None]", "x: [2, 3]", "[2, 1, 3]"),
        ("x[None, ..., None]", "x: [4]", "[1, 4, 1]"),
        ("x[1:7:2, -1]", "x: long[9, 4]", "int64[3]"),
        ("x[-3:, 5:]", "x: [2, 4]", "[2, 0]"),
        ("x[::3, 2:-5]", "x: bool[7, 6]", "bool[3, 0]"),
        ("x[0]", "x: [3, 2]", "[2]"),
        ("x[-4]", "x: [3, 2]", "E210"),
        ("x[:, 2]", "x: [3, 2]", "E210"),
        ("x[0, 0, 0]", "x: [3, 2]", "E210"),
        ("x[None, 1, :, 0]", "x: [3, 2]", "E210"),
        ("x[index]", "x: [4, 2], index: [3]", "E210"),
    )

    @classmethod
    def slot_values(cls, args: dict) -> dict[str, Any]:
        """Each integer item and slice bound, by ``"<item>"`` or ``"<item>.<start|stop|step>"``:
        a block's ``x[:, first]`` or ``x[..., :-chomp]`` is one class for every ``first``."""
        out: dict[str, Any] = {}
        for at, item in enumerate(args["index"]):
            if isinstance(item, Slice):
                out.update((f"{at}.{part}", v) for part, v in zip(Slice._fields, item) if type(v) is int)
            elif type(item) is int:
                out[str(at)] = item
        return out

    @classmethod
    def slot_name(cls, key: str, args: dict) -> str:
        return key.rpartition(".")[2] or "index"  # x[..., : L - chomp]: self.stop

    @classmethod
    def with_slots(cls, args: dict, values: dict[str, Any]) -> dict:
        items = list(args["index"])
        for key, value in values.items():
            at, _, part = key.partition(".")
            item = items[int(at)]
            items[int(at)] = item._replace(**{part: value}) if part else value
        return {**args, "index": tuple(items)}

    @classmethod
    def output(cls, inputs: list[TensorType], args: dict) -> list[TensorType]:
        if len(inputs) == 2:
            return [gathered(inputs[0], args["index"], inputs[1])]
        return [indexed(inputs[0], args["index"])[0]]

    @classmethod
    def forward_statements(cls, node, inputs: list[str], outputs: list[str]) -> list[Assign]:
        index_var = inputs[1] if len(inputs) == 2 else ""
        return [assign(outputs[0], Code(subscript_text(inputs[0], node.args["index"], index_var)))]

    @classmethod
    def to_onnx(cls, g, node, inputs: list[str], types: list[TensorType]) -> list[str]:
        items = node.args["index"]
        if len(inputs) == 2:  # one tensor index among ':' and '...': Gather on its dim
            rank = types[0].shape.rank
            used = sum(1 for item in items if item is not None and item is not Ellipsis)
            at = items.index(TensorIndex())
            axis = sum(rank - used if item is Ellipsis else 1 for item in items[:at])
            return [g.op("Gather", inputs, axis=axis)]
        return [_onnx(g, inputs[0], types[0], items)]
