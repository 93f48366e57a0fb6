"""Run every benchmark and print one table of figures with PASS/FAIL against the targets.

    python benchmarks/run_all.py            # about 6-8 minutes on two cores
    python benchmarks/run_all.py --quick    # fewer repetitions, for a smoke test (about 4 minutes)
    python benchmarks/run_all.py --fuzz 2000  # also fuzz 2,000 cases and judge 2,000 against torch

Sections run in this order: cold start (subprocesses), in-process check of long chains (with
the split of a 10k chain's check between syntax stage and checking, and the peak memory of the
longest chains), forward+backward of built versus hand-written modules (imports torch, one thread), and the
ResNet zoo: check time against torch building the network on the meta device, and against depth;
then the generated training script's epoch time against the PyTorch tutorial's loop and the compute
floor (about 4 minutes; 2.5 with --quick); each train spec's script in a fresh process; and the ONNX
backend: export time against torch.onnx.export, onnxruntime against torch eager, BatchNorm folding
(about 3 minutes); and ``nndsl graph`` drawing the largest zoo model (about 10 seconds).
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
import warnings

from _common import REPO, Figure, print_table


def tree_state() -> str:
    """The commit measured, and whether the code under it has uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "nndsl", "grammars"],
            cwd=REPO,
            capture_output=True,
            text=True,
        ).stdout.splitlines()
    except OSError:
        return "not a git checkout"
    return f"commit {head or '?'}" + (
        f" + uncommitted changes in {len(dirty)} file(s) of nndsl/ and grammars/" if dirty else ""
    )


def fuzz_figures(cases: int) -> list[Figure]:
    """The fuzz harness and the differential test against torch, ``cases`` cases each (seed 0)."""
    import differential
    import fuzz

    print(f"[+] fuzz: {cases} mutated specs and random programs ...", flush=True)
    summary = fuzz.run(cases, seed=0)
    failing = len({c.index for items in summary.by_signature.values() for c, _ in items})
    print(summary.text(), end="\n\n")
    print(f"[+] differential: {cases} cases against torch ...", flush=True)
    counts, found, seconds = differential.run(cases, seed=0)
    print(differential.report(counts, found, seconds, 2), end="\n\n")
    disagree = sum(v for k, v in counts.items() if k[3] == "disagree")
    return [
        Figure("fuzz: cases/s (2 workers)", f"{summary.cases / max(summary.seconds, 1e-9):.1f}"),
        Figure("fuzz: failing cases (exceptions, exit 3, hangs)", str(failing), "0", failing == 0),
        Figure("differential: cases/s (2 workers)", f"{sum(counts.values()) / max(seconds, 1e-9):.1f}"),
        Figure("differential: disagreements with torch", str(disagree), "0", disagree == 0),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions; figures are rougher")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="print the import, check and training profiles even when their targets are met",
    )
    parser.add_argument(
        "--fuzz",
        type=int,
        default=0,
        metavar="N",
        help="also run N fuzz cases (benchmarks/fuzz.py) and N differential cases (benchmarks/differential.py)",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    figures: list[Figure] = []

    import bench_cold_start

    print("[1/7] cold start ...", flush=True)
    cold = bench_cold_start.run(reps=7 if args.quick else 11, miss_reps=1 if args.quick else 3)
    figures += cold
    if args.profile or any(f.passed is False for f in cold):
        print(bench_cold_start.import_profile(), end="\n\n")

    import bench_check_scaling

    print("[2/7] in-process check of 1k / 10k layer chains ...", flush=True)
    check_figures, profiles = bench_check_scaling.run(reps=5, force_profile=args.profile)
    figures += check_figures
    for text in profiles:
        print(text, end="\n\n")

    import bench_parse_split

    print("[2/7] ... a 10k chain's syntax stage vs its checking; longest chains' peak memory ...", flush=True)
    figures += bench_parse_split.run(rounds=5 if args.quick else 9)

    import bench_fmt

    print("[2/7] ... nndsl fmt on the largest zoo spec and on a 10k chain, against check ...", flush=True)
    figures += bench_fmt.run(rounds=7 if args.quick else 15)

    try:
        import bench_lsp
    except ImportError as exc:  # the lsp extra (pygls) is not installed
        figures.append(Figure("lsp: skipped", f"{exc.name or exc} is not installed"))
    else:
        print("[2/7] ... the language server: an edit of ResNet-50 / a 10k chain to its diagnostics ...", flush=True)
        figures += bench_lsp.run(repeats=11 if args.quick else 21, chain_repeats=3 if args.quick else 5)

    print("[3/7] forward+backward, built vs hand-written ...", flush=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's "Failed to initialize NumPy" when numpy is absent
        import bench_forward_backward
        import torch

    figures += bench_forward_backward.run(seconds=6.0 if args.quick else 20.0)

    import bench_zoo

    print("[4/7] ResNet zoo: check vs torch meta build, check vs depth ...", flush=True)
    figures += bench_zoo.run(rounds=5 if args.quick else 15)

    import bench_modern

    print("[4/7] ... GPT-2 small and ViT-B/16: check vs torch meta build + forward ...", flush=True)
    figures += bench_modern.run(rounds=5 if args.quick else 15)

    import bench_summary

    print("[4/7] ... nndsl summary vs torchinfo.summary: ResNet-50 and ViT-B/16, in process and cold ...", flush=True)
    figures += bench_summary.run(rounds=3 if args.quick else 5, cold_rounds=2 if args.quick else 3)

    import bench_train

    print("[5/7] training: generated script vs tutorial loop vs compute floor, epochs on 60k images ...", flush=True)
    train_figures, train_profiles = bench_train.run(rounds=3 if args.quick else 5, force_profile=args.profile)
    figures += train_figures
    for text in train_profiles:
        print(text, end="\n\n")

    import bench_train_results

    print("[6/7] training results: each train spec's script in a fresh process ...", flush=True)
    figures += bench_train_results.run(rounds=1 if args.quick else 3)

    print("[7/7] ONNX: export time vs torch.onnx, onnxruntime vs torch eager, BatchNorm folding ...", flush=True)
    try:
        import bench_onnx
    except ImportError as exc:  # the onnx extra (onnx, onnxruntime) is not installed
        figures.append(Figure("onnx: skipped", f"{exc.name or exc} is not installed"))
    else:
        figures += bench_onnx.run(rounds=3 if args.quick else 5, slow_rounds=2 if args.quick else 3)

    import bench_graph

    print("[+] graph: drawing the largest zoo model (diagram, Mermaid, DOT; Graphviz) ...", flush=True)
    figures += bench_graph.run(rounds=5 if args.quick else 15)

    if args.fuzz:
        figures += fuzz_figures(args.fuzz)

    print()
    print_table(
        figures,
        f"nndsl benchmarks: python {platform.python_version()}, torch {torch.__version__}, "
        f"{platform.machine()}, total {time.perf_counter() - started:.0f} s",
    )
    print(f"measured: {tree_state()}")
    failed = [f for f in figures if f.passed is False]
    print(f"\n{len(failed)} target(s) missed" if failed else "\nall targets met")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
