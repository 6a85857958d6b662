"""Property tests: no body, however malformed, crashes validation."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy.catalog.loader import Catalog, load_catalog
from proxy.catalog.validation import BodyValidator
from proxy.context import RequestContext, RouteKind
from proxy.errors import InvalidInput, MalformedJSON
from proxy.stages.validate import ValidateStage

CATALOG: Catalog = load_catalog()
VALIDATOR = BodyValidator(CATALOG)
STAGE = ValidateStage(CATALOG, VALIDATOR)
SLUGS = CATALOG.slugs()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=20), inner, max_size=4)
    ),
    max_leaves=20,
)
field_names = st.sampled_from(
    [
        "prompt",
        "duration",
        "resolution",
        "first_frame_image",
        "reference_images",
        "videos",
        "size",
        "n",
        "multi_shot",
        "x",
    ]
)
bodies = st.dictionaries(field_names | st.text(max_size=10), json_values, max_size=8)


def run(slug: str, raw: bytes) -> None:
    ctx = RequestContext(
        "r", "c", RouteKind.SUBMIT, 0.0, 0.0, requested_slug=slug, pinned_slug=slug, body=raw
    )
    try:
        asyncio.run(STAGE(ctx))
    except (InvalidInput, MalformedJSON) as exc:
        json.dumps(exc.envelope())  # the refusal always renders


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(slug=st.sampled_from(SLUGS), raw=st.binary(max_size=200))
def test_arbitrary_bytes_never_crash(slug: str, raw: bytes) -> None:
    """Random bytes yield a pass or a MalformedJSON/InvalidInput refusal, never a crash."""
    run(slug, raw)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(slug=st.sampled_from(SLUGS), body=bodies)
def test_arbitrary_json_objects_never_crash(slug: str, body: dict[str, Any]) -> None:
    """Random JSON objects with plausible field names never crash the validator."""
    run(slug, json.dumps(body).encode())


@settings(max_examples=200, deadline=None)
@given(slug=st.sampled_from(SLUGS), body=json_values)
def test_arbitrary_json_values_never_crash(slug: str, body: Any) -> None:
    """Any JSON document, object or not, is handled."""
    run(slug, json.dumps(body).encode())
