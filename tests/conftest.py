"""Shared test setup: every test starts with no configured terminology (load_config() configures the
process-wide [terminology] section; a test's config must not leak into the next test); the real
terminology, loaded once per session, and the fake ones (tests/terminology_fixtures.py) are fixtures here."""

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


@pytest.fixture(scope="session")
def terminology():
    """The real ICD-10-CM with its labels (`load_terminology()`), loaded once for the session (read-only)."""
    # the submodule's function: a test may swap the package's `load_terminology` for a fake while it runs
    from clinassay.terminology.terminology import load_terminology

    return load_terminology()


@pytest.fixture(scope="session")
def tree_terminology():
    """Two chapters with their hierarchy, inclusion terms, excludes and a few native labels (read-only)."""
    from terminology_fixtures import make_tree_terminology

    return make_tree_terminology()


@pytest.fixture(scope="session")
def labelled_terminology():
    """16 billable codes of 5 chapters, each labelled in es, fr and pt (read-only)."""
    from terminology_fixtures import make_labelled_terminology

    return make_labelled_terminology()


@pytest.fixture
def fake_terminology(labelled_terminology, monkeypatch):
    """`labelled_terminology`, also what `load_terminology()` returns during the test."""
    from clinassay import terminology

    monkeypatch.setattr(terminology, "load_terminology", lambda *a, **k: labelled_terminology)
    return labelled_terminology
