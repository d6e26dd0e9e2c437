"""A local OpenAI-compatible chat server for generation tests and the generation benchmark.

Its behaviour is chosen by the requested model name (LiteLLM sends `stub-ok` for `openai/stub-ok`):

- `*ok*`       a valid `{"mentions": [...]}` reply naming the code the prompt asked for
- `*flaky*`    per distinct prompt: first a 429, then a 500, then the valid reply
- `*garbage*`  a reply no parser can read
- `*slow*`     the valid reply after `slow_s` seconds (to trigger client timeouts)
- `*down*`     always a 500

Every reply waits `latency_s` first. Run in a thread (`StubServer`) or as a process
(`python tests/generation_stub.py --latency 0.2` prints the port on its first line).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import re
import socket
import sys
import threading
import time
from collections import Counter

from aiohttp import web

_CODE = re.compile(r"(?:Target code|for this OTHER code instead): (\S+)")
_COUNT = re.compile(r"Write (\d+) different")


class StubServer:
    def __init__(self, *, latency_s: float = 0.0, slow_s: float = 5.0, port: int = 0) -> None:
        self.latency_s = latency_s
        self.slow_s = slow_s
        self.port = port
        self.calls: Counter[str] = Counter()
        self._attempts: Counter[str] = Counter()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._lock = threading.Lock()

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # --------------------------------------------------------------------------- replies
    async def _chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        model = str(body.get("model", ""))
        prompt = "\n".join(str(m.get("content", "")) for m in body.get("messages", []))
        with self._lock:
            self.calls[model] += 1
            digest = hashlib.sha256((model + prompt).encode()).hexdigest()
            self._attempts[digest] += 1
            attempt = self._attempts[digest]
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        if "down" in model:
            return _error(500, "server_error", "the stub is down")
        if "flaky" in model and attempt == 1:
            return _error(429, "rate_limit_exceeded", "slow down", headers={"retry-after": "0"})
        if "flaky" in model and attempt == 2:
            return _error(500, "server_error", "transient failure")
        if "slow" in model:
            await asyncio.sleep(self.slow_s)
        if "garbage" in model:
            content = "As an AI model I would rather talk about the weather. {broken"
        else:
            m = _CODE.search(prompt)
            code = m.group(1) if m else "UNKNOWN"
            n = int(_COUNT.search(prompt).group(1)) if _COUNT.search(prompt) else 3
            mentions = [f"{model} mention {i} of {code}" for i in range(n)]
            content = "```json\n" + json.dumps({"mentions": mentions}) + "\n```"
        return web.json_response({
            "id": "chatcmpl-stub",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": max(1, len(prompt) // 4), "completion_tokens": max(1, len(content) // 4),
                      "total_tokens": max(1, len(prompt) // 4) + max(1, len(content) // 4)},
        })

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "stub", "object": "model"}]})

    # --------------------------------------------------------------------------- lifecycle
    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        return app

    async def serve(self) -> None:
        if not self.port:
            self.port = free_port()
        self._runner = web.AppRunner(self._app(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, backlog=1024).start()

    def start(self) -> "StubServer":
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self.serve())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop and self._runner:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> "StubServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _error(status: int, code: str, message: str, headers: dict | None = None) -> web.Response:
    return web.json_response({"error": {"message": message, "type": code, "code": code}},
                             status=status, headers=headers)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = StubServer(latency_s=args.latency, port=args.port or free_port())
    print(server.port, flush=True)
    sys.stdout.flush()

    async def forever() -> None:
        await server.serve()
        await asyncio.Event().wait()

    asyncio.run(forever())


if __name__ == "__main__":
    main()
