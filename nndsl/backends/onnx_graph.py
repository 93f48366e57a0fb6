"""The ONNX graph under construction: nodes, initializers and the opset-aware helpers that the
layers' ONNX mappings call (``nndsl.layers`` never imports onnx; it is handed a builder)."""

from __future__ import annotations

import sys

import numpy as np
import onnx
from onnx import TensorProto, helper

from nndsl import shapes

#: the dtypes a spec declares, as ONNX element types
ELEMENT_TYPES = {
    "float32": TensorProto.FLOAT,
    "int64": TensorProto.INT64,
    "int32": TensorProto.INT32,
    "bool": TensorProto.BOOL,
}


class NotExportable(Exception):
    """A layer configuration with no ONNX equivalent; ``help`` says what to change."""

    def __init__(self, message: str, help: str | None = None):
        super().__init__(message)
        self.message = message
        self.help = help


class GraphBuilder:
    """Nodes in execution order and initializers, with unique value names."""

    def __init__(self, opset: int):
        self.opset = opset
        self.nodes: list[onnx.NodeProto] = []
        # small constants live in the model proto; weights stay numpy arrays until the file is
        # written (write_model streams their bytes: no copy into protobuf and out again)
        self.model = onnx.ModelProto()
        self.initializers = self.model.graph.initializer
        self.weights: dict[str, np.ndarray] = {}
        self._taken: set[str] = set()
        self._constants: dict[tuple, str] = {}
        self._weight_keys: dict[tuple, str] = {}  # (state_dict key, shape) -> its initializer
        self._node_count: dict[str, int] = {}
        self.scope = ""  # the layer being emitted (its state_dict prefix): names its nodes

    # -- names, nodes, constants

    def fresh(self, hint: str) -> str:
        base = hint or "v"
        name, i = base, 1
        while name in self._taken:
            i += 1
            name = f"{base}_{i}"
        self._taken.add(name)
        return name

    def reserve(self, name: str) -> None:
        self._taken.add(name)

    def op(self, op_type: str, inputs: list[str], outputs: int = 1, **attrs) -> str | list[str]:
        """Append one node; returns its output name (a list when ``outputs`` > 1)."""
        hint = f"{self.scope}/{op_type}" if self.scope else op_type
        outs = [self.fresh(hint if outputs == 1 else f"{hint}_{i}") for i in range(outputs)]
        count = self._node_count[hint] = self._node_count.get(hint, 0) + 1
        node_name = hint if count == 1 else f"{hint}_{count}"
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, name=node_name, **attrs))
        return outs[0] if outputs == 1 else outs

    def const(self, value, dtype=np.int64, hint: str = "const") -> str:
        """An initializer holding ``value``; equal small constants are shared."""
        array = np.asarray(value, dtype=dtype)
        key = (array.dtype.str, array.shape, array.tobytes()) if array.size <= 64 else None
        if key is not None and key in self._constants:
            return self._constants[key]
        name = self.fresh(hint)
        self._add_initializer(name, array)
        if key is not None:
            self._constants[key] = name
        return name

    def weight(self, array: np.ndarray, name: str) -> str:
        """A float32 initializer named after its state_dict key (``fc1.weight``); a module
        shared by several uses asks again for the same key and gets the same initializer."""
        array = np.ascontiguousarray(array, dtype=np.float32)
        key = (name, array.shape)
        known = self._weight_keys.get(key)
        if known is not None and np.array_equal(self.weights[known], array):
            return known
        self._weight_keys[key] = name = self.fresh(name)
        self.weights[name] = array
        return name

    def _add_initializer(self, name: str, array: np.ndarray) -> None:
        tensor = self.initializers.add()
        tensor.name = name
        tensor.data_type = helper.np_dtype_to_tensor_dtype(array.dtype)
        tensor.dims.extend(array.shape)
        tensor.raw_data = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()

    def scalar(self, value: float) -> str:
        return self.const(np.float32(value), np.float32, "scalar")

    # -- opset-aware helpers (the mappings call these, not the raw ops, where versions differ)

    def reduce(self, op_type: str, x: str, axes, keepdims: bool) -> str:
        """ReduceMean/ReduceSum/ReduceMax over ``axes``: an input from opset 18 (ReduceSum: 13)."""
        axes = list(axes)
        if op_type == "ReduceSum" or self.opset >= 18:
            return self.op(op_type, [x, self.const(axes)], keepdims=int(keepdims))
        return self.op(op_type, [x], axes=axes, keepdims=int(keepdims))

    def squeeze(self, x: str, axes) -> str:
        return self.op("Squeeze", [x, self.const(list(axes))])

    def unsqueeze(self, x: str, axes) -> str:
        return self.op("Unsqueeze", [x, self.const(list(axes))])

    def split(self, x: str, sizes, axis: int) -> list[str]:
        outs = self.op("Split", [x, self.const(list(sizes))], outputs=len(sizes), axis=axis)
        return [outs] if len(sizes) == 1 else outs

    def slice(self, x: str, starts, ends, axes, steps=None) -> str:
        inputs = [x, self.const(list(starts)), self.const(list(ends)), self.const(list(axes))]
        if steps is not None:
            inputs.append(self.const(list(steps)))
        return self.op("Slice", inputs)

    def transpose(self, x: str, perm) -> str:
        return self.op("Transpose", [x], perm=list(perm))

    def project(self, x: str, weight: np.ndarray, weight_key: str, bias=None, bias_key: str = "") -> str:
        """``x @ weight^T + bias`` for a [out, in] weight and any rank of ``x`` (torch's Linear rule),
        the transpose done once here rather than at every run."""
        known = self._weight_keys.get((weight_key, weight.shape))
        if known is not None and np.array_equal(self.weights[known], weight):  # a tied weight, held as is
            y = self.op("MatMul", [x, self.transpose(known, (1, 0))])
        else:
            y = self.op("MatMul", [x, self.weight(weight.T, weight_key)])
        return y if bias is None else self.op("Add", [y, self.weight(bias, bias_key)])

    def shape_target(self, x: str, in_dims: tuple, out_dims: tuple) -> str:
        """A 1-D int64 tensor of ``out_dims`` for Reshape: numbers as constants, a symbolic size
        taken from ``x``'s own shape where the input has it, one other symbolic size as -1."""
        parts: list[tuple[str, int]] = []
        unknown = 0
        for d in out_dims:
            if isinstance(d, int):
                parts.append(("const", d))
                continue
            at = next((j for j, have in enumerate(in_dims) if shapes.known_equal(have, d) is True), None)
            if at is not None:
                parts.append(("input", at))
            else:
                unknown += 1
                parts.append(("const", -1))
        if unknown > 1:
            listed = ", ".join(str(d) for d in out_dims)
            raise NotExportable(
                f"the target shape [{listed}] has more than one size that is neither a number nor an input size"
            )
        if all(kind == "const" for kind, _ in parts):
            return self.const([v for _, v in parts])
        pieces: list[str] = []
        run: list[int] = []
        for kind, v in parts:
            if kind == "const":
                run.append(v)
                continue
            if run:
                pieces.append(self.const(run))
                run = []
            pieces.append(self.op("Shape", [x], start=v, end=v + 1))
        if run:
            pieces.append(self.const(run))
        return pieces[0] if len(pieces) == 1 else self.op("Concat", pieces, axis=0)

    def reshape(self, x: str, in_dims: tuple, out_dims: tuple) -> str:
        return self.op("Reshape", [x, self.shape_target(x, in_dims, out_dims)])


# ---------------------------------------------------------------- writing


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _field(number: int, length: int) -> bytes:
    """The key and length of a length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(length)


#: field numbers in onnx.proto: ModelProto.graph, GraphProto.initializer, TensorProto.raw_data
_MODEL_GRAPH, _GRAPH_INITIALIZER, _TENSOR_RAW_DATA = 7, 5, 9


def write_model(model: onnx.ModelProto, weights: dict[str, np.ndarray], handle) -> int:
    """Write ``model`` with ``weights`` as further initializers, streaming each array's bytes.

    Protobuf merges repeated occurrences of a message field, so the file is the model's own
    serialisation followed by one ``graph { initializer { ... } }`` record per weight: exactly
    what onnx.save would write for the model holding them, without copying 45 MB into protobuf
    and out again. Returns the number of bytes written.
    """
    total = handle.write(model.SerializeToString())
    for name, array in weights.items():
        head = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=array.shape)
        head_bytes = head.SerializeToString()
        data = memoryview(array if sys.byteorder == "little" else array.byteswap()).cast("B")
        raw = _field(_TENSOR_RAW_DATA, data.nbytes)
        tensor_len = len(head_bytes) + len(raw) + data.nbytes
        initializer = _field(_GRAPH_INITIALIZER, tensor_len)
        graph = _field(_MODEL_GRAPH, len(initializer) + tensor_len)
        for piece in (graph, initializer, head_bytes, raw, data):
            total += handle.write(piece)
    return total


def dim_proto(dim) -> int | str:
    """A dimension for a value_info: a number, or the symbol's (or expression's) text."""
    return dim if isinstance(dim, int) else str(dim)


def value_info(name: str, dtype: str, dims: tuple) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(
        name, ELEMENT_TYPES.get(dtype, TensorProto.FLOAT), [dim_proto(d) for d in dims]
    )
