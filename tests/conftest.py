"""Shared test setup: every test starts with no configured terminology (load_config() configures the
process-wide [terminology] section; a test's config must not leak into the next test)."""

from __future__ import annotations

import os

import pytest

# Every Ray cluster the tests start (local ones by ray.init, the two-node one by `ray start`) runs without
# token authentication, on loopback. Ray reads the mode once per process: a mode switched between tests
# leaves a driver that sends no token to a GCS that wants one (InvalidAuthToken, seen in CI).
os.environ.setdefault("RAY_AUTH_MODE", "disabled")


@pytest.fixture(autouse=True)
def _no_configured_terminology():
    from clinassay.terminology import terminology

    saved = list(terminology._CONFIGURED)
    terminology._CONFIGURED.clear()
    yield
    terminology._CONFIGURED[:] = saved
