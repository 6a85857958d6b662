"""Reading credentials: ``bearer`` is total, and every spelling of a proxy key is recognised."""

from __future__ import annotations

import base64
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.governance.keys import PREFIX, bearer, carries_proxy_token, hash_key, new_key

TOKEN = new_key(time.time())[1]


@pytest.mark.parametrize(
    ("authorization", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer abc", "abc"),
        ("BEARER   abc  ", "abc"),
        ("Bearer\tabc", "abc"),
        ("  Bearer abc", "abc"),
        ("Bearer a b", "a b"),
        ("Bearer", None),
        ("Bearer    ", None),
        ("", None),
        (None, None),
        ("Basic eDp5", None),
        ("Bearerabc", None),
        ("Bearer \udcff\udcfe", "\udcff\udcfe"),
        ("Bearer clé-ключ", "clé-ключ"),
    ],
)
def test_bearer_reads_the_token_or_nothing(authorization: str | None, token: str | None) -> None:
    """The token of a Bearer credential, whitespace and case tolerated; anything else is None."""
    assert bearer(authorization) == token


@given(st.text())
def test_bearer_and_detection_never_raise(value: str) -> None:
    """Any string at all (lone surrogates included) is read without an exception."""
    token = bearer(value)
    assert token is None or token == token.strip()
    carries_proxy_token(value)
    hash_key(value)


@pytest.mark.parametrize(
    "value",
    [
        TOKEN,
        f"Bearer {TOKEN}",
        TOKEN.upper(),
        f"x {TOKEN} y",
        TOKEN.replace("-", "%2D"),
        TOKEN.replace("-", "%252d"),
        f"session=1; api_key={TOKEN}",
        "Basic " + base64.b64encode(f"user:{TOKEN}".encode()).decode(),
    ],
)
def test_every_spelling_of_a_proxy_key_is_recognised(value: str) -> None:
    """Case, percent-encoding, surrounding text and Basic credentials do not hide a proxy key."""
    assert carries_proxy_token(value)


@pytest.mark.parametrize(
    "value", [None, "", "Bearer sk-live-abc", "mlx-vk", "Basic !!!not-base64!!!", "mlx_vk_abc"]
)
def test_other_credentials_are_not_proxy_keys(value: str | None) -> None:
    """Upstream keys and near misses are not mistaken for proxy keys."""
    assert not carries_proxy_token(value)


def test_tokens_are_shaped_as_documented() -> None:
    """A new key's token starts with the prefix and is stored only as its SHA-256."""
    record, token = new_key(time.time())
    assert token.startswith(f"{PREFIX}{record.key_id}-")
    assert record.key_hash == hash_key(token) != token
