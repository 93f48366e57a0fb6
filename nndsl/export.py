"""ONNX export as a user runs it: weights read from a file (or torch's fresh initialisation), every
layer checked for a mapping before work starts, the graph built, verified, then written atomically.

Problems with the spec are diagnostics at its lines; problems with the environment or a weights
file are ``ExportFailure`` messages. Nothing is written unless the export verified.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from typing import NamedTuple

from nndsl.backends.onnx_opsets import DEFAULT_OPSET
from nndsl.diagnostics import Diagnostic, Severity, Span
from nndsl.install import install_command, install_hint
from nndsl.ir import BlockNode, ModelIR, Program, walk


class ExportFailure(Exception):
    """An export that cannot run: a missing package, an unreadable weights file, a bad option."""


class ExportDiagnostics(Exception):
    """Problems located in the spec: ``diagnostics`` holds them all."""

    def __init__(self, diagnostics: list[Diagnostic]):
        super().__init__("; ".join(d.message for d in diagnostics))
        self.diagnostics = diagnostics


class ExportResult(NamedTuple):
    model: str
    path: str
    opset: int
    inputs: tuple[tuple[str, str], ...]  # (name, type as the spec writes it)
    outputs: tuple[tuple[str, str], ...]
    folded: int
    verified: object  # nndsl.backends.onnx_verify.Verified, None when verification was skipped
    weights: str  # where the weights came from
    size: int  # bytes written


def require(module: str, extra: str, purpose: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise ExportFailure(f"{purpose} needs the {module} package: {install_hint(extra)}")


# ---------------------------------------------------------------- weights files


def read_weights(path: str) -> dict:
    """A state_dict as numpy arrays (nndsl.weights_file): from safetensors (no torch needed), or
    from a torch file: a state_dict, or a training checkpoint holding one under ``model``."""
    from nndsl.weights_file import WeightsError
    from nndsl.weights_file import read_weights as read

    try:
        return read(path)
    except WeightsError as exc:
        raise ExportFailure(str(exc)) from None


# ---------------------------------------------------------------- diagnostics


def _anchors(program: Program, model: ModelIR) -> dict[int, tuple[Span, str | None]]:
    """Where to report each node: its own span in this file, else the use of the block (from
    another file) that contains it, with a note naming the line there."""
    here = program.source.name
    out: dict[int, tuple[Span, str | None]] = {}

    def visit(graph, outer: BlockNode | None):
        from nndsl.ir import subgraphs

        for node in graph.nodes:
            if outer is None:
                out[node.id] = (node.span, None)
            else:
                out[node.id] = (outer.span, f"at line {node.line} of {outer.defined_in}: {node.text}")
            inner = outer
            if outer is None and node.tag == "block" and node.defined_in and node.defined_in != here:
                inner = node
            for sub in subgraphs(node):
                visit(sub, inner)

    visit(model.graph, None)
    return out


def _diagnostic(program: Program, model: ModelIR, code: str, message: str, node=None, help=None) -> Diagnostic:
    span, note = model.span, None
    if node is not None:
        span, note = _anchors(program, model).get(node.id, (node.span, None))
    label = "cannot be exported" if code == "E601" else ""
    return Diagnostic(
        Severity.ERROR, code, message, program.source, span, label, help=help, notes=(note,) if note else ()
    )


# ---------------------------------------------------------------- the export


def default_path(spec_path: str, model: ModelIR, several: bool) -> str:
    stem = os.path.splitext(spec_path)[0] if spec_path not in ("-", "<stdin>") else model.name
    return f"{stem}_{model.name}.onnx" if several else f"{stem}.onnx"


def preflight(program: Program, model: ModelIR, opset: int) -> None:
    """Everything knowable before any work: the input's rank and each layer's mapping."""
    from nndsl.backends import onnx_export

    diags = []
    for name, tensor in zip(model.input_names, model.input_types):
        if tensor.shape.rest:
            diags.append(
                _diagnostic(
                    program,
                    model,
                    "E603",
                    f"input {name} has an unknown rank ({tensor.shape}); an ONNX graph needs every input's shape",
                    help="give the bare chain's input shape, e.g. input='[N, 1, 28, 28]'",
                )
            )
    for name, tensor in zip(model.input_names, model.input_types):
        if tensor.dtype not in onnx_export.EXPORTED_DTYPES:
            message = (
                f"input {name} is {tensor.dtype}: nndsl's ONNX export holds float32 weights and activations "
                "(and int64/int32 indices), and writing this model as float32 would be another model"
            )
            help = f"declare {name} as float32 (a consumer of the ONNX file casts its data to it)"
            diags.append(_diagnostic(program, model, "E601", message, help=help))
    for node, reason in onnx_export.unexportable(model, opset):
        message = f"{node.layer.dsl_name()} cannot be exported to ONNX: {reason}"
        diags.append(_diagnostic(program, model, "E601", message, node))
    if diags:
        raise ExportDiagnostics(diags)


def export(
    program: Program,
    model: ModelIR,
    out_path: str,
    weights_path: str | None = None,
    opset: int = DEFAULT_OPSET,
    fold_batchnorm: bool = True,
    verify: bool = True,
) -> ExportResult:
    """Export one model: preflight, weights, graph, verification (unless ``verify`` is False),
    then the file. Raises ExportDiagnostics (spec problems) or ExportFailure (environment, weights
    file, writing)."""
    require("onnx", "onnx", "ONNX export")
    if verify:
        require("onnxruntime", "onnx", "verifying an ONNX export (or pass verify=False)")
    from nndsl.backends import onnx_export, onnx_verify, torch_build

    try:
        onnx_export.check_opset(opset)
    except onnx_export.ExportProblem as exc:
        raise ExportFailure(f"{exc.message} ({exc.help})") from None
    preflight(program, model, opset)
    from nndsl.files import check_output, spec_files, write_atomically

    inputs = [*spec_files(program), *([weights_path] if weights_path else [])]
    try:
        check_output(out_path, inputs)  # before any work; checked again when written
    except OSError as exc:
        raise ExportFailure(f"cannot write {out_path}: {exc.strerror or exc}") from None

    has_torch = onnx_verify.torch_available()
    module = None  # the torch module holding the weights, when made here
    if weights_path is None:
        if not has_torch:
            raise ExportFailure(
                "a fresh export takes torch's own initialisation, and torch is not installed: "
                f"{install_command('torch')}, or export trained weights with weights=FILE.safetensors"
            )
        try:
            module = torch_build.fresh_module(program, model)
            weights = torch_build.module_weights(module)
        except (MemoryError, RuntimeError) as exc:  # torch's allocator says RuntimeError
            if not isinstance(exc, MemoryError) and "allocate" not in str(exc):
                raise
            raise ExportFailure(
                f"not enough memory for {model.name}'s {model.param_count:,} parameters "
                f"({model.param_count * 4:,} bytes as float32)"
            ) from None
        source = "fresh initialisation (torch, seed 0)"
    else:
        weights = read_weights(weights_path)
        source = weights_path
        if has_torch:
            _check_weight_shapes(program, model, weights)
    try:
        exported = onnx_export.export_model(program, model, weights, opset, fold_batchnorm)
        reference = None
        if verify and not has_torch:  # verify against ONNX's own reference evaluator of the unfolded graph
            reference = onnx_export.export_model(program, model, weights, opset, fold_batchnorm=False).proto
    except onnx_export.ExportProblem as exc:
        raise ExportDiagnostics([_diagnostic(program, model, exc.code, exc.message, exc.node, exc.help)]) from None

    def write_and_verify(temporary: str):
        """The file is written beside its destination, verified from there, then renamed over it."""
        with open(temporary, "wb") as handle:
            size = exported.write(handle)
        if not verify:
            return size, None
        try:
            checked = onnx_verify.verify(
                program,
                model,
                temporary,
                weights,
                exported.output_names,
                reference_proto=reference,
                structure=exported.structure(),
                module=module,
                build=torch_build.build_model if has_torch else None,
            )
        except onnx_verify.NoSizes as exc:
            names = ", ".join(onnx_verify.symbols(model))
            message = f"cannot verify the ONNX export of {model.name}: {exc}"
            help = "export with verify=False (the file is then not checked)"
            if names:
                help = f"give {names} a size in the input declaration, or {help}"
            raise ExportDiagnostics([_diagnostic(program, model, "E605", message, help=help)]) from None
        except onnx_verify.VerifyError as exc:
            message = f"the ONNX export of {model.name} failed verification: {exc}"
            help = "this is a bug in nndsl's ONNX mapping; please report it with the spec"
            raise ExportDiagnostics([_diagnostic(program, model, "E604", message, help=help)]) from None
        return size, checked

    try:
        size, verified = write_atomically(out_path, write_and_verify, inputs)
    except OSError as exc:
        raise ExportFailure(f"cannot write {out_path}: {exc.strerror or exc}") from None
    return ExportResult(
        model.name,
        out_path,
        opset,
        tuple((n, str(t)) for n, t in zip(model.input_names, model.input_types)),
        tuple((n, str(t)) for n, t in zip(exported.output_names, model.outputs)),
        exported.folded,
        verified,
        source,
        size,
    )


def _check_weight_shapes(program: Program, model: ModelIR, weights: Mapping) -> None:
    """Each tensor against the emitted module's own (torch present): a positioned E603 per mismatch."""
    import torch

    from nndsl.backends.torch_build import build_model
    from nndsl.lowering import lower

    with torch.device("meta"):  # shapes only: no initialisation to pay for
        expected = {k: tuple(v.shape) for k, v in build_model(program, model).state_dict().items()}
    prefixes = lower(program).prefixes
    owner = {}
    for node in walk(model.graph):  # a module owns the keys under its prefix, a tensor its own key
        prefix = prefixes.get(node.id)
        if prefix is None:
            continue
        for key in expected:
            if key == prefix or key.startswith(prefix + "."):
                owner.setdefault(key, node)
    diags = []
    for key, shape in expected.items():
        node = owner.get(key)
        what = "layer" if node is None or node.tag == "layer" else "tensor"
        if key not in weights:
            if not key.endswith("num_batches_tracked"):
                diags.append(_diagnostic(program, model, "E602", f"the weights have no {key!r} for this {what}", node))
        elif tuple(weights[key].shape) != shape:
            got = list(weights[key].shape)
            diags.append(
                _diagnostic(
                    program,
                    model,
                    "E602",
                    f"the weights' {key!r} is {got}, this {what}'s is {list(shape)}",
                    node,
                    help="were the weights trained from another version of this spec?",
                )
            )
    unknown = sorted(set(weights) - set(expected))
    if unknown:
        listed = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        diags.append(
            _diagnostic(
                program,
                model,
                "E602",
                f"the weights have tensors {model.name} does not: {listed}",
                help="are these the weights of another spec?",
            )
        )
    if diags:
        raise ExportDiagnostics(diags)


def models_to_export(program: Program, name: str | None) -> list[ModelIR]:
    models = list(program.complete_models)
    if name is None:
        return models
    chosen = [m for m in models if m.name == name]
    if not chosen:
        listed = ", ".join(m.name for m in models)
        raise ExportFailure(f"no model {name!r} in {program.source.name} (it has {listed})")
    return chosen
