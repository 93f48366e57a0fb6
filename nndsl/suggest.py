"""Did-you-mean: the known name nearest to a misspelt one (standard library only, so that
generated training scripts can hold a copy of it)."""


def close_matches(word, candidates, n=1, ignore_case=False):
    """The candidates nearest to a misspelt word, best first: one that differs only in case,
    then difflib's nearest (compared in lower case when ignore_case)."""
    import difflib  # only when there is a mistake to explain

    candidates = [str(candidate) for candidate in candidates]
    word = str(word)
    same = [c for c in candidates if c.lower() == word.lower() and c != word]
    if ignore_case:
        lowered = {c.lower(): c for c in candidates}
        found = difflib.get_close_matches(word.lower(), list(lowered), n=n)
        near = [lowered[c] for c in found]
    else:
        near = difflib.get_close_matches(word, candidates, n=n)
    return (same + [c for c in near if c not in same])[:n]


def did_you_mean(word, candidates):
    """' (did you mean 'x'?)' when a candidate is close to word, else ''."""
    close = close_matches(word, candidates)
    return f" (did you mean {close[0]!r}?)" if close else ""


def nearest_name(name, candidates, not_typos=()):
    """The candidate ``name`` is a plausible typo of, or None.

    A case-insensitive match first; else the one nearest candidate within one edit (two for
    names longer than five letters), where a swap of neighbours counts as one edit. Closeness
    alone is not enough: ``Hardsigmoid`` is not a misspelt ``Sigmoid`` but another function,
    four letters longer; and a name in ``not_typos`` is never taken for a typo.
    """
    lowered = {c.lower(): c for c in candidates}
    if name.lower() in lowered:
        return lowered[name.lower()]
    if name in not_typos:
        return None
    allowed = 1 if len(name) <= 5 else 2
    # a name of three letters or fewer is too short to tell a dropped letter from another word;
    # a name whose length differs by more than `allowed` is further than `allowed` edits
    lengths = (len(name),)
    if len(name) > 3:
        lengths = range(len(name) - allowed, len(name) + allowed + 1)
    scored = sorted((_edits(name.lower(), c), c) for c in lowered if len(c) in lengths)
    best = [c for d, c in scored if d == scored[0][0]] if scored else []
    # equally near: a name that only lacks its end (BatchNorm2 -> BatchNorm2d)
    if len(best) > 1:
        best = [c for c in best if c.startswith(name.lower())]
    if len(best) != 1 or scored[0][0] > allowed:
        return None  # nothing near, or two names equally near: no guess
    return lowered[best[0]]


def _edits(a, b):
    """Edit distance counting insertions, deletions, substitutions and swaps of neighbours."""
    rows = [list(range(len(b) + 1))]
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            row[j] = min(rows[-1][j] + 1, row[j - 1] + 1, rows[-1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], rows[-2][j - 2] + 1)
        rows.append(row)
    return rows[-1][-1]
