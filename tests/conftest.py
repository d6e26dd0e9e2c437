"""Shared test setup: every test starts with no configured terminology (load_config() configures the
process-wide [terminology] section; a test's config must not leak into the next test)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_configured_terminology():
    from clinassay.terminology import terminology

    saved = list(terminology._CONFIGURED)
    terminology._CONFIGURED.clear()
    yield
    terminology._CONFIGURED[:] = saved
