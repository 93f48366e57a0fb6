"""The checked program: models as lists of layers with their resolved arguments and shapes.

This is the only input of the backends.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from nndsl.diagnostics import Span
from nndsl.shapes import TensorType
from nndsl.source import Source


class LayerNode(NamedTuple):
    """One layer call, checked: the concrete layer class, every argument's final value, shapes."""

    index: int
    layer: type  # the registered Layer subclass (after alias resolution, e.g. BatchNorm -> BatchNorm2d)
    written: str  # the layer name as written in the spec
    args: Mapping[str, Any]  # every parameter's final value (a read-only view)
    selector: str | None
    input: TensorType
    output: TensorType
    params: int
    span: Span
    line: int
    text: str  # the call as written, whitespace collapsed
    given: frozenset = frozenset()  # parameters the spec wrote out
    n_positional: int = 0  # how many of them it wrote positionally


class ModelIR(NamedTuple):
    name: str
    input_name: str
    input: TensorType
    layers: tuple[LayerNode, ...]
    span: Span
    complete: bool = True  # False when checking stopped at an error; layers holds what was checked

    @property
    def output(self) -> TensorType:
        return self.layers[-1].output if self.layers else self.input

    @property
    def param_count(self) -> int:
        return sum(node.params for node in self.layers)


class Program(NamedTuple):
    source: Source
    models: tuple[ModelIR, ...]

    @property
    def complete_models(self) -> tuple[ModelIR, ...]:
        return tuple(m for m in self.models if m.complete)

    def model(self, name: str | None = None) -> ModelIR:
        if name is None:
            return self.models[0]
        for m in self.models:
            if m.name == name:
                return m
        raise KeyError(name)
