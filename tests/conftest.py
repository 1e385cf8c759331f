"""Fixtures for every test."""

import pytest


@pytest.fixture(autouse=True)
def _no_fit_cache(monkeypatch):
    """The fit cache (models/core/fitcache.py) and the report's section cache off in every test's
    settings: a fit or a chart served from an earlier test's cache would bypass a test's
    monkeypatched model or chart. Tests of the caches give their own folder; tests/flows clears
    every EXPORTCAST__ override (its own conftest): there each test has its own config folder, so
    its own caches."""
    monkeypatch.setenv("EXPORTCAST__RUNTIME__FIT_CACHE", "off")
    monkeypatch.setenv("EXPORTCAST__RUNTIME__REPORT_CACHE", "off")
