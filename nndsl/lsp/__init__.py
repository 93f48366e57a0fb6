"""The language server: diagnostics, hover, navigation and completion for .nn files in an editor."""
