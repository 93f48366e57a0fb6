"""ONNX: nndsl's exporter against torch.onnx's, onnxruntime against torch eager, BatchNorm folding.

    python benchmarks/bench_onnx.py [--rounds 5] [--quick]

All in one process, torch on one thread (``torch.set_num_threads(1)``), onnxruntime on one thread
(``intra_op_num_threads = inter_op_num_threads = 1``, sequential execution, CPU provider), a
warm-up before anything is timed, ``gc.collect()`` (untimed) before every timed call, and the
order of what is compared alternating from round to round. Every model is the module nndsl emits
for the spec, holding torch's own seeded initialisation (``fresh_weights``); the ONNX side gets the
very same weights.

* **Export time** for ``specs/fashion_mlp.nn``, ``cnn.nn``, ``lstm_classifier.nn``,
  ``zoo/lenet5.nn`` and ``zoo/resnet18.nn``. nndsl, two ways: ``export_model`` (the graph built
  from the checked IR and the weights, BatchNorm and constants folded), then the model serialised
  and written to a file; and ``nndsl.export.export`` as ``nndsl export FILE --weights W.safetensors``
  runs it (weights read, preflight, graph, file written atomically), once verified (onnx.checker's
  full check, then onnxruntime against torch at two batch sizes; the verification's own time is
  taken apart by wrapping ``onnx_verify.verify``) and once with ``verify=False`` (``--no-verify``).
  torch: ``torch.onnx.export(module, (example,),
  path, dynamo=True, dynamic_shapes=..., external_data=False)``, the default (dynamo) exporter with
  its default opset and optimisation, writing one file as nndsl does; its progress prints and
  warnings are silenced. The example has 2 rows (a size of 1 would be specialised) and a sequence
  of 7 steps; every symbolic size of the spec (N, T) is given as ``torch.export.Dim.AUTO``, so both
  sides give a dynamic-batch (and dynamic-length) model, which the table checks in each file. (A
  named ``Dim("T")`` is not enough: torch 2.13 silently specialises the LSTM's T to 7 from the
  second export in a process on.) The four are timed in the same rounds, in a rotating order.
  Figures: medians over rounds, and the medians of the per-round ratios torch / nndsl (for
  ``export_model`` + save, target >= 20 for every model; for the verified and unverified user
  export, reported). A model with a layer that has no ONNX mapping yet is reported as skipped.
* **Inference latency** of the FashionMNIST MLP and ResNet-18 (3x224x224) at batch 1 and 64:
  onnxruntime (default graph optimisations, ``ORT_ENABLE_ALL``) on nndsl's export against torch
  eager (``eval()``, ``no_grad``). Each round times a block of back-to-back calls of each (about
  0.25 s, at least one call); ResNet-18 at batch 64 takes seconds a call, so it gets 3 rounds of
  one call. Figures: median ms per call, the median of the per-round ratios ort / torch, and the
  largest difference between the two outputs.
* **BatchNorm folding** on ResNet-18: the export with ``fold_batchnorm=True`` against ``False``;
  node count, BatchNormalization nodes, file size, nodes left after onnxruntime's own
  optimisations, both verified against torch (largest difference), and onnxruntime latency at
  batch 1 and 8 with its graph optimisations off (``ORT_DISABLE_ALL``: what the folding removes)
  and on (``ORT_ENABLE_ALL``: onnxruntime fuses Conv + BatchNormalization itself); ratios are
  unfolded / folded per round, the four sessions timed in a rotating order.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import logging
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from _common import SPECS, Figure, ensure_importable, fmt_s, median, print_table, timed

ensure_importable()

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # torch's "Failed to initialize NumPy" when numpy is absent
    import torch  # noqa: E402
import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

import nndsl  # noqa: E402
from nndsl import export as nndsl_export_api  # noqa: E402
from nndsl.backends import onnx_verify as onnx_verify_module  # noqa: E402
from nndsl.backends.onnx_export import ExportProblem, export_model  # noqa: E402
from nndsl.backends.onnx_verify import _role, symbols, verify  # noqa: E402
from nndsl.backends.torch_build import build_model, fresh_weights  # noqa: E402

EXPORT_SPECS = ("fashion_mlp.nn", "cnn.nn", "lstm_classifier.nn", "zoo/lenet5.nn", "zoo/resnet18.nn")
LATENCY_SPECS = ("fashion_mlp.nn", "zoo/resnet18.nn")
LATENCY_BATCHES = (1, 64)
FOLD_SPEC = "zoo/resnet18.nn"
FOLD_BATCHES = (1, 8)
#: sizes of the example torch.onnx traces with, by the role of the symbol (2, not 1: 1 is specialised)
EXAMPLE_SIZES = {"batch": 2, "sequence": 7}
TARGET_EXPORT_RATIO = 20.0
BLOCK_S = 0.25  # seconds of back-to-back calls per timed block
SLOW_CALL_S = 1.0  # a call this slow is timed alone, in fewer rounds
SLOW_ROUNDS = 3
THREADS = 1
LEVELS = {"off": ort.GraphOptimizationLevel.ORT_DISABLE_ALL, "on": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}


# ---------------------------------------------------------------- helpers


@dataclass
class Subject:
    """One spec's first model, its weights and the emitted torch module holding them."""

    spec: str
    program: object
    model: object
    weights: dict
    module: torch.nn.Module
    example: tuple = ()
    dynamic: tuple = ()
    skipped: str = ""
    layers: int = 0
    params: int = 0
    results: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.model.name


def load(spec: str) -> Subject:
    result = nndsl.check_file(SPECS / spec)
    if not result.ok:
        raise RuntimeError(f"{spec} failed to check: {result.errors[:3]}")
    program = result.program
    model = program.models[0]
    weights = fresh_weights(program, model)
    module = build_model(program, model, weights)
    subject = Subject(spec, program, model, weights, module)
    subject.layers = len(model.layers)
    subject.params = sum(p.numel() for p in module.parameters())
    sizes = {}
    for name in symbols(model):
        role = _role(name)
        if role not in EXAMPLE_SIZES:
            raise RuntimeError(f"{spec}: no example size for the symbol {name}")
        sizes[name] = EXAMPLE_SIZES[role]
    examples, dynamic = [], []
    gen = torch.Generator().manual_seed(0)
    for tensor in model.input_types:
        dims, dyn = [], {}
        for axis, d in enumerate(tensor.shape.dims):
            if isinstance(d, int):
                dims.append(d)
            else:
                (atom,) = d.atoms()  # a bare symbol: N, T
                dims.append(sizes[atom.name])
                dyn[axis] = torch.export.Dim.AUTO
        examples.append(torch.randn(*dims, generator=gen))
        dynamic.append(dyn)
    subject.example, subject.dynamic = tuple(examples), tuple(dynamic)
    return subject


def describe_problem(exc: ExportProblem) -> str:
    where = exc.node.layer.dsl_name() if getattr(exc, "node", None) is not None else ""
    return f"{where}: {exc.message}" if where else exc.message


def runs_for(seconds: float) -> int:
    """Back-to-back calls that fill a block of about BLOCK_S."""
    return max(1, round(BLOCK_S / max(seconds, 1e-9)))


def symbolic_axes(proto: onnx.ModelProto) -> str:
    """The axes of the graph inputs that have a symbolic size, e.g. ``0,1`` (``;`` between inputs)."""
    return ";".join(
        ",".join(str(a) for a, d in enumerate(i.type.tensor_type.shape.dim) if d.dim_param) or "none"
        for i in proto.graph.input
    )


def session(data: bytes, level=ort.GraphOptimizationLevel.ORT_ENABLE_ALL, optimized: Path | None = None):
    options = ort.SessionOptions()
    options.intra_op_num_threads = THREADS
    options.inter_op_num_threads = THREADS
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = level
    options.log_severity_level = 3
    if optimized is not None:
        options.optimized_model_filepath = str(optimized)
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


@contextlib.contextmanager
def quiet():
    """torch.onnx's progress prints, warnings and log lines, out of the way."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    sink = io.StringIO()
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def table(headers: tuple[str, ...], rows: list[tuple]) -> str:
    cells = [tuple(str(c) for c in row) for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join("  " + line for line in lines)


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f}" if seconds < 0.01 else f"{seconds * 1e3:.1f}"


# ---------------------------------------------------------------- 1. export time


def nndsl_export(s: Subject, path: Path) -> tuple[float, float, object]:
    """(export_model seconds, serialise-and-write seconds, Exported)."""
    start = time.perf_counter()
    exported = export_model(s.program, s.model, s.weights)
    built = time.perf_counter()
    with path.open("wb") as handle:
        exported.write(handle)
    return built - start, time.perf_counter() - built, exported


def torch_export(s: Subject, path: Path) -> None:
    with quiet():
        torch.onnx.export(
            s.module,
            s.example,
            str(path),
            dynamo=True,
            dynamic_shapes=s.dynamic,
            input_names=list(s.model.input_names),
            external_data=False,
        )


def user_export(s: Subject, path: Path, weights: Path, verify: bool) -> tuple[float, float, object]:
    """What ``nndsl export FILE --weights W [--no-verify]`` does, timed: (total seconds, of which
    verification, the ExportResult)."""
    spent = []

    def timed_verify(*args, **kwargs):
        start = time.perf_counter()
        try:
            return real_verify(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - start)

    real_verify = onnx_verify_module.verify
    onnx_verify_module.verify = timed_verify
    try:
        start = time.perf_counter()
        done = nndsl_export_api.export(s.program, s.model, str(path), str(weights), verify=verify)
        total = time.perf_counter() - start
    finally:
        onnx_verify_module.verify = real_verify
    return total, sum(spent), done


def run_export(subjects: list[Subject], rounds: int, work: Path) -> list[Figure]:
    live = []
    for s in subjects:  # warm-up; a missing ONNX mapping skips the model
        try:
            nndsl_export(s, work / f"{s.name}.nndsl.onnx")
        except ExportProblem as exc:
            s.skipped = describe_problem(exc)
            print(f"  {s.spec}: skipped ({s.skipped})", flush=True)
            continue
        save_file(s.weights, str(work / f"{s.name}.safetensors"))
        user_export(s, work / f"{s.name}.user.onnx", work / f"{s.name}.safetensors", verify=True)
        gc.collect()
        start = time.perf_counter()
        torch_export(s, work / f"{s.name}.torch.onnx")
        print(f"  {s.spec}: warm-up, torch.onnx.export {time.perf_counter() - start:.2f} s", flush=True)
        live.append(s)
    keys = ("build", "save", "verified", "verify", "unverified", "torch", "diff")
    times = {id(s): {k: [] for k in keys} for s in live}
    for r in range(rounds):
        for i in range(len(live)):
            s = live[(i + r) % len(live)]
            t = times[id(s)]
            sides = ["parts", "verified", "unverified", "torch"]
            sides = sides[(r + i) % 4 :] + sides[: (r + i) % 4]  # a rotating order
            for side in sides:
                gc.collect()
                if side == "torch":
                    start = time.perf_counter()
                    torch_export(s, work / f"{s.name}.torch.onnx")
                    t["torch"].append(time.perf_counter() - start)
                elif side == "parts":
                    # the MLP's export takes milliseconds: a few back to back, so that one run is not one sample
                    runs = max(1, min(10, round(0.2 / max(median(t["build"]) if t["build"] else 0.2, 1e-6))))
                    build = save = 0.0
                    for _ in range(runs):
                        b, w, _ = nndsl_export(s, work / f"{s.name}.nndsl.onnx")
                        build, save = build + b / runs, save + w / runs
                    t["build"].append(build)
                    t["save"].append(save)
                else:
                    verify = side == "verified"
                    total, checking, done = user_export(
                        s, work / f"{s.name}.user.onnx", work / f"{s.name}.safetensors", verify
                    )
                    t[side].append(total)
                    if verify:
                        t["verify"].append(checking)
                        t["diff"].append(done.verified.max_diff)
        print(f"  export round {r + 1}/{rounds} done", flush=True)

    rows, figures = [], []
    for s in live:
        t = times[id(s)]
        mine = onnx.load(str(work / f"{s.name}.nndsl.onnx"), load_external_data=False)
        theirs = onnx.load(str(work / f"{s.name}.torch.onnx"), load_external_data=False)
        full = median([a / (b + c) for a, b, c in zip(t["torch"], t["build"], t["save"])])
        bare = median([a / b for a, b in zip(t["torch"], t["build"])])
        verified = median([a / b for a, b in zip(t["torch"], t["verified"])])
        unverified = median([a / b for a, b in zip(t["torch"], t["unverified"])])
        share = median([v / b for v, b in zip(t["verify"], t["verified"])])
        s.results["export"] = {"ratio": full, "bare": bare, "verified": verified, "unverified": unverified}
        rows.append(
            (
                s.name,
                f"{s.layers}",
                f"{s.params:,}",
                ms(median(t["build"])),
                ms(median(t["save"])),
                f"{ms(median(t['verified']))} ({share:.0%})",
                ms(median(t["unverified"])),
                f"{ms(median(t['verify']))} ({max(t['diff']):.1e})",
                f"{median(t['torch']):.2f} s",
                f"{verified:.1f}x / {unverified:.1f}x",
                f"{full:.0f}x",
                f"{len(mine.graph.node)} / {len(theirs.graph.node)}",
                f"{mine.opset_import[0].version} / {theirs.opset_import[0].version}",
                f"{symbolic_axes(mine)} / {symbolic_axes(theirs)}",
            )
        )
        figures += [
            Figure(
                f"onnx export {s.name}: nndsl export + save / verify (median of {rounds})",
                f"{fmt_s(median(t['build']) + median(t['save']))} / {fmt_s(median(t['verify']))}",
            ),
            Figure(
                f"onnx export {s.name}: `nndsl export` verified / --no-verify (median of {rounds})",
                f"{fmt_s(median(t['verified']))} (verification {share:.0%}) / {fmt_s(median(t['unverified']))}",
            ),
            Figure(
                f"onnx export {s.name}: torch.onnx.export, dynamo (median of {rounds})",
                f"{fmt_s(median(t['torch']))}  (symbolic input axes: nndsl {symbolic_axes(mine)}, "
                f"torch {symbolic_axes(theirs)})",
            ),
            Figure(
                f"onnx export {s.name}: torch / `nndsl export` verified, --no-verify",
                f"{verified:.1f}, {unverified:.1f}",
            ),
            Figure(
                f"onnx export {s.name}: torch / nndsl",
                f"{full:.1f}  (export_model alone: {bare:.1f})",
                f">= {TARGET_EXPORT_RATIO:g}",
                full >= TARGET_EXPORT_RATIO,
            ),
        ]
    headers = (
        "model",
        "layers",
        "params",
        "nndsl ms",
        "+save ms",
        "export ms (verify %)",
        "--no-verify ms",
        "verify ms (diff)",
        "torch",
        "torch/export v / nv",
        "torch/(nndsl+save)",
        "nodes n/t",
        "opset n/t",
        "dynamic axes n/t",
    )
    print("\nONNX export: nndsl export_model (+ serialise and write), and `nndsl export` as a user runs it")
    print("(weights read from .safetensors, preflight, graph, file; verified or --no-verify), vs")
    print("torch.onnx.export(dynamo=True) to a file, all in the same rounds")
    print(f"medians of {rounds} rounds; ratios are medians of the per-round ratios; n/t = nndsl / torch")
    print(table(headers, rows))
    for s in subjects:
        if s.skipped:
            print(f"  {s.name}: skipped, {s.skipped}")
            figures.append(Figure(f"onnx export {s.name}: torch / nndsl", f"skipped ({s.skipped})"))
    print()
    return figures


# ---------------------------------------------------------------- 2. inference latency


def compare(calls: dict, rounds: int, slow_rounds: int) -> dict[str, list[float]]:
    """Per-call seconds of each call over rounds, the order rotating; warm-up and block size first."""
    names = list(calls)
    runs, slow = {}, False
    for name, fn in calls.items():
        fn()  # warm-up
        once = timed(fn)
        runs[name], slow = runs_for(once), slow or once >= SLOW_CALL_S
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(slow_rounds if slow else rounds):
        k = r % len(names)
        order = names[k:] + names[:k]
        for name in order if r % 2 == 0 else order[::-1]:
            times[name].append(timed(calls[name], runs[name]))
    return times


def run_latency(subjects: dict[str, Subject], exported: dict, rounds: int, slow_rounds: int) -> list[Figure]:
    rows, figures = [], []
    for spec in LATENCY_SPECS:
        s = subjects[spec]
        if s.skipped:
            print(f"  {s.name}: skipped, {s.skipped}")
            figures.append(Figure(f"onnx latency {s.name}", f"skipped ({s.skipped})"))
            continue
        sess = session(exported[spec].to_bytes())
        (name,) = s.model.input_names
        for batch in LATENCY_BATCHES:
            shape = (batch,) + tuple(s.example[0].shape[1:])
            x = np.random.default_rng(batch).standard_normal(shape).astype(np.float32)
            xt = torch.from_numpy(x)

            def eager(module=s.module, xt=xt):
                with torch.no_grad():
                    return module(xt)

            def onnxrt(sess=sess, feeds={name: x}):  # noqa: B006 - bound per loop, never mutated
                return sess.run(None, feeds)

            diff = float(np.max(np.abs(eager().numpy().astype(np.float64) - onnxrt()[0])))
            times = compare({"torch": eager, "ort": onnxrt}, rounds, slow_rounds)
            ratio = median([a / b for a, b in zip(times["ort"], times["torch"])])
            n = len(times["ort"])
            rows.append(
                (
                    s.name,
                    batch,
                    ms(median(times["torch"])),
                    ms(median(times["ort"])),
                    f"{ratio:.2f}",
                    f"{min(a / b for a, b in zip(times['ort'], times['torch'])):.2f}.."
                    f"{max(a / b for a, b in zip(times['ort'], times['torch'])):.2f}",
                    n,
                    f"{diff:.1e}",
                )
            )
            figures += [
                Figure(
                    f"onnx latency {s.name} batch {batch}: torch eager / ort (median of {n})",
                    f"{fmt_s(median(times['torch']))} / {fmt_s(median(times['ort']))}",
                ),
                Figure(f"onnx latency {s.name} batch {batch}: ort / torch", f"{ratio:.2f}  (max diff {diff:.1e})"),
            ]
            print(f"  {s.name} batch {batch}: ort / torch {ratio:.2f}", flush=True)
    headers = ("model", "batch", "torch ms", "ort ms", "ort/torch", "rounds range", "rounds", "max diff")
    print("\nInference: onnxruntime (ORT_ENABLE_ALL) on nndsl's export vs torch eager, both on 1 thread")
    print(table(headers, rows))
    print()
    return figures


# ---------------------------------------------------------------- 3. BatchNorm folding


def run_folding(s: Subject, folded, rounds: int, slow_rounds: int, work: Path) -> list[Figure]:
    if s.skipped:
        print(f"  {s.name}: skipped, {s.skipped}\n")
        return [Figure(f"onnx folding {s.name}", f"skipped ({s.skipped})")]
    unfolded = export_model(s.program, s.model, s.weights, fold_batchnorm=False)
    protos = {"folded": folded, "unfolded": unfolded}
    info = {}
    for kind, exported in protos.items():
        data = exported.to_bytes()
        verified = verify(s.program, s.model, exported.proto, s.weights, exported.output_names, build=build_model)
        optimized = work / f"{kind}.ort.onnx"
        session(data, LEVELS["on"], optimized)
        after = onnx.load(str(optimized), load_external_data=False)
        info[kind] = {
            "data": data,
            "nodes": len(exported.proto.graph.node),
            "bn": sum(n.op_type == "BatchNormalization" for n in exported.proto.graph.node),
            "size": len(data),
            "ort nodes": len(after.graph.node),
            "diff": verified.max_diff,
            "folded": exported.folded,
        }
    print("  folding: exported, verified", flush=True)
    times = {}
    (name,) = s.model.input_names
    for batch in FOLD_BATCHES:
        shape = (batch,) + tuple(s.example[0].shape[1:])
        x = np.random.default_rng(batch).standard_normal(shape).astype(np.float32)
        calls = {}
        for kind in protos:
            for level in LEVELS:
                sess = session(info[kind]["data"], LEVELS[level])
                calls[(kind, level)] = lambda sess=sess, x=x: sess.run(None, {name: x})
        times[batch] = compare(calls, rounds, slow_rounds)
        print(f"  folding: batch {batch} timed", flush=True)

    rows = [
        (
            kind,
            i["folded"],
            i["nodes"],
            i["bn"],
            f"{i['size'] / 1e6:.2f} MB",
            i["ort nodes"],
            f"{i['diff']:.1e}",
        )
        for kind, i in info.items()
    ]
    print(f"\nBatchNorm folding, {s.name}: the export with fold_batchnorm=True and False")
    print(table(("export", "BN folded", "nodes", "BN nodes", "size", "nodes after ORT_ENABLE_ALL", "max diff"), rows))
    lrows, figures = [], []
    for batch, t in times.items():
        for level in LEVELS:
            a, b = t[("unfolded", level)], t[("folded", level)]
            ratio = median([u / f for u, f in zip(a, b)])
            lrows.append(
                (
                    batch,
                    f"ORT_{'ENABLE' if level == 'on' else 'DISABLE'}_ALL",
                    ms(median(b)),
                    ms(median(a)),
                    f"{ratio:.3f}",
                    len(a),
                )
            )
            figures.append(
                Figure(
                    f"onnx folding {s.name} batch {batch}, ort opt {level}: folded / unfolded ms",
                    f"{ms(median(b))} / {ms(median(a))}  (unfolded / folded {ratio:.3f})",
                )
            )
    print(table(("batch", "ort graph opt", "folded ms", "unfolded ms", "unfolded/folded", "rounds"), lrows))
    print()
    f, u = info["folded"], info["unfolded"]
    figures[:0] = [
        Figure(
            f"onnx folding {s.name}: nodes, folded / unfolded",
            f"{f['nodes']} / {u['nodes']}  ({f['folded']} BN folded; after ORT_ENABLE_ALL {f['ort nodes']} / {u['ort nodes']})",
        ),
        Figure(f"onnx folding {s.name}: file, folded / unfolded", f"{f['size'] / 1e6:.2f} / {u['size'] / 1e6:.2f} MB"),
        Figure(
            f"onnx folding {s.name}: both verify, max diff vs torch",
            f"{f['diff']:.1e} / {u['diff']:.1e}",
        ),
    ]
    return figures


# ---------------------------------------------------------------- all three


def run(rounds: int = 5, slow_rounds: int = SLOW_ROUNDS) -> list[Figure]:
    torch.set_num_threads(THREADS)
    specs = dict.fromkeys(EXPORT_SPECS + LATENCY_SPECS + (FOLD_SPEC,))
    subjects = {spec: load(spec) for spec in specs}
    with tempfile.TemporaryDirectory(prefix="nndsl-bench-onnx-") as temp:
        work = Path(temp)
        figures = run_export([subjects[spec] for spec in EXPORT_SPECS], rounds, work)
        exported = {}
        for spec in dict.fromkeys(LATENCY_SPECS + (FOLD_SPEC,)):
            if not subjects[spec].skipped:
                exported[spec] = export_model(subjects[spec].program, subjects[spec].model, subjects[spec].weights)
        figures += run_latency(subjects, exported, rounds, slow_rounds)
        figures += run_folding(subjects[FOLD_SPEC], exported.get(FOLD_SPEC), rounds, slow_rounds, work)
    ratios = {s.name: s.results["export"]["ratio"] for s in subjects.values() if "export" in s.results}
    skipped = [s.name for s in (subjects[spec] for spec in EXPORT_SPECS) if s.skipped]
    met = bool(ratios) and all(r >= TARGET_EXPORT_RATIO for r in ratios.values())
    worst = min(ratios, key=ratios.get) if ratios else None
    figures.append(
        Figure(
            "onnx export: torch / nndsl, slowest ratio over the models",
            (f"{ratios[worst]:.1f} ({worst})" if worst else "no model exported")
            + (f"; {len(skipped)} skipped: {', '.join(skipped)}" if skipped else ""),
            f">= {TARGET_EXPORT_RATIO:g}",
            met,
        )
    )
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds of each comparison (default 5)")
    parser.add_argument("--quick", action="store_true", help="3 rounds, 2 for the slow calls; figures are rougher")
    args = parser.parse_args()
    started = time.perf_counter()
    rounds, slow = (3, 2) if args.quick else (args.rounds, SLOW_ROUNDS)
    figures = run(rounds, slow)
    print_table(
        figures,
        f"nndsl ONNX benchmarks: torch {torch.__version__}, onnxruntime {ort.__version__}, "
        f"onnx {onnx.__version__}, total {time.perf_counter() - started:.0f} s",
    )
    final = figures[-1]
    print(f"\n{final.verdict}: {final.name} {final.value} (target {final.target})")
    return 0 if final.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
