"""Shared fixtures: the packaged catalog and its validator, built once per session."""

from __future__ import annotations

import pytest

from proxy.catalog.loader import Catalog, load_catalog
from proxy.catalog.validation import BodyValidator


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture(scope="session")
def validator(catalog: Catalog) -> BodyValidator:
    return BodyValidator(catalog)
