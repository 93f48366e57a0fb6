"""The one table of layers: DSL name -> layer class. Layers add themselves with ``@register``."""

from __future__ import annotations

from nndsl.diagnostics import closest

REGISTRY: dict = {}


def register(cls):
    """Class decorator: make a layer callable from specs under its class name."""
    name = cls.dsl_name()
    if name in REGISTRY:
        raise ValueError(f"layer {name} registered twice")
    REGISTRY[name] = cls
    return cls


def lookup(name: str):
    return REGISTRY.get(name)


def suggest(name: str) -> str | None:
    """The closest registered name (did-you-mean), matching case-insensitively first."""
    return closest(name, REGISTRY)
