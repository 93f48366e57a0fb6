"""``nndsl graph``: its arguments and its handler; the diagram is made by nndsl.backends.graph.

Kept light (argparse only at import): the command line imports it on every run.
"""

from __future__ import annotations

import os
import sys

FORMAT_CHOICES = ("mermaid", "dot", "svg", "png")
EXIT_OK, EXIT_USAGE = 0, 2  # the command line's exit codes (nndsl.cli)


def add_parser(sub, input_and_color) -> None:
    """The ``graph`` subcommand's arguments (``input_and_color`` adds the shared --input and --color)."""
    graph = sub.add_parser(
        "graph",
        help="draw a model: layers, shapes on the edges, blocks as clusters (Mermaid, DOT, SVG, PNG)",
        description="Draw a spec's model as a graph: nodes are layers and operations, edges carry the "
        "shapes the checker inferred, blocks are clusters. Mermaid and DOT are text; SVG and PNG "
        "need Graphviz's dot. See docs/graph.md.",
    )
    graph.add_argument("file", metavar="FILE", help="spec file (.nn); '-' reads standard input")
    graph.add_argument("--model", metavar="NAME", help="draw this model only (default: every model in FILE)")
    graph.add_argument(
        "--format",
        choices=FORMAT_CHOICES,
        help="mermaid (default), dot, svg or png (svg and png run Graphviz's dot); "
        "default: from -o's suffix (.mmd, .dot, .gv, .svg, .png), else mermaid",
    )
    graph.add_argument("-o", "--output", metavar="OUT", help="output file (default: standard output)")
    graph.add_argument(
        "--depth",
        type=int,
        metavar="K",
        help="expand blocks nested at most K deep; deeper ones are one node each (default: no limit)",
    )
    graph.add_argument(
        "--all",
        action="store_true",
        dest="expand_all",
        help="expand every use of a block (default: the first use of each structure; later ones are one node)",
    )
    input_and_color(graph)


def _format(args) -> str:
    if args.format:
        return args.format
    from nndsl.backends.graph import SUFFIX_FORMATS

    if args.output and args.output != "-":
        return SUFFIX_FORMATS.get(os.path.splitext(args.output)[1].lower(), "mermaid")
    return "mermaid"


def cmd_graph(args, load_checked) -> int:
    """Check FILE, draw the chosen models, write the diagram to stdout or atomically to -o.
    ``load_checked(path, input, color, consequence)`` is the command line's: (result, None) for a
    spec without errors, else (None, exit code) with the problem shown."""
    from nndsl.backends import graph

    if args.depth is not None and args.depth < 0:
        print(f"error: --depth takes a whole number >= 0, not {args.depth}", file=sys.stderr)
        return EXIT_USAGE
    fmt = _format(args)
    binary = fmt in ("svg", "png")
    if binary and graph.dot_program() is None:
        print(f"error: --format {fmt}: {graph.GRAPHVIZ_MISSING}", file=sys.stderr)
        return EXIT_USAGE
    to_stdout = args.output in (None, "-")
    if fmt == "png" and to_stdout and sys.stdout.isatty():
        print("error: a PNG is not for a terminal: write it to a file with -o OUT", file=sys.stderr)
        return EXIT_USAGE
    result, code = load_checked(args.file, args.input, args.color, "nothing written")
    if result is None:
        return code
    models = result.program.complete_models
    if args.model is not None:
        models = tuple(m for m in models if m.name == args.model)
        if not models:
            known = ", ".join(m.name for m in result.program.models) or "none"
            print(f"error: {args.file} has no model {args.model!r} (its models: {known})", file=sys.stderr)
            return EXIT_USAGE
    if not models:
        print(f"error: {args.file} defines no model to draw", file=sys.stderr)
        return EXIT_USAGE
    diagram = graph.build(models, args.depth, args.expand_all)
    title = models[0].name if len(models) == 1 else os.path.basename(args.file)
    text = graph.text(diagram, "mermaid" if fmt == "mermaid" else "dot", title)
    if fmt == "mermaid" and len(diagram.edges) > graph.MERMAID_MAX_EDGES:
        print(
            f"warning: {len(diagram.edges)} edges: Mermaid (GitHub's too) draws at most {graph.MERMAID_MAX_EDGES}; "
            "leave out --all, lower --depth, or draw it with --format svg",
            file=sys.stderr,
        )
    return _write(args, result, graph, fmt, text)


def _write(args, result, graph, fmt: str, text: str) -> int:
    """The diagram to standard output or, atomically, to -o (SVG and PNG made by Graphviz's dot)."""
    from nndsl.files import spec_files, write_atomically

    out = args.output or "-"

    def write(path: str) -> None:
        if fmt in ("svg", "png"):
            graph.render(text, fmt, path)
        else:
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text)

    try:
        if out == "-":
            if fmt in ("svg", "png"):
                import tempfile

                with tempfile.TemporaryDirectory() as directory:
                    path = os.path.join(directory, f"graph.{fmt}")
                    write(path)
                    with open(path, "rb") as handle:
                        data = handle.read()
                sys.stdout.buffer.write(data)
            else:
                sys.stdout.write(text)
            sys.stdout.flush()
            return EXIT_OK
        write_atomically(out, write, spec_files(result.program))
    except graph.GraphError as exc:
        print(f"error: {exc}; nothing written", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        where = "standard output" if out == "-" else out
        print(f"error: cannot write {where}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"wrote {out}", file=sys.stderr)
    return EXIT_OK
