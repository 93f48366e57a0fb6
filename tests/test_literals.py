"""The one literal writer: every str a spec or a path gives reaches emitted Python as a literal
that evaluates to exactly that text and that ruff format leaves as written."""

from __future__ import annotations

from conftest import assert_ruff_clean
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nndsl.backends.pysource import literal

HOSTILE = ["a'b\"c", "it's", 'say "hi"', "a\\b", '"""', "'''", "\n", "\x00", "\u2028", "'); import os; ('", "\\'"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(alphabet=st.sampled_from("ab'\"\\\n\t\x00é\u2028 "), max_size=12), min_size=1, max_size=20))
def test_a_str_literal_round_trips_and_is_ruff_formatted(tmp_path, texts):
    texts = [*HOSTILE, *texts]
    lines = [f"x{i} = {literal(t)}\n" for i, t in enumerate(texts)]
    for t in texts:
        assert eval(literal(t)) == t  # noqa: S307 - the literal is the thing under test
    directory = tmp_path / "lit"
    directory.mkdir(exist_ok=True)
    (directory / "m.py").write_text("".join(lines))
    assert_ruff_clean(directory)
