"""Count the import cycles among nndsl's modules: every import counts, those inside functions
and under TYPE_CHECKING included (grimp builds the graph, as import-linter does).

    python benchmarks/import_cycles.py        # prints each cycle, then their number; exit 1 if any

A cycle is a strongly connected set of two or more modules: each reaches every other through
imports. The package's ``__init__`` modules count as modules of their own.
"""

from __future__ import annotations

import sys

from _common import ensure_importable


def import_cycles(package: str = "nndsl") -> list[list[str]]:
    """The strongly connected sets of modules (two or more), each sorted, largest first."""
    import grimp

    graph = grimp.build_graph(package, include_external_packages=False)
    edges = {m: graph.find_modules_directly_imported_by(m) & graph.modules for m in graph.modules}
    # Tarjan's algorithm, iterative: no recursion limit on a deep graph
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found, key=lambda c: (-len(c), c))


def main() -> int:
    ensure_importable()
    cycles = import_cycles()
    for cycle in cycles:
        print(f"cycle of {len(cycle)}: {' <-> '.join(cycle)}")
    print(f"import cycles in nndsl/: {len(cycles)}")
    return 1 if cycles else 0


if __name__ == "__main__":
    sys.exit(main())
