"""Fixtures for every test."""

import pytest


@pytest.fixture(autouse=True)
def _no_fit_cache(monkeypatch):
    """The fit cache (models/core/fitcache.py) off in every test's settings: a fit served from an
    earlier test's cache would bypass a test's monkeypatched model. Tests of the cache give their
    own folder; tests/flows clears every EXPORTCAST__ override (its own conftest): there each test
    has its own config folder, so its own cache."""
    monkeypatch.setenv("EXPORTCAST__RUNTIME__FIT_CACHE", "off")
