"""Open a rendered report in real headless Chromium (Debian's `chromium`), driven over the DevTools
protocol: no console errors, no network requests, the verdict and key figures in the DOM, injected
markup inert, and a PNG screenshot saved beside the test's output."""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from clinassay.reports.config import ReportConfig
from clinassay.reports.render import write_report

CHROMIUM = Path("/usr/bin/chromium")
DATA = Path(__file__).parent / "data" / "reports"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)"),
]

websockets_sync = pytest.importorskip("websockets.sync.client", reason="needs the websockets package (dev extra)")


class DevTools:
    """A minimal DevTools-protocol client over one browser websocket (flat sessions)."""

    def __init__(self, url: str) -> None:
        self._stack = contextlib.ExitStack()
        self.ws = self._stack.enter_context(websockets_sync.connect(url, max_size=64 * 1024 * 1024, open_timeout=20))
        self.next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, *, session: str | None = None, timeout: float = 30) -> dict:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self.ws.send(json.dumps(message))
        deadline = time.monotonic() + timeout
        while True:
            reply = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, *, session: str | None = None, timeout: float = 30) -> dict:
        def wanted(event: dict) -> bool:
            return event.get("method") == method and (session is None or event.get("sessionId") == session)

        deadline = time.monotonic() + timeout
        for event in self.events:
            if wanted(event):
                return event
        while True:
            event = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            self.events.append(event)
            if wanted(event):
                return event

    def close(self) -> None:
        self._stack.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    profile = tmp_path_factory.mktemp("chromium-profile")
    process = subprocess.Popen(
        [
            str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--no-first-run", "--disable-component-update", "--disable-sync", "--disable-default-apps",
            "--disable-extensions", "--hide-scrollbars", f"--user-data-dir={profile}", "--remote-debugging-port=0",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 60
    while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"chromium did not start (exit code {process.poll()})")
        time.sleep(0.1)
    port, path = port_file.read_text().splitlines()[:2]
    client = DevTools(f"ws://127.0.0.1:{port}{path}")
    try:
        yield client
    finally:
        client.close()
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def open_page(browser: DevTools, report: Path) -> tuple[str, list[dict]]:
    """Open the report in a new tab; return the tab's session and the events seen up to the load."""
    target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Page", "Runtime", "Log", "Network"):
        browser.send(f"{domain}.enable", session=session)
    browser.send("Emulation.setDeviceMetricsOverride",
                 {"width": 1300, "height": 900, "deviceScaleFactor": 1, "mobile": False}, session=session)
    browser.events.clear()
    browser.send("Page.navigate", {"url": report.resolve().as_uri()}, session=session)
    browser.wait_for("Page.loadEventFired", session=session)
    time.sleep(0.3)  # let late console messages arrive
    browser.send("Runtime.evaluate", {"expression": "1"}, session=session)  # flush pending events
    return session, [e for e in browser.events if e.get("sessionId") == session]


def evaluate(browser: DevTools, session: str, expression: str):
    result = browser.send("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=session)
    if "exceptionDetails" in result:
        raise AssertionError(f"{expression}: {result['exceptionDetails']}")
    return result["result"].get("value")


def problems(events: list[dict], report: Path) -> tuple[list[str], list[str]]:
    errors, requests = [], []
    own = report.resolve().as_uri()
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            errors.append(json.dumps(params.get("exceptionDetails", {}))[:300])
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert", "warning"):
            errors.append(json.dumps(params.get("args", []))[:300])
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") in ("error", "warning"):
            errors.append(params["entry"].get("text", "")[:300])
        elif method == "Network.requestWillBeSent":
            url = params.get("request", {}).get("url", "")
            if url != own:
                requests.append(url)
    return errors, requests


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    write_report(DATA / "audit_small", out, eval_dirs=[DATA / "eval_baseline", DATA / "eval_candidate"],
                 titles={"N39.0": "Urinary tract infection, site not specified"}.get)
    return out


def test_report_opens_clean_and_shows_the_verdict(browser, report, tmp_path):
    session, events = open_page(browser, report)
    errors, requests = problems(events, report)
    assert errors == []
    assert requests == []

    summary = json.loads((DATA / "audit_small" / "summary.json").read_text(encoding="utf-8"))
    assert evaluate(browser, session, "document.getElementById('verdict-status').textContent.trim()") == "FAIL"
    counts = summary["counts"]
    for element, key in (("count-input", "input_lines"), ("count-accepted", "accepted"), ("count-rejected", "rejected"),
                         ("count-malformed", "malformed"), ("count-warned", "warned")):
        assert evaluate(browser, session, f"document.getElementById('{element}').textContent.trim()") == str(counts[key])
    failures = evaluate(browser, session, "Array.from(document.querySelectorAll('.gate-failure')).map(e => e.textContent)")
    assert len(failures) == sum(not g["passed"] for g in summary["gate"]["results"])
    assert "over by 41.4 points" in " ".join(failures)
    assert evaluate(browser, session, "document.querySelector('#matrix-table td.outlier .rate').textContent") == "⚠ 100%"
    assert evaluate(browser, session, "document.querySelectorAll('td.regression').length") > 0
    assert evaluate(browser, session, "document.querySelectorAll('svg.chart').length") >= 3
    # our own script ran (its CSP hash matches) and works
    assert evaluate(browser, session, "document.documentElement.getAttribute('data-report-ready')") == "1"
    assert evaluate(browser, session, "document.getElementById('expand-all').click(); "
                                      "document.querySelectorAll('details:not([open])').length") == 0

    # screenshot of the whole page as the test's artifact
    height = evaluate(browser, session, "document.documentElement.scrollHeight")
    browser.send("Emulation.setDeviceMetricsOverride",
                 {"width": 1300, "height": min(int(height), 12000), "deviceScaleFactor": 1, "mobile": False}, session=session)
    shot = browser.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session=session)
    png = tmp_path / "report.png"
    png.write_bytes(base64.b64decode(shot["data"]))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    shutil.copy(png, report.with_suffix(".png"))


def test_injected_markup_does_not_run(browser, report):
    session, events = open_page(browser, report)
    assert evaluate(browser, session, "typeof window.__pwned") == "undefined"
    assert evaluate(browser, session, "document.querySelectorAll('img, iframe, object, embed').length") == 0
    assert evaluate(browser, session, "document.scripts.length") == 2  # the JSON data block and our script
    assert evaluate(browser, session, "document.querySelectorAll('b').length") == 0  # "<b>bold</b>" stayed text
    text = evaluate(browser, session, "document.body.textContent")
    assert "<script>window.__pwned=1</script>dolor torácico" in text
    assert '<img src=x onerror="window.__pwned=2">fiebre' in text
    handlers = evaluate(browser, session, "Array.from(document.querySelectorAll('*')).flatMap("
                                          "e => Array.from(e.attributes).map(a => a.name)).filter(n => n.startsWith('on'))")
    assert handlers == []
    data = evaluate(browser, session, "JSON.parse(document.getElementById('report-data').textContent).verdict")
    assert data == "fail"
    errors, requests = problems(events, report)
    assert errors == [] and requests == []


def test_embedded_drift_page_stays_offline(browser, tmp_path):
    out = tmp_path / "embedded.html"
    write_report(DATA / "audit_small", out, config=ReportConfig(drift_html="embed"), titles=lambda code: None)
    session, events = open_page(browser, out)
    errors, requests = problems(events, out)
    assert errors == [] and requests == []
    assert evaluate(browser, session, "document.querySelectorAll('iframe[sandbox=\"allow-scripts\"]').length") == 1
    assert evaluate(browser, session, "typeof window.__pwned") == "undefined"


def test_report_written_by_a_real_audit_opens_clean(browser, tmp_path):
    from clinassay.cli import main as cli_main

    out = tmp_path / "audit"
    cli_main(["audit", str(DATA / "pairs_xss.jsonl"), "--out", str(out), "--no-embeddings"])
    report = out / "report.html"
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    session, events = open_page(browser, report)
    errors, requests = problems(events, report)
    assert errors == [] and requests == []
    assert evaluate(browser, session, "document.getElementById('verdict-status').textContent.trim()") == summary["verdict"].upper()
    assert evaluate(browser, session, "document.getElementById('count-rejected').textContent.trim()") == str(summary["counts"]["rejected"])
    assert evaluate(browser, session, "typeof window.__pwned") == "undefined"
    assert evaluate(browser, session, "document.querySelectorAll('img, b').length") == 0
    assert "<script>window.__pwned=1</script>" in evaluate(browser, session, "document.body.textContent")
    shot = browser.send("Page.captureScreenshot", {"format": "png"}, session=session)
    (tmp_path / "audit-report.png").write_bytes(base64.b64decode(shot["data"]))
