"""The one table of layers: DSL name -> layer class. Layers add themselves with ``@register``."""

from __future__ import annotations

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
    import difflib  # only when there is a mistake to explain

    lowered = {n.lower(): n for n in REGISTRY}
    if name.lower() in lowered:
        return lowered[name.lower()]
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[close[0]] if close else None
