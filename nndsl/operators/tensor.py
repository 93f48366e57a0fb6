"""Operations on one tensor's values and shape: expand (a broadcast view), roll (a cyclic shift),
masked_fill and where (choosing values by a bool mask)."""

from __future__ import annotations

from typing import Any

from nndsl import layout, ops, shapes
from nndsl.layers.base import FLOAT, INT, ArgValueError, Kind, Param, ShapeError, WrongType, as_int
from nndsl.operators.base import TENSOR, TENSOR_OR_NUMBER, Operator, dim_of, onnx_dtype, onnx_promoted
from nndsl.operators.registry import register
from nndsl.operators.runtime import onnx_size, python_size
from nndsl.shapes import Dim, Shape, TensorType
from nndsl.statements import Assign, Call, Code, assign


def _sizes(value: Any) -> tuple:
    """``expand``'s sizes: integers (-1 keeps a size) or symbolic sizes, as a tuple."""
    if type(value) is tuple and len(value) == 1 and type(value[0]) is tuple:
        value = value[0]  # expand(x, (N, -1))
    items = value if type(value) is tuple else (value,)
    for v in items:
        if isinstance(v, bool) or not isinstance(v, (int, shapes.Poly)):
            raise WrongType
        if isinstance(v, int) and v < -1:
            raise ArgValueError(f"expand's sizes are -1 or non-negative, got {v}", code="E207")
    return tuple(items)


def _ints(value: Any) -> tuple[int, ...]:
    items = value if type(value) is tuple else (value,)
    return tuple(as_int(v) for v in items)


def _optional_ints(value: Any) -> tuple[int, ...] | None:
    return None if value is None else _ints(value)


@register
class Expand(Operator):
    """``x.expand(*sizes)``: a view with size-1 dims stretched (without copying) to the sizes
    given; -1 keeps a size, and new leading dims may be added. Sizes may be symbolic sizes of the
    inputs (``expand(cls_token, N, -1, -1)``), read at run time."""

    name, varargs = "expand", "size"
    params = (Param("input", TENSOR), Param("size", Kind("sizes (integers or sizes of the inputs)", _sizes)))
    sizes = ("size",)
    examples = (
        ("expand(a, 4, -1)", "a: [1, 3]", "[4, 3]"),
        ("expand(a, 2, -1, 5)", "a: [3, 1]", "[2, 3, 5]"),
        ("expand(a, N, -1, -1)", "a: [1, 1, 8], x: [N, 3]", "[N, 1, 8]"),
        ("expand(a, 0, 3)", "a: [1, 3]", "[0, 3]"),
        ("expand(a, -1, 4)", "a: [1, 3]", "E208"),
        ("expand(a, -1, 2, 3)", "a: [2, 3]", "E208"),
        ("expand(a, 3)", "a: [1, 3]", "E208"),
    )

    @classmethod
    def output(cls, inputs: list[TensorType], args: dict) -> list[TensorType]:
        t, size = inputs[0], args["size"]
        if t.shape.rest:
            raise ShapeError("E208", "expand needs an input of known rank", "unknown rank")
        have = t.shape.dims
        if len(size) < len(have):
            raise ShapeError(
                "E208",
                f"expand needs at least as many sizes as the input has dims: {len(size)} for {t.shape}",
                f"{len(size)} sizes for {len(have)} dims",
            )
        lead = len(size) - len(have)
        dims: list[Dim] = []
        for i, want in enumerate(size):
            if i < lead:
                if want == -1:
                    raise ShapeError(
                        "E208", f"expand cannot keep (-1) the new leading dim {i}", "-1 in a new dim", "give its size"
                    )
                dims.append(want)
                continue
            old = have[i - lead]
            if want == -1 or shapes.known_equal(want, old) or old == 1:
                dims.append(old if want == -1 else want)
            elif shapes.known_equal(want, old) is False:
                raise ShapeError(
                    "E208",
                    f"expand cannot stretch dim {i - lead} of {t.shape} (size {old}) to {want}: only size-1 dims stretch",
                    f"size {old} to {want}",
                )
            else:
                dims.append(want)
        same = lead == 0 and all(shapes.known_equal(d, o) for d, o in zip(dims, have))
        return [TensorType(Shape(tuple(dims)), t.dtype, t.strides if same else layout.UNKNOWN)]

    @classmethod
    def unverified(cls, inputs: list[TensorType], args: dict) -> list[str]:
        have, size = inputs[0].shape.dims, args["size"]
        pairs = zip(size[len(size) - len(have) :], have)
        return [f"{w} == {o}" for w, o in pairs if w != -1 and o != 1 and shapes.known_equal(w, o) is None]

    @classmethod
    def forward_statements(cls, node, inputs: list[str], outputs: list[str]) -> list[Assign]:
        table = node.args["runtime"]
        sizes = tuple(python_size(d, table, inputs) for d in node.args["size"])
        return [assign(outputs[0], Call(f"{inputs[0]}.expand", sizes))]

    @classmethod
    def to_onnx(cls, g, node, inputs: list[str], types: list[TensorType]) -> list[str]:
        table = node.args["runtime"]
        # ONNX's Expand broadcasts: a 1 keeps the input's size, as -1 does in torch
        parts = [g.unsqueeze(onnx_size(g, 1 if d == -1 else d, table, inputs), [0]) for d in node.args["size"]]
        return [g.op("Expand", [inputs[0], g.op("Concat", parts, axis=0)])]


@register
class Roll(Operator):
    """torch.roll: the values shifted cyclically by ``shifts`` along ``dims`` (one shift per dim);
    without dims, along the flattened tensor, whose shape is then restored."""

    name = "roll"
    slots = ("shifts",)
    params = (
        Param("input", TENSOR),
        Param("shifts", Kind("an integer or a list of integers", _ints)),
        Param("dims", Kind("an integer or a list of integers", _optional_ints), None),
    )
    examples = (
        ("roll(a, 1, 0)", "a: [4, 3]", "[4, 3]"),
        ("roll(a, (-3, 5), (1, 2))", "a: [2, 4, 3]", "[2, 4, 3]"),
        ("roll(a, 2)", "a: long[3, 2]", "int64[3, 2]"),
        ("roll(a, -1, dims=-1)", "a: [N, 6]", "[N, 6]"),
        ("roll(a, (1, 2), 0)", "a: [3, 4]", "E207"),
        ("roll(a, 1, 2)", "a: [3, 4]", "E207"),
    )

    @classmethod
    def output(cls, inputs: list[TensorType], args: dict) -> list[TensorType]:
        t, shifts, dims = inputs[0], args["shifts"], args["dims"]
        if dims is None:
            if len(shifts) != 1:
                raise ShapeError("E207", "roll without dims takes one shift", f"{len(shifts)} shifts", param="shifts")
        else:
            if len(shifts) != len(dims):
                raise ShapeError(
                    "E207",
                    f"roll needs one shift per dim: {len(shifts)} shifts for {len(dims)} dims",
                    "shifts and dims differ in number",
                )
            for d in dims:
                dim_of(d, t.shape.rank, "roll")
        return [TensorType(t.shape, t.dtype)]

    @classmethod
    def forward_statements(cls, node, inputs: list[str], outputs: list[str]) -> list[Assign]:
        shifts, dims = node.args["shifts"], node.args["dims"]
        if not isinstance(shifts, Code):  # else a block class's attribute
            shifts = shifts[0] if len(shifts) == 1 else shifts
        args: tuple = (Code(inputs[0]), shifts)
        if dims is not None:
            args += (dims[0] if len(dims) == 1 else dims,)
        return [assign(outputs[0], Call("torch.roll", args))]

    @classmethod
    def to_onnx(cls, g, node, inputs: list[str], types: list[TensorType]) -> list[str]:
        x, t = inputs[0], types[0]
        shifts, dims = node.args["shifts"], node.args["dims"]
        if dims is None:
            flat = g.op("Reshape", [x, g.const([-1])])
            rolled = _rolled(g, flat, shifts[0], 0, shapes.prod(t.shape.dims))
            return [g.op("Reshape", [rolled, g.op("Shape", [x])])]
        for shift, dim in zip(shifts, dims):
            axis = dim % t.shape.rank
            x = _rolled(g, x, shift, axis, t.shape.dims[axis])
        return [x]


def _rolled(g, x: str, shift: int, axis: int, size: Dim) -> str:
    """``x`` rolled by ``shift`` along ``axis``: its last ``shift % size`` elements, then the rest."""
    import numpy as np

    if isinstance(size, int):
        if size == 0 or shift % size == 0:
            return x
        cut = g.const([size - shift % size])
    else:  # the size at run time: Mod follows the divisor's sign, as Python's %
        n = g.op("Gather", [g.op("Shape", [x]), g.const(axis)], axis=0)
        cut = g.unsqueeze(g.op("Sub", [n, g.op("Mod", [g.const(np.asarray(shift, np.int64)), n], fmod=0)]), [0])
    end, axes = g.const([np.iinfo(np.int64).max]), g.const([axis])
    tail = g.op("Slice", [x, cut, end, axes])
    head = g.op("Slice", [x, g.const([0]), cut, axes])
    return g.op("Concat", [tail, head], axis=axis)


def _need_bool(what: str, t: TensorType) -> None:
    if t.dtype != "bool":
        raise ShapeError(
            "E204", f"{what} must be a bool tensor, got {t.dtype}", f"{t.dtype} {what}", "compare to make one: x > 0"
        )


def _fill_const(g, value: float, dtype: str) -> str:
    import numpy as np

    kind = {"int32": np.int32, "int64": np.int64}.get(onnx_dtype(dtype), np.float32)
    return g.const(np.asarray(int(value) if kind is not np.float32 else value, dtype=kind), kind, "fill")


@register
class MaskedFill(Operator):
    """torch.masked_fill: ``input`` with ``value`` where the bool ``mask`` is True (the mask
    broadcasts with the input; a float value in an integer tensor is truncated)."""

    name = "masked_fill"
    params = (Param("input", TENSOR), Param("mask", TENSOR), Param("value", FLOAT))
    examples = (
        ("masked_fill(a, m, 0.0)", "a: [2, 3], m: bool[2, 3]", "[2, 3]"),
        ("masked_fill(a, m, -1e9)", "a: [2, 4, 4], m: bool[4, 4]", "[2, 4, 4]"),
        ("masked_fill(a, m, 1)", "a: [3], m: bool[2, 3]", "[2, 3]"),
        ("masked_fill(a, m, 7)", "a: long[3], m: bool[3]", "int64[3]"),
        ("masked_fill(a, m, 0.0)", "a: [2, 3], m: [2, 3]", "E204"),
        ("masked_fill(a, m, 0.0)", "a: [2, 3], m: bool[3, 3]", "E208"),
    )

    @classmethod
    def output(cls, inputs: list[TensorType], args: dict) -> list[TensorType]:
        t, mask = inputs
        _need_bool("masked_fill's mask", mask)
        out, _ = ops.broadcast("mul", t, mask)
        return [TensorType(out.shape, t.dtype)]

    @classmethod
    def unverified(cls, inputs: list[TensorType], args: dict) -> list[str]:
        return ops.broadcast("mul", *inputs)[1]

    @classmethod
    def forward_statements(cls, node, inputs: list[str], outputs: list[str]) -> list[Assign]:
        return [assign(outputs[0], Call("torch.masked_fill", (Code(inputs[0]), Code(inputs[1]), node.args["value"])))]

    @classmethod
    def to_onnx(cls, g, node, inputs: list[str], types: list[TensorType]) -> list[str]:
        mask = g.op("Cast", [inputs[1]], to=9)  # bool tensors are exported as float32
        return [g.op("Where", [mask, _fill_const(g, node.args["value"], types[0].dtype), inputs[0]])]


@register
class Where(Operator):
    """torch.where: ``input`` where the bool ``condition`` is True, else ``other``; the three
    broadcast together and the values' dtypes promote; a number may stand for either value
    (``where(keep, x, 0.0)``)."""

    name = "where"
    params = (Param("condition", TENSOR), Param("input", TENSOR_OR_NUMBER), Param("other", TENSOR_OR_NUMBER))
    examples = (
        ("where(c, a, b)", "c: bool[2, 3], a: [2, 3], b: [3]", "[2, 3]"),
        ("where(c, a, b)", "c: bool[3], a: long[2, 1], b: int32[3]", "int64[2, 3]"),
        ("where(c, a, 0.5)", "c: bool[2, 3], a: long[3]", "[2, 3]"),
        ("where(c, 2, a)", "c: bool[3], a: int32[2, 1]", "int32[2, 3]"),
        ("where(c, 1.0, 0)", "c: bool[4]", "[4]"),
        ("where(c, a, b)", "c: [3], a: [3], b: [3]", "E204"),
        ("where(c, a, b)", "c: bool[4], a: [3], b: [3]", "E208"),
    )

    @classmethod
    def output(cls, inputs: list[TensorType], args: dict) -> list[TensorType]:
        c, *values = inputs
        _need_bool("where's condition", c)
        numbers = [args[p] for p in ("input", "other") if args[p] is not None]
        shape = c
        for t in values:
            shape, _ = ops.broadcast("mul", shape, t)
        if len(values) == 2:
            dtype = ops.result_dtype(values[0].dtype, values[1].dtype)
        elif values:
            dtype = ops.scalar_result_dtype("mul", values[0].dtype, numbers[0])
        else:
            dtype = "float32" if any(isinstance(n, float) for n in numbers) else "int64"
        return [TensorType(shape.shape, dtype)]

    @classmethod
    def unverified(cls, inputs: list[TensorType], args: dict) -> list[str]:
        texts, shape = [], inputs[0]
        for t in inputs[1:]:
            shape, unverified = ops.broadcast("mul", shape, t)
            texts += unverified
        return texts

    @classmethod
    def forward_statements(cls, node, inputs: list[str], outputs: list[str]) -> list[Assign]:
        rest = iter(inputs[1:])
        values = [Code(next(rest)) if node.args[p] is None else node.args[p] for p in ("input", "other")]
        return [assign(outputs[0], Call("torch.where", (Code(inputs[0]), *values)))]

    @classmethod
    def to_onnx(cls, g, node, inputs: list[str], types: list[TensorType]) -> list[str]:
        dtype = node.types[0].dtype
        tensors = iter(onnx_promoted(g, inputs[1:], types[1:], dtype))
        values = [
            next(tensors) if node.args[p] is None else _fill_const(g, node.args[p], dtype) for p in ("input", "other")
        ]
        return [g.op("Where", [g.op("Cast", [inputs[0]], to=9), *values])]


@register
class TransposeFunction(Operator):
    """torch.transpose as a function (``k.transpose(-2, -1)``, attention's ``q @ transpose(k, -2, -1)``):
    the layer Transpose's rule, a view with ``dim0`` and ``dim1`` swapped."""

    name = "transpose"
    params = (Param("input", TENSOR), Param("dim0", INT), Param("dim1", INT))
    examples = (
        ("transpose(a, -2, -1)", "a: [2, 3, 4]", "[2, 4, 3]"),
        ("matmul(a, transpose(b, 0, 1))", "a: [N, 3], b: [5, 3]", "[N, 5]"),
        ("transpose(a, 0, 0)", "a: long[3]", "int64[3]"),
        ("transpose(a, 0, 2)", "a: [2, 3]", "E202"),
    )

    @classmethod
    def output(cls, inputs: list[TensorType], args: dict) -> list[TensorType]:
        from nndsl.layers.tensor_ops import Transpose

        if inputs[0].shape.rest:
            raise ShapeError("E208", "transpose needs an input of known rank", "unknown rank")
        return [Transpose.output(dict(args), inputs[0], None)]

    @classmethod
    def forward_statements(cls, node, inputs: list[str], outputs: list[str]) -> list[Assign]:
        return [assign(outputs[0], Call(f"{inputs[0]}.transpose", (node.args["dim0"], node.args["dim1"])))]

    @classmethod
    def to_onnx(cls, g, node, inputs: list[str], types: list[TensorType]) -> list[str]:
        rank = types[0].shape.rank
        perm = list(range(rank))
        if rank:
            i, j = node.args["dim0"] % rank, node.args["dim1"] % rank
            perm[i], perm[j] = perm[j], perm[i]
        return [inputs[0] if perm == sorted(perm) else g.transpose(inputs[0], perm)]
