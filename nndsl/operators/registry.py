"""The one table of tensor operators: DSL name -> operator class, filled by ``@register``."""

from __future__ import annotations

REGISTRY: dict = {}


def register(cls):
    """Class decorator: make an operator callable from specs under its ``name``."""
    if not cls.name or cls.name in REGISTRY:
        raise ValueError(f"operator {cls.name!r} unnamed or registered twice")
    REGISTRY[cls.name] = cls
    return cls


def lookup(name: str):
    return REGISTRY.get(name)
