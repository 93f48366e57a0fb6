"""ONNX backend: an inference graph built from the checked IR with onnx.helper.

Each layer class maps itself (``Layer.to_onnx``); this module walks a model's graph (blocks,
residuals and repetitions inlined), names the inputs, outputs and symbolic dimensions after
the spec, ties every weight to its state_dict key, folds BatchNorm into the convolution or
linear layer before it and folds constant subgraphs, so the graph is ready for inference.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Mapping

import numpy as np
import onnx
from onnx import helper, numpy_helper

from nndsl.backends.onnx_graph import GraphBuilder, NotExportable, value_info, write_model
from nndsl.backends.onnx_opsets import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET
from nndsl.ir import (
    BlockNode,
    Graph,
    LayerNode,
    ModelIR,
    OpNode,
    ParamNode,
    Program,
    ResidualNode,
    SeqNode,
    Visitor,
    subgraphs,
    walk,
)
from nndsl.lowering import lower
from nndsl.operators import lookup as lookup_operator
from nndsl.version import __version__

#: BatchNorm folds into these when it reads their output alone
_FOLD_INTO = {"Conv1d", "Conv2d", "Conv3d", "Linear"}
_BATCH_NORMS = {"BatchNorm1d", "BatchNorm2d", "BatchNorm3d"}
#: the input dtypes an export writes as they are (others would silently become float32); a bool
#: input (a mask) is held as float32 0 and 1 inside the graph, cast at the input and the outputs
EXPORTED_DTYPES = ("float32", "int64", "int32", "bool")


class ExportProblem(Exception):
    """Something the export cannot do, tied to the layer (or block use) it concerns when known."""

    def __init__(self, message: str, node=None, help: str | None = None, code: str = "E601"):
        super().__init__(message)
        self.message = message
        self.node = node
        self.help = help
        self.code = code


def check_opset(opset: int) -> None:
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ExportProblem(
            f"opset {opset} cannot be honoured: nndsl exports opsets {MIN_OPSET} to {MAX_OPSET}",
            help=f"pass opset=N with N from {MIN_OPSET} to {MAX_OPSET} (default {DEFAULT_OPSET})",
        )
    known = onnx.defs.onnx_opset_version()
    if opset > known:
        raise ExportProblem(
            f"opset {opset} is newer than the installed onnx package knows (up to {known})",
            help="upgrade onnx, or pass a lower opset=N",
        )


def unexportable(model: ModelIR, opset: int) -> list[tuple[LayerNode, str]]:
    """Every layer of the model that cannot be exported, with the reason: asked before any work.
    (Tensor operations all can: the checker already refuses a split of a symbolic size.)"""
    found = []
    for node in model.layers:
        if not node.layer.exports_to_onnx():
            found.append((node, "there is no ONNX mapping for it yet"))
            continue
        reason = node.layer.onnx_unsupported(node, opset)
        if reason:
            found.append((node, reason))
    return found


# ---------------------------------------------------------------- weights


class LayerWeights:
    """One layer's tensors by their state_dict names (``weight``, ``bias``, ``weight_ih_l0``)."""

    def __init__(self, store: WeightStore, prefix: str, node: LayerNode):
        self.store = store
        self.prefix = prefix
        self.node = node
        #: the names of the call's extra tensor inputs (key, attn_mask, h_0), by forward name
        self.inputs: dict[str, str] = {}

    def key(self, name: str) -> str:
        """The state_dict key of one of its tensors; a tied weight's is the layer's it is taken from."""
        key = f"{self.prefix}.{name}"
        return self.store.tied.get(key, key)

    def get(self, name: str) -> np.ndarray | None:
        return self.store.take(self.key(name))

    def __call__(self, name: str) -> np.ndarray:
        value = self.get(name)
        if value is None:
            raise ExportProblem(f"the weights have no {self.key(name)!r} for this layer", self.node, code="E602")
        return value


class _FoldedWeights(LayerWeights):
    """A convolution or linear layer's weights with the BatchNorm after it folded in."""

    def __init__(self, store: WeightStore, prefix: str, node: LayerNode, norm: LayerWeights, eps: float):
        super().__init__(store, prefix, node)
        self.norm = norm
        self.eps = eps
        self._scale = None

    def _fold(self):
        if self._scale is None:
            mean, var = self.norm("running_mean"), self.norm("running_var")
            gamma = self.norm.get("weight")
            beta = self.norm.get("bias")
            gamma = np.ones_like(mean) if gamma is None else gamma
            beta = np.zeros_like(mean) if beta is None else beta
            self.norm.get("num_batches_tracked")
            scale = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + self.eps)
            self._scale = scale
            self._shift = beta.astype(np.float64) - mean.astype(np.float64) * scale
        return self._scale, self._shift

    def get(self, name: str) -> np.ndarray | None:
        value = super().get(name)
        if name == "weight":  # the scale in float64, the product in float32 (within an ulp of it)
            scale, _ = self._fold()
            return value * scale.astype(np.float32).reshape((-1,) + (1,) * (value.ndim - 1))
        if name == "bias":
            scale, shift = self._fold()
            bias = 0.0 if value is None else value.astype(np.float64)
            return (bias * scale + shift).astype(np.float32)
        return value


class WeightStore:
    """The weights of one model by state_dict key, float32; records which keys were read."""

    def __init__(self, tensors: Mapping[str, np.ndarray]):
        self.tensors = dict(tensors)
        self.read: set[str] = set()
        self.tied: dict[str, str] = {}  # a tied weight's key -> the key of the weight it is

    def take(self, key: str) -> np.ndarray | None:
        value = self.tensors.get(key)
        if value is None:
            return None
        self.read.add(key)
        return np.asarray(value)

    def unread(self) -> list[str]:
        return sorted(k for k in self.tensors if k not in self.read and not k.endswith("num_batches_tracked"))


# ---------------------------------------------------------------- the exporter


class Exported:
    """An exported model: the graph with its small constants (``skeleton``) and the weights,
    kept as arrays until ``write`` streams them into the file."""

    def __init__(self, skeleton: onnx.ModelProto, weights: dict, output_names: tuple[str, ...], folded: int):
        self.skeleton = skeleton
        self.weights = weights
        self.output_names = output_names
        self.folded = folded  # BatchNorm layers folded away

    def write(self, handle) -> int:
        """The .onnx file's bytes into a binary file object; returns how many."""
        return write_model(self.skeleton, self.weights, handle)

    def structure(self) -> onnx.ModelProto:
        """The graph with each weight declared as an input of its type and shape instead of
        holding its values: all that onnx.checker needs, without copying the weights."""
        proto = onnx.ModelProto()
        proto.CopyFrom(self.skeleton)
        for name, array in self.weights.items():
            proto.graph.input.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, array.shape))
        return proto

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        self.write(buffer)
        return buffer.getvalue()

    @functools.cached_property
    def proto(self) -> onnx.ModelProto:
        """The whole model as one ModelProto, weights included (what onnx.load of the file gives)."""
        proto = onnx.ModelProto()
        proto.ParseFromString(self.to_bytes())
        return proto


def output_names(model: ModelIR) -> tuple[str, ...]:
    """The graph outputs' names: as the spec named them, else ``output`` (``output1``, ... for several)."""
    count = len(model.graph.outputs)
    names: list[str] = []
    for i in range(count):
        given = model.output_names[i] if i < len(model.output_names) else None
        name = given or ("output" if count == 1 else f"output{i + 1}")
        while name in names or name in model.input_names:
            name += "_out"
        names.append(name)
    return tuple(names)


def export_model(
    program: Program,
    model: ModelIR,
    weights: Mapping[str, np.ndarray],
    opset: int = DEFAULT_OPSET,
    fold_batchnorm: bool = True,
) -> Exported:
    """The model as an ONNX ModelProto, weights from ``weights`` (state_dict keys -> arrays)."""
    check_opset(opset)
    problems = unexportable(model, opset)
    if problems:
        node, reason = problems[0]
        raise ExportProblem(reason, node)
    exporter = _Exporter(program, model, WeightStore(weights), opset, fold_batchnorm)
    return exporter.build()


class _Exporter(Visitor):
    def __init__(self, program: Program, model: ModelIR, store: WeightStore, opset: int, fold: bool):
        self.model = model
        self.store = store
        self.g = GraphBuilder(opset)
        self.prefix = lower(program).prefixes  # layer id -> its state_dict prefix
        for tie in model.ties:  # one initializer: the tied layer reads the weight it takes
            key = f"{self.prefix[tie.layer]}.{tie.weight}"
            store.tied[key] = f"{self.prefix[tie.source]}.{tie.source_weight}"
            store.read.add(key)
        self.env: dict[int, str] = {}
        self.fold_into: dict[int, LayerNode] = {}  # the id of a conv or linear -> the BatchNorm after it
        self.folded: set[int] = set()
        if fold:
            self._plan_folding()

    def _plan_folding(self) -> None:
        reads: dict[int, int] = {}
        producer: dict[int, LayerNode] = {}

        def count(graph: Graph) -> None:
            for v in graph.outputs:
                reads[v] = reads.get(v, 0) + 1
            for node in graph.nodes:
                for v in node.reads:
                    reads[v] = reads.get(v, 0) + 1
                if node.tag == "layer":
                    producer[node.dst] = node
                for sub in subgraphs(node):
                    count(sub)

        count(self.model.graph)
        for node in walk(self.model.graph):
            if not (node.tag == "layer" and node.layer.dsl_name() in _BATCH_NORMS):
                continue
            before = producer.get(node.src)
            if before is None or reads.get(node.src) != 1 or before.layer.dsl_name() not in _FOLD_INTO:
                continue
            if not node.args["track_running_stats"] or before.id in self.fold_into:
                continue
            if before.layer.dsl_name() == "Linear" and node.input.shape.rank != 2:
                continue  # BatchNorm1d of [N, C, L] normalises C, not Linear's features
            self.fold_into[before.id] = node
            self.folded.add(node.id)

    def build(self) -> Exported:
        model = self.model
        inputs = []
        for name, tensor, value in zip(model.input_names, model.input_types, model.graph.inputs):
            self.g.reserve(name)
            self.env[value] = name
            if tensor.dtype == "bool":  # held as float32 0 and 1 inside the graph
                self.env[value] = self.g.op("Cast", [name], to=onnx.TensorProto.FLOAT)
            inputs.append(value_info(name, tensor.dtype, tensor.shape.dims))
        outputs = output_names(model)
        for name in outputs:
            self.g.reserve(name)
        self.run(model.graph)
        results = []
        renamed: dict[str, str] = {}
        for name, value, tensor in zip(outputs, model.graph.outputs, model.outputs):
            have = self.env[value]
            if tensor.dtype == "bool":
                self.g.nodes.append(
                    helper.make_node("Cast", [have], [name], name=f"{name}/Cast", to=onnx.TensorProto.BOOL)
                )
            elif have in model.input_names or have in renamed or have in outputs or have in self.g.weights:
                self.g.nodes.append(helper.make_node("Identity", [have], [name], name=f"{name}/Identity"))
            else:
                renamed[have] = name
            results.append(value_info(name, tensor.dtype, tensor.shape.dims))
        for node in self.g.nodes:
            node.output[:] = [renamed.get(o, o) for o in node.output]
            node.input[:] = [renamed.get(i, i) for i in node.input]
        unread = self.store.unread()
        if unread:
            listed = ", ".join(unread[:5]) + (f" and {len(unread) - 5} more" if len(unread) > 5 else "")
            raise ExportProblem(
                f"the weights have tensors this model does not use: {listed}",
                help="are these the weights of another spec, or of an older version of this one?",
                code="E602",
            )
        proto = self.g.model  # it holds the small constants already; the weights are written apart
        graph = proto.graph
        graph.name = model.name
        graph.node.extend(self.g.nodes)
        graph.input.extend(inputs)
        graph.output.extend(results)
        proto.opset_import.append(helper.make_opsetid("", self.g.opset))
        proto.ir_version = min(onnx.IR_VERSION, 10)  # what current runtimes read
        proto.producer_name = "nndsl"
        proto.producer_version = __version__
        proto.doc_string = f"{model.name}: {', '.join(str(t) for t in model.input_types)} -> {', '.join(str(t) for t in model.outputs)}"
        fold_constants(proto)
        return Exported(proto, self.g.weights, outputs, len(self.folded))

    # -- nodes

    def layer(self, node: LayerNode) -> None:
        value = self.layer_value(node)
        if node.unpacked:  # a name for each part of the one run
            self.env.update(zip(node.unpacked, value))
        else:
            self.env[node.dst] = value

    def op(self, node: OpNode) -> None:
        for value, name in zip(node.outputs, self.op_values(node)):
            self.env[value] = name

    def param(self, node: ParamNode) -> None:
        """A learned tensor: an initializer named after its state_dict key."""
        if node.type.dtype != "float32":
            raise ExportProblem(
                f"the learned tensor {node.name} is {node.type.dtype}: nndsl's ONNX export holds float32 weights",
                node,
                help="leave out its dtype (float32)",
            )
        key = self.prefix[node.id]
        value = self.store.take(key)
        if value is None:
            raise ExportProblem(f"the weights have no {key!r} for this tensor", node, code="E602")
        if tuple(value.shape) != node.shape:
            raise ExportProblem(
                f"the weights' {key!r} is {list(value.shape)}, this tensor's is {list(node.shape)}", node, code="E602"
            )
        self.env[node.output] = self.g.weight(value, key)

    def block(self, node: BlockNode) -> None:
        for inner, outer in zip(node.body.inputs, node.inputs):
            self.env[inner] = self.env[outer]
        self.run(node.body)
        self.env[node.output] = self.env[node.body.outputs[0]]

    def seq(self, node: SeqNode) -> None:
        self.env[node.body.inputs[0]] = self.env[node.input]
        self.run(node.body)
        self.env[node.output] = self.env[node.body.outputs[0]]

    def residual(self, node: ResidualNode) -> None:
        env = self.env
        env[node.body.inputs[0]] = env[node.input]
        self.run(node.body)
        body = env[node.body.outputs[0]]
        if not node.active:
            env[node.output] = body
            return
        if node.shortcut is not None:
            env[node.shortcut.inputs[0]] = env[node.input]
            self.run(node.shortcut)
            short = env[node.shortcut.outputs[0]]
        else:
            short = env[node.input]
        self.g.scope = "residual"
        env[node.output] = self.g.op("Add", [body, short])

    def layer_value(self, node: LayerNode) -> str:
        x = self.env[node.src]
        if node.id in self.folded:
            return x  # folded into the layer before it
        prefix = self.prefix.get(node.id, "")
        self.g.scope = prefix or node.layer.dsl_name().lower()
        weights = LayerWeights(self.store, prefix, node)
        norm = self.fold_into.get(node.id)
        if norm is not None:
            norm_weights = LayerWeights(self.store, self.prefix[norm.id], norm)
            weights = _FoldedWeights(self.store, prefix, node, norm_weights, norm.args["eps"])
        weights.inputs = {name: self.env[value] for name, value in node.extra}
        try:
            return node.layer.to_onnx(self.g, x, node, weights)
        except NotExportable as exc:
            raise ExportProblem(exc.message, node, exc.help) from None

    def op_values(self, node: OpNode) -> list[str]:
        self.g.scope = node.op
        types = [self.model.types[v] for v in node.inputs]
        op = lookup_operator(node.op)
        refused = op.onnx_unsupported(node, types, self.g.opset)
        if refused is not None:
            raise ExportProblem(refused[0], node, refused[1])
        return op.to_onnx(self.g, node, [self.env[v] for v in node.inputs], types)


# ---------------------------------------------------------------- constant folding


def fold_constants(proto: onnx.ModelProto) -> int:
    """Replace every node whose inputs are all initializers by its computed value; returns how many."""
    from onnx.reference import ReferenceEvaluator

    graph = proto.graph
    known = {init.name: init for init in graph.initializer}
    folded = 0
    kept = []
    opset = proto.opset_import
    for node in list(graph.node):
        if node.input and all(i in known for i in node.input if i) and node.op_type not in ("RandomNormal",):
            sub = helper.make_graph(
                [node],
                "fold",
                [],
                [helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in node.output],
                initializer=[known[i] for i in node.input if i],
            )
            evaluated = ReferenceEvaluator(helper.make_model(sub, opset_imports=opset)).run(None, {})
            for name, value in zip(node.output, evaluated):
                tensor = numpy_helper.from_array(np.asarray(value), name)
                known[name] = tensor
                graph.initializer.append(tensor)
            folded += 1
        else:
            kept.append(node)
    if folded:
        del graph.node[:]
        graph.node.extend(kept)
        used = {i for n in kept for i in n.input} | {o.name for o in graph.output}
        inits = [t for t in graph.initializer if t.name in used]
        del graph.initializer[:]
        graph.initializer.extend(inits)
    return folded
