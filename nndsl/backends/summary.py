"""The summary backend: what ``nndsl check`` reports about checked specs, as text or as JSON.

The text is each model's signature and parameter count, its shape table (``--shapes``) and its
train section in a line; the JSON is the schema of docs/json-schema.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from nndsl.diagnostics import Severity, span_json
from nndsl.ir import (
    BlockNode,
    LayerNode,
    ResidualNode,
    SeqNode,
    SubNetwork,
    Visitor,
    layers_of,
    subgraphs,
    walk,
    weights,
)

JSON_SCHEMA_VERSION = 1


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


# ---------------------------------------------------------------- text


def summary_lines(result, shapes: bool = False) -> list[str]:
    """The lines ``nndsl check`` prints for a file without errors: its blocks when it defines no
    model, each model's signature (and shape table), each train section."""
    program, name = result.program, result.source.name
    models = program.models if program else ()
    lines = []
    if not models and program is not None and program.blocks:
        lines.append(f"{name}: blocks {', '.join(program.blocks)} (each is checked where a model uses it)")
    for model in models:
        lines.append(f"{name}: {model.name}: {signature_text(model)}, {model.param_count:,} parameters")
        if shapes:
            lines.append(shape_table(model, result.source))
    for config in program.trainings if program else ():
        lines.append(f"{name}: train {config.model}: {train_text(config)}")
    return lines


def signature_text(model) -> str:
    """``[N, 1, 28, 28] -> [N, 10]``; with several inputs or outputs, named and comma-separated."""
    if len(model.input_types) == 1 and len(model.outputs) == 1:
        return f"{model.input} -> {model.output}"
    ins = ", ".join(f"{n}: {t}" for n, t in zip(model.input_names, model.input_types))
    outs = ", ".join(f"{n}: {t}" if n else str(t) for n, t in zip(model.output_names, model.outputs))
    return f"({ins}) -> ({outs})"


def train_text(config) -> str:
    """``CrossEntropyLoss, Adam(lr=0.001), 10 epochs of batches of 64 on digits()``."""
    from nndsl.backends.pywriter import call_text  # only for a spec with a train section

    s = config.settings
    parts = [call_text(s["loss"]), call_text(s["optimizer"])]
    if s["schedule"] is not None:
        parts.append(call_text(s["schedule"]))
    parts.append(f"{plural(s['epochs'], 'epoch')} of batches of {s['batch_size']} on {call_text(s['data'])}")
    return ", ".join(parts)


class _ShapeRows(Visitor):
    """One row per layer, tensor operation, block use and residual sum of a model's own graph."""

    def __init__(self, source, rows: list, types) -> None:
        self.source = source
        self.rows = rows
        self.types = types  # every value's type

    def generic(self, node) -> None:
        """A layer, an operation, or a kind of node without a method here: its sub-graphs' rows,
        or a row of its own with the types of the values it defines and its weights."""
        if node.graphs:
            super().generic(node)
        else:
            outputs = ", ".join(str(self.types[v]) for v in node.writes)
            self.rows.append((self._where(node), self._text(node), outputs, f"{node.own_params:,}"))

    def _where(self, node) -> str:
        line, col = self.source.line_col(node.span.start)
        return f"{line}:{col}"

    @staticmethod
    def _text(node) -> str:
        return node.text if len(node.text) <= 60 else node.text[:57] + "..."

    def block(self, node: BlockNode) -> None:
        params = weights(node.body.nodes)
        # the values this use got, which a loop or a parameter may hide in the text
        args = ", ".join(f"{k}={v!r}" for k, v in node.args.items() if not isinstance(v, SubNetwork))
        self.rows.append((self._where(node), f"{node.block}({args})", str(node.types[-1]), f"{params:,}"))

    def seq(self, node: SeqNode) -> None:
        if node.again:  # a shared module applied again: its rows, and its weights, are at its first use
            name = node.name or node.param  # a shared module, or a block's sub-network argument
            self.rows.append((self._where(node), f"{name} (shared, applied again)", str(node.type), "0"))
        elif node.kind != "param":  # a sub-network argument's rows are where the block's use is
            self.run(node.body)

    def residual(self, node: ResidualNode) -> None:
        self.generic(node)
        self.rows.append(("", "+ (residual sum)", str(node.type), "0"))


def shape_table(model, source) -> str:
    """The ``--shapes`` table: where, layer, output shape and parameters, one row per node."""
    rows = [("", "layer", "output", "params")]
    _ShapeRows(source, rows, model.types).run(model.graph)
    # a tie in a block's body is in the block's file: its row has no position in this one
    in_blocks = {layer.id for node in walk(model.graph) if node.tag == "block" for layer in layers_of(node.body)}
    for tie in getattr(model, "ties", ()):  # the tied weight is counted at the layer it is taken from
        line, col = source.line_col(tie.span.start)
        where = "" if tie.layer in in_blocks else f"{line}:{col}"
        rows.append((where, tie.text, "(tied)", f"-{tie.size:,}"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    out = []
    for r in rows:
        out.append(
            f"  {r[0].ljust(widths[0])}  {r[1].ljust(widths[1])}  {r[2].ljust(widths[2])}  {r[3].rjust(widths[3])}"
        )
    return "\n".join(out)


# ---------------------------------------------------------------- JSON


def _tensor_json(t) -> dict:
    return {"shape": t.shape.to_json(), "dtype": t.dtype, "text": str(t.shape)}


def model_json(model, source, modules: Mapping[int, str] | None = None) -> dict:
    """One model: its signature, parameters and every layer (with the block and file it is in,
    and the path of its module in the emitted class, from ``modules``: layer id -> path)."""
    layers = []
    tensors = []
    modules = modules or {}

    def visit(graph, block, file):
        for node in graph.nodes:
            if isinstance(node, LayerNode):
                layers.append(
                    {
                        "index": node.index,
                        "layer": node.written,
                        "torch_class": node.layer.torch_name(),
                        "module": modules.get(node.id),
                        "call": node.text,
                        "selector": node.selector,
                        "file": file,
                        "block": block,
                        "line": node.line,
                        "span": span_json(source, node.span) if file == source.name else None,
                        "input": _tensor_json(node.input),
                        "output": _tensor_json(node.output),
                        "params": node.params,
                    }
                )
            elif node.tag == "param":
                tensors.append(
                    {
                        "name": node.name,
                        "module": modules.get(node.id),
                        "init": node.init,
                        # a value JSON cannot write (inf, nan) as Python writes it
                        "init_args": {k: v if math.isfinite(v) else str(v) for k, v in node.args.items()},
                        "file": file,
                        "block": block,
                        "line": node.line,
                        "span": span_json(source, node.span) if file == source.name else None,
                        "output": _tensor_json(node.type),
                        "params": node.own_params,
                    }
                )
            for sub in subgraphs(node):
                if isinstance(node, BlockNode):
                    visit(sub, node.block, node.defined_in)
                else:
                    visit(sub, block, file)

    visit(model.graph, None, source.name)
    return {
        "name": model.name,
        "complete": model.complete,
        # null only for a model whose every input declaration has an error
        "input": _tensor_json(model.input) if model.input_types else None,
        "output": _tensor_json(model.output) if model.input_types or model.graph.outputs else None,
        "inputs": [{"name": n, **_tensor_json(t)} for n, t in zip(model.input_names, model.input_types)],
        "outputs": [{"name": n, **_tensor_json(t)} for n, t in zip(model.output_names, model.outputs)],
        "params": model.param_count,
        "layers": layers,
        "tensors": tensors,
    }


def file_json(path: str, result) -> dict:
    """One checked file: whether it is free of errors, its models and its diagnostics."""
    models = result.program.models if result.program else ()
    modules = {}
    if result.program and result.program.complete_models:
        from nndsl.lowering import lower  # JSON only: the text output needs no module tree

        modules = lower(result.program).prefixes
    return {
        "file": path,
        "ok": not any(d.severity is Severity.ERROR for d in result.diagnostics),
        "io_error": None,
        "models": [model_json(m, result.source, modules) for m in models],
        "diagnostics": [d.to_json() for d in result.diagnostics],
    }


def io_error_json(path: str, problem: str) -> dict:
    """A file that could not be read: the message says why."""
    return {"file": path, "ok": False, "io_error": problem, "models": [], "diagnostics": []}


def report_json(files: list[dict], errors: int, warnings: int) -> str:
    """The whole report of one ``nndsl check --format json``."""
    payload = {
        "version": JSON_SCHEMA_VERSION,
        "files": files,
        "summary": {"files": len(files), "errors": errors, "warnings": warnings},
    }
    import json  # the JSON output only

    return json.dumps(payload, indent=2)
