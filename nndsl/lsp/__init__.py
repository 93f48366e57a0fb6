"""The language server (``nndsl lsp``): diagnostics as one types, quick fixes, hover with shapes,
parameters and MACs, inlay hints, formatting, navigation and completion, over LSP through pygls.

The modules other than ``server`` are pure: they read check results and text and know nothing of
pygls, so they are tested and benchmarked in-process.
"""
