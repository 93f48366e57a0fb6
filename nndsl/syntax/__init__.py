"""The only user of lark: ``parse(source)`` turns text into an AST, lark errors into diagnostics."""

from nndsl.syntax.parser import parse, parse_recovering, parse_shape

__all__ = ["parse", "parse_recovering", "parse_shape"]
