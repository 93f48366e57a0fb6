"""The ``nndsl`` command: argument handling and rendering only; the work is done by nndsl.api."""

from __future__ import annotations

import argparse
import os
import re
import sys

from nndsl import graph_command
from nndsl.diagnostics import CATALOGUE, Diagnostic, Severity, render_short, render_text
from nndsl.targets import compile_targets, target
from nndsl.version import __version__

EXIT_OK, EXIT_ERRORS, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse exits 2 on usage errors; keep its message short
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="nndsl",
        description="Check neural-network architecture specs (.nn) and compile them to PyTorch.",
        epilog="Exit codes: 0 clean, 1 errors in a spec, 2 usage or I/O error, 3 internal error (a bug).",
    )
    parser.add_argument("--version", action="version", version=f"nndsl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    check = sub.add_parser("check", help="check specs: shapes, arguments, everything", description="Check specs.")
    check.add_argument("files", nargs="*", metavar="FILE", help="spec files (.nn); '-' reads standard input")
    check.add_argument("--input", metavar="SHAPE", help="input shape of a bare chain, e.g. '[N, 1, 28, 28]'")
    check.add_argument(
        "--format",
        choices=("text", "short", "json", "github", "sarif"),
        default="text",
        help="text: full diagnostics (default); short: file:line:col lines; json: see docs/json-schema.md; "
        "github: GitHub Actions annotations; sarif: SARIF 2.1.0 for code scanning (docs/ci.md)",
    )
    check.add_argument(
        "--select",
        metavar="CODES",
        help="report only these warnings and notes: codes or prefixes, comma-separated (W3 is every W3xx)",
    )
    check.add_argument("--ignore", metavar="CODES", help="do not report these warnings and notes (same form)")
    check.add_argument(
        "--warnings-as-errors", action="store_true", help="report warnings as errors (exit 1 when there are any)"
    )
    check.add_argument("--shapes", action="store_true", help="print the shape after every layer")
    check.add_argument("--color", choices=("auto", "always", "never"), default="auto")

    comp = sub.add_parser("compile", help="write a PyTorch module for a spec", description="Compile a spec.")
    comp.add_argument("file", metavar="FILE")
    comp.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        help="output path (default: FILE with .py, or stdout when FILE is '-'; '-' for stdout)",
    )
    comp.add_argument(
        "--target",
        choices=[t.name for t in compile_targets()],
        default="module",
        help="; ".join(t.help_text() for t in compile_targets()),
    )
    _input_and_color(comp)
    _onnx_options(comp, weights_required=False)

    export = sub.add_parser(
        "export",
        help="export a model with trained weights to ONNX, verified against torch",
        description="Export a spec's model with trained weights (a state_dict or checkpoint .pt written by "
        "nndsl's training, or .safetensors, which needs no torch) to a verified ONNX file.",
    )
    export.add_argument("file", metavar="FILE")
    export.add_argument("-o", "--output", metavar="OUT", help="output path (default: FILE with .onnx)")
    _input_and_color(export)
    _onnx_options(export, weights_required=True)

    train = sub.add_parser(
        "train",
        help="train the model of a spec's train section, in this process",
        description="Train a spec's model as its train section says. Flags after FILE override the section's "
        "settings; `nndsl train FILE --help` lists them (they are the generated script's flags).",
        add_help=False,
    )
    train.add_argument("file", metavar="FILE", nargs="?")
    train.add_argument("script_args", metavar="FLAG", nargs=argparse.REMAINDER)

    fmt = sub.add_parser(
        "fmt",
        help="rewrite specs in the canonical layout (spacing, indentation, long chains broken)",
        description="Rewrite specs in place in nndsl's one layout; comments, blank-line groups and the meaning "
        "are kept. See docs/fmt.md.",
    )
    fmt.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="spec files (.nn) or directories (their .nn files); '-' formats standard input to stdout",
    )
    fmt.add_argument("--check", action="store_true", help="write nothing; list the files that would change, exit 1")
    fmt.add_argument("--diff", action="store_true", help="write nothing; print a unified diff of the changes")
    fmt.add_argument("--line-width", type=int, default=120, metavar="N", help="break longer chains (default 120)")
    fmt.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    graph_command.add_parser(sub, _input_and_color)
    summary = sub.add_parser(
        "summary",
        help="a model's layers with parameters, MACs and activation memory",
        description="Summarise a spec's models: one row per layer, op and block (blocks collapsed below "
        "--depth), output shapes, parameters, MACs and activation bytes, and totals; symbolic sizes "
        "stay expressions and are evaluated at --batch / --input. See docs/summary.md.",
    )
    summary.add_argument("file", metavar="FILE", help="spec file (.nn); '-' reads standard input")
    summary.add_argument("--model", metavar="NAME", help="summarise this model only (default: every model)")
    summary.add_argument(
        "--input",
        dest="shape",
        metavar="SHAPE",
        help="a concrete input shape binding the symbols, e.g. '[8, 3, 224, 224]'",
    )
    summary.add_argument("--batch", type=int, metavar="N", help="the batch size N (default: 1, or --input's)")
    summary.add_argument("--depth", type=int, default=3, metavar="K", help="expand blocks to depth K (default 3)")
    summary.add_argument("--format", choices=("text", "json", "markdown"), default="text")

    sub.add_parser(
        "lsp",
        help="run the language server (LSP over stdio) for editors",
        description="Run nndsl's language server on standard input and output: diagnostics as you type, "
        "quick fixes, hover with shapes, inlay hints, formatting, navigation, completion. See docs/lsp.md.",
    )
    sub.add_parser("layers", help="list the layers nndsl knows, with their signatures")
    sub.add_parser("codes", help="list the diagnostic codes")
    return parser


def _input_and_color(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", metavar="SHAPE", help="input shape of a bare chain")
    parser.add_argument("--color", choices=("auto", "always", "never"), default="auto")


def _onnx_options(parser: argparse.ArgumentParser, weights_required: bool) -> None:
    from nndsl.backends.onnx_opsets import DEFAULT_OPSET

    parser.add_argument(
        "--weights",
        metavar="FILE",
        required=weights_required,
        help="trained weights: a state_dict or checkpoint (.pt, needs torch) or .safetensors"
        + ("" if weights_required else " (onnx target; default: torch's fresh initialisation)"),
    )
    parser.add_argument(
        "--opset", type=int, default=DEFAULT_OPSET, metavar="N", help=f"ONNX opset (default {DEFAULT_OPSET})"
    )
    parser.add_argument("--model", metavar="NAME", help="export this model only (default: every model in FILE)")
    parser.add_argument(
        "--no-fold",
        action="store_true",
        help="keep BatchNorm as its own node instead of folding it into the layer before",
    )
    parser.add_argument(
        "--no-verify",
        action="store_true",
        help="write the file without checking it (onnx.checker, onnxruntime against torch): faster, "
        "for exports in a loop; the summary says it was not verified",
    )


def _use_color(choice: str, stream) -> bool:
    if choice == "always":
        return True
    if choice == "never" or os.environ.get("NO_COLOR"):
        return False
    return hasattr(stream, "isatty") and stream.isatty() and os.environ.get("TERM") != "dumb"


def _read_problem(path: str) -> str | None:
    """A readable message when a path cannot be read as a spec, else None."""
    from nndsl.reading import printable

    shown = printable(path)
    if not os.path.exists(path):
        return f"{shown}: no such file"
    if os.path.isdir(path):
        return f"{shown}: is a directory, not a spec file"
    if not os.access(path, os.R_OK):
        return f"{shown}: permission denied"
    return None


def _load(path: str, input_shape):
    """(Result, None) or (None, I/O message)."""
    from nndsl.api import check_source
    from nndsl.reading import MAX_SPEC_SIZE, UndecodableError, decode, printable, read_file, read_limited

    if path == "-":
        stdin = getattr(sys.stdin, "buffer", None)  # bytes: a text stream would fail on a non-UTF-8 byte
        read = stdin.read if stdin is not None else lambda n: sys.stdin.read(n).encode("utf-8", "surrogateescape")
        data, name = read_limited(read), "<stdin>"
    else:
        problem = _read_problem(path)
        if problem:
            return None, problem
        try:
            data, name = read_file(path), path
        except OSError as exc:
            return None, f"{printable(path)}: cannot read: {exc.strerror or exc}"
    if len(data) > MAX_SPEC_SIZE:
        return None, f"{printable(name)}: larger than {MAX_SPEC_SIZE:,} bytes, the most nndsl reads"
    try:
        text = decode(data)
    except UndecodableError as exc:
        return None, f"{printable(name)}: {exc}"
    return check_source(text, name, input_shape), None


def _render(diags: list[Diagnostic], fmt: str, color: bool) -> str:
    if fmt == "short":
        return "\n".join(render_short(d) for d in diags)
    return "\n\n".join(render_text(d, color) for d in diags)


def _counts(diags) -> tuple[int, int]:
    errors = sum(d.severity is Severity.ERROR for d in diags)
    warnings = sum(d.severity is Severity.WARNING for d in diags)
    return errors, warnings


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _codes(args) -> bool:
    """Parse --select and --ignore in place; False, with a one-line message, for a code no
    diagnostic has or an error's code (errors cannot be left out)."""
    from nndsl.suppression import parse_codes

    for option in ("select", "ignore"):
        text = getattr(args, option)
        try:
            setattr(args, option, None if text is None else parse_codes(text))
        except ValueError as exc:
            print(f"nndsl check: error: --{option}: {exc}", file=sys.stderr)
            return False
    return True


def cmd_check(args) -> int:
    if not _codes(args):
        return EXIT_USAGE
    from nndsl.backends import ci_formats

    summary = target("summary").load()
    color = _use_color(args.color, sys.stdout)
    status = EXIT_OK
    files_json = []
    reported, io_errors = [], []  # SARIF: one log of the whole run
    total_errors = total_warnings = 0
    for path in args.files:
        result, problem = _load(path, args.input)
        if problem:
            status = EXIT_USAGE
            if args.format == "json":
                files_json.append(summary.io_error_json(path, problem))
            elif args.format == "sarif":
                io_errors.append(problem)
            elif args.format == "github":
                print(ci_formats.github_io_error(problem))
            else:
                print(f"error: {problem}", file=sys.stderr)
            continue
        result = _chosen(result, args)
        errors, warnings = _counts(result.diagnostics)
        total_errors += errors
        total_warnings += warnings
        if errors and status == EXIT_OK:
            status = EXIT_ERRORS
        if args.format == "json":
            files_json.append(summary.file_json(path, result))
            continue
        if args.format == "sarif":
            reported += result.diagnostics
            continue
        if args.format == "github":
            for diag in result.diagnostics:
                print(ci_formats.github_annotation(diag))
            continue
        if result.diagnostics:
            print(_render(result.diagnostics, args.format, color))
            if args.format == "text":
                print()
        if args.format == "text" and not errors:
            for line in summary.summary_lines(result, args.shapes):
                print(line)
    if args.format == "json":
        print(summary.report_json(files_json, total_errors, total_warnings))
    elif args.format == "sarif":
        print(ci_formats.sarif_text(reported, io_errors))
    elif args.format == "text" and (total_errors or total_warnings):
        print(
            f"{_plural(total_errors, 'error')}, {_plural(total_warnings, 'warning')} "
            f"in {_plural(len(args.files), 'file')}",
            file=sys.stderr,
        )
    return status


def _chosen(result, args):
    """The result with the diagnostics --select, --ignore and --warnings-as-errors leave."""
    from nndsl.api import Result
    from nndsl.suppression import choose

    chosen = choose(result.diagnostics, args.select, args.ignore or (), args.warnings_as_errors)
    return Result(result.source, result.program, chosen)


def _load_checked(path: str, input_shape, color: str, consequence: str):
    """(Result, None) for a spec without errors; otherwise (None, exit code), with the I/O problem
    or the diagnostics shown on stderr (warnings are shown either way)."""
    result, problem = _load(path, input_shape)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return None, EXIT_USAGE
    if result.diagnostics:
        print(_render(result.diagnostics, "text", _use_color(color, sys.stderr)), file=sys.stderr)
    if not result.ok:
        errors, _ = _counts(result.diagnostics)
        print(f"{_plural(errors, 'error')}; {consequence}", file=sys.stderr)
        return None, EXIT_ERRORS
    return result, None


def cmd_compile(args) -> int:
    result, code = _load_checked(args.file, args.input, args.color, "nothing written")
    if result is None:
        return code
    chosen = target(args.target)
    if chosen.kind == "export":
        return _export_onnx(args, result)
    if args.weights or args.model or args.no_fold or args.no_verify:  # not silently ignored
        print("error: --weights, --model, --no-fold and --no-verify apply to --target onnx", file=sys.stderr)
        return EXIT_USAGE
    if chosen.training and _train_config(result.program, args.file) is None:
        return EXIT_USAGE
    code = chosen.load()(result.program)
    default_out = chosen.default_output(args.file)
    out = args.output or ("-" if args.file == "-" else default_out)
    try:
        if out == "-":
            sys.stdout.write(code)
            sys.stdout.flush()
            return EXIT_OK
        from nndsl.files import spec_files, write_atomically

        write_atomically(out, lambda temporary: _write_text(temporary, code), spec_files(result.program))
    except BrokenPipeError:  # `nndsl compile x.nn -o - | head`: the reader stopped early
        return EXIT_OK
    except OSError as exc:
        where = "standard output" if out == "-" else out
        print(f"error: cannot write {where}: {_flags(str(exc.strerror or exc))}", file=sys.stderr)
        return EXIT_USAGE
    print(f"wrote {out}", file=sys.stderr)
    return EXIT_OK


def cmd_export(args) -> int:
    result, code = _load_checked(args.file, args.input, args.color, "nothing written")
    if result is None:
        return code
    return _export_onnx(args, result)


def _export_onnx(args, result) -> int:
    """Export each chosen model to its .onnx file; every problem is a message or a diagnostic."""
    from nndsl import export as onnx_export

    export = target("onnx").load()

    program = result.program
    color = _use_color(args.color, sys.stderr)
    try:
        models = onnx_export.models_to_export(program, args.model)
        if not models:
            print(f"error: {args.file} defines no model to export", file=sys.stderr)
            return EXIT_USAGE
        if args.output and len(models) > 1:
            names = ", ".join(m.name for m in models)
            print(f"error: {args.file} has several models ({names}); choose one with --model for -o", file=sys.stderr)
            return EXIT_USAGE
        status = EXIT_OK
        for model in models:
            out = args.output or onnx_export.default_path(args.file, model, len(models) > 1)
            try:
                done = export(
                    program, model, out, args.weights, args.opset, not args.no_fold, verify=not args.no_verify
                )
            except onnx_export.ExportDiagnostics as exc:
                print(_render([_with_flags(d) for d in exc.diagnostics], "text", color), file=sys.stderr)
                print(f"{_plural(len(exc.diagnostics), 'error')}; {model.name}: nothing written", file=sys.stderr)
                status = EXIT_ERRORS
                continue
            print(_export_summary(done), file=sys.stderr)
        return status
    except onnx_export.ExportFailure as exc:
        print(f"error: {_flags(str(exc))}", file=sys.stderr)
        return EXIT_USAGE


#: how the library's messages name an API parameter or an output, and the command line's way to set it
_PARAMETER_FLAGS = {
    "opset=N": "--opset N",
    "verify=False": "--no-verify",
    "weights=": "--weights ",
    "input=": "--input ",
    "choose another output path": "choose another output path with -o",
}
_PARAMETER = re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, _PARAMETER_FLAGS)) + ")")


def _flags(text: str) -> str:
    """A library message as the command line says it: ``pass verify=False`` becomes ``pass --no-verify``."""
    return _PARAMETER.sub(lambda m: _PARAMETER_FLAGS[m.group(1)], text)


def _with_flags(diag: Diagnostic) -> Diagnostic:
    return diag._replace(message=_flags(diag.message), help=diag.help and _flags(diag.help))


def _export_summary(done) -> str:
    ins = ", ".join(f"{n}: {t}" for n, t in done.inputs)
    outs = ", ".join(f"{n}: {t}" for n, t in done.outputs)
    folded = f"; {_plural(done.folded, 'BatchNorm')} folded" if done.folded else ""
    lines = [
        f"wrote {done.path}: {done.model} ({ins}) -> ({outs}), opset {done.opset}, {done.size:,} bytes{folded}",
        f"  weights: {done.weights}",
    ]
    if done.verified is None:
        lines.append("  NOT verified (--no-verify): neither onnx.checker nor onnxruntime has run it")
        return "\n".join(lines)
    cases = " and ".join(
        ", ".join(f"{k}={v}" for k, v in c.sizes.items()) or "the declared shape" for c in done.verified.cases
    )
    lines.append(
        f"  verified: onnx.checker full check; onnxruntime vs {done.verified.reference} at {cases}: "
        f"max |diff| {done.verified.max_diff:.2g} (limit {done.verified.limit:.2g})"
    )
    if done.verified.by_shape:
        names = ", ".join(done.verified.by_shape)
        lines.append(f"  ({names}: compared by shape, dtype and finiteness only, as they depend on random values)")
    if done.verified.reference != "torch":
        lines.append("  (torch is not installed: compared with ONNX's reference evaluator of the unfolded graph)")
    return "\n".join(lines)


def _train_config(program, path: str):
    """The spec's checked train section, or None with a message when it has none."""
    if program.trainings:
        return program.trainings[0]
    example = "train Model {\n    data = digits()\n    loss = CrossEntropyLoss()\n    optimizer = Adam(lr=0.001)\n}"
    print(f"error: {path} has no train section; add one, for example:\n\n{example}", file=sys.stderr)
    return None


_TRAIN_USAGE = """usage: nndsl train FILE [FLAG ...]

Train the model of FILE's train section in this process (the same training as the script that
`nndsl compile FILE --target train` writes). Flags after FILE override the section's settings:
`nndsl train FILE --help` lists them. Needs the train extra: {install}.
"""


def cmd_train(args) -> int:
    if args.file is None or args.file in ("-h", "--help"):
        from nndsl.install import install_command

        sys.stdout.write(_TRAIN_USAGE.format(install=install_command("train")))
        return EXIT_OK if args.file else EXIT_USAGE
    result, code = _load_checked(args.file, None, "auto", "nothing trained")
    if result is None:
        return code
    config = _train_config(result.program, args.file)
    if config is None:
        return EXIT_USAGE
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        from nndsl.install import install_hint

        print(f"error: training needs PyTorch: {install_hint('train')}", file=sys.stderr)
        return EXIT_USAGE
    from nndsl.backends.train_script import load_script

    script = load_script(result.program, config)
    try:
        return script.main(args.script_args, prog=f"nndsl train {args.file}")
    except SystemExit as exc:  # the script's argparse: --help, or a malformed flag
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE


def _write_text(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def cmd_summary(args) -> int:
    from nndsl.backends.summary_table import command

    return command(args, _load_checked)


def cmd_layers(args) -> int:
    from nndsl.check import signature
    from nndsl.layers import REGISTRY

    for name in sorted(REGISTRY, key=str.lower):
        layer = REGISTRY[name]
        doc = (layer.__doc__ or "").strip().splitlines()[0]
        print(f"{signature(layer)}\n    {doc}")
    return EXIT_OK


def cmd_codes(args) -> int:
    for code, title in CATALOGUE.items():
        print(f"{code}  {title}")
    return EXIT_OK


def cmd_lsp(args) -> int:
    try:
        import pygls  # noqa: F401
    except ImportError:
        from nndsl.install import install_hint

        print(f"error: the language server needs pygls: {install_hint('lsp')}", file=sys.stderr)
        return EXIT_USAGE
    from nndsl.lsp.server import serve

    return serve()


def cmd_fmt(args) -> int:
    from nndsl.fmt import run

    if args.line_width < 1 or "-" in args.files and len(args.files) > 1:
        problem = "--line-width must be at least 1" if args.line_width < 1 else "'-' (standard input) goes alone"
        print(f"nndsl fmt: error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    return run(args, _use_color(args.color, sys.stderr))


def _parse_args(argv: list[str] | None):
    """argparse, letting ``check`` take file names after options (``check a.nn --shapes b.nn``)."""
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "check":
        args.files += [e for e in extra if not e.startswith("-") or e == "-"]
        extra = [e for e in extra if e.startswith("-") and e != "-"]
    if args.command == "train" and extra:  # flags before FILE: only --help makes sense there
        args.file = "--help" if {"-h", "--help"} & set(extra) else None
        extra = []
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "check" and not args.files:
        parser.error("check needs at least one FILE")
    return args


def _parse_input(args) -> bool:
    """Parse --input once into ``args.input`` (a TensorType); False, with diagnostics shown, if malformed."""
    text = getattr(args, "input", None)
    if text is None:
        return True
    from nndsl.api import parse_input_shape
    from nndsl.diagnostics import DiagnosticSink

    sink = DiagnosticSink()
    args.input = parse_input_shape(text, sink, "--input")
    if args.input is not None and not sink.has_errors:
        return True
    print("\n\n".join(render_text(d) for d in sink.items), file=sys.stderr)
    print("nndsl: error: --input is not a shape such as '[N, 1, 28, 28]'", file=sys.stderr)
    return False


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    handler = {
        "check": cmd_check,
        "compile": cmd_compile,
        "export": cmd_export,
        "train": cmd_train,
        "summary": cmd_summary,
        "layers": cmd_layers,
        "codes": cmd_codes,
        "fmt": cmd_fmt,
        "lsp": cmd_lsp,
        "graph": lambda args: graph_command.cmd_graph(args, _load_checked),
    }
    handler = handler[args.command]
    try:
        if not _parse_input(args):
            return EXIT_USAGE  # --input is part of the command line: a usage error
        return handler(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # a bug in nndsl itself: say so plainly instead of a traceback
        if os.environ.get("NNDSL_DEBUG"):
            raise
        print(
            f"nndsl: internal error: {type(exc).__name__}: {exc}\n"
            "This is a bug in nndsl, not in your spec; set NNDSL_DEBUG=1 to see the traceback.",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
