"""Bounded parsing of large bodies: the sliced parser agrees with ``json.loads`` exactly."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.catalog.validation import parse_body
from proxy.errors import MalformedJSON
from proxy.stages.body import BodyLimits, check_shape, parse_large

long_text = st.builds(
    lambda piece, n: piece * n,
    st.text(min_size=1, max_size=4),
    st.integers(min_value=1, max_value=40),
)
values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**20), 10**20) | st.floats() | long_text,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)


def both(raw: bytes, window: int = 16) -> tuple[object, object]:
    """What parse_body and parse_large (lifting strings over 8 chars) make of ``raw``."""
    outcomes: list[object] = []
    for parse in (parse_body, lambda b: parse_large(b, lift_chars=8, window=window)):
        try:
            outcomes.append(parse(raw))
        except MalformedJSON as exc:
            outcomes.append(("refused", exc.detail))
    return outcomes[0], outcomes[1]


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=10), values, max_size=5), st.booleans(), st.booleans())
def test_lifting_long_strings_parses_like_json_loads(
    doc: dict[str, object], ascii_only: bool, spaced: bool
) -> None:
    """Valid documents, in any escaping and layout, parse to the same value either way."""
    text = json.dumps(doc, ensure_ascii=ascii_only, indent=2 if spaced else None)
    one, two = both(text.encode("utf-8", "surrogatepass"))
    assert one == two or (one != one and two != two)  # NaN never equals itself


escapes = st.lists(
    st.sampled_from(
        [
            *("a", "\\\\", '\\"', "\\/", "\\n", "\\u00e9", "\\ud83d", "\\ude00"),
            *("\\ud83d\\ude00", "\\uD83D", "\\uDE00", "\\x", "\\u12", "\u00e9", "\U0001f600"),
        ]
    ),
    max_size=40,
)


@settings(max_examples=500, deadline=None)
@given(escapes, st.integers(min_value=6, max_value=24))
def test_escaped_strings_decode_in_slices_like_json_loads(parts: list[str], window: int) -> None:
    """Escapes, surrogate pairs and broken escapes decode the same when cut every few chars."""
    raw = ('{"a": "' + "".join(parts) + '", "b": 1}').encode("utf-8", "surrogatepass")
    one, two = both(raw, window)
    assert one == two


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=60), st.text(max_size=30))
def test_broken_documents_are_refused_the_same_way(junk: bytes, text: str) -> None:
    """Malformed documents (raw control characters, unterminated strings) are refused alike."""
    raw = b'{"a": "' + text.encode("utf-8", "surrogatepass") + junk + b'"}'
    one, two = both(raw)
    assert (isinstance(one, tuple), isinstance(two, tuple)) in ((True, True), (False, False))
    if not isinstance(one, tuple):
        assert one == two


def test_a_marker_lookalike_in_the_body_stays_a_plain_string() -> None:
    """A client's own NUL-prefixed string is not taken for a lifted one."""
    raw = json.dumps({"a": "\x00deadbeefdeadbeef:0", "b": "x" * 100}).encode()
    assert parse_large(raw, lift_chars=8) == json.loads(raw)


@pytest.mark.parametrize(
    "doc",
    [{"a": [[[[1]]]]}, {"k" * 300: 1}, {"a": list(range(3000))}],
    ids=["deep", "long-key", "wide"],
)
def test_shape_limits(doc: dict[str, object]) -> None:
    """Depth, key length and members-plus-items each have a bound."""
    limits = BodyLimits(max_depth=3, max_items=2000, max_key_chars=256)
    with pytest.raises(MalformedJSON):
        check_shape(doc, limits)
