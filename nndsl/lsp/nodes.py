"""The checked nodes whose spans lie in the edited file: a model's own nodes, and the nodes of
blocks that file defines, once per use. A block imported from another file has its body's spans
in that file: its use is the edited file's, its body is not."""

from __future__ import annotations

from collections.abc import Iterator

from nndsl.api import Result
from nndsl.ir import Graph, ModelIR


def here(result: Result) -> Iterator[tuple[ModelIR, object]]:
    """(model, node) for every checked node located in ``result``'s own file, in execution order."""
    program = result.program
    if program is None:
        return
    name = result.source.name
    for model in program.models:
        yield from _visit(model, model.graph, name)


def _visit(model: ModelIR, graph: Graph, name: str) -> Iterator[tuple[ModelIR, object]]:
    for node in graph.nodes:
        yield model, node
        if node.tag == "block" and node.defined_in and node.defined_in != name:
            continue  # its body's spans are in the file that defines it
        for sub in node.graphs:
            yield from _visit(model, sub, name)


def output_text(model: ModelIR, node) -> str:
    """The shapes of the values a node defines, as the checker writes them."""
    return ", ".join(str(model.types[v]) for v in node.writes if v in model.types)


def input_text(model: ModelIR, node) -> str:
    """The shapes of the values a node reads."""
    return ", ".join(str(model.types[v]) for v in node.reads if v in model.types)
