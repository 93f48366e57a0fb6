"""The only user of lark: ``parse(source)`` turns text into an AST, lark errors into diagnostics.

``parser`` holds the grammar's AST callbacks, the rules checked on the tree (nesting limits,
one statement per line) and the wording of syntax errors; ``driver`` the fast LALR loop over
lark's tables that parses text lark accepts.
"""

from nndsl.syntax.parser import parse, parse_recovering, parse_shape

__all__ = ["parse", "parse_recovering", "parse_shape"]
