"""A real HTTP receiver on 127.0.0.1 for the notifier tests, and a check of the receiver.

It runs on the test's own event loop (asyncio streams, HTTP/1.1 with keep-alive),
records every request, and answers from a script per path: a status with headers
and a body, or HANG (read the request, never answer).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: str = "ok"


HANG = Reply(status=0)


@dataclass(frozen=True)
class Received:
    path: str  # with the query string
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.scripts: dict[str, list[Reply]] = {}
        self.default: dict[str, Reply] = {}
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()
        self._arrived = asyncio.Event()
        self.port = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def script(self, path: str, *replies: Reply, then: Reply | None = None) -> None:
        """Answer `path` (without query) with these replies in turn, then `then` (200)."""
        self.scripts[path] = list(replies)
        if then is not None:
            self.default[path] = then

    def at(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path.split("?")[0] == path]

    async def wait_for(self, path: str, count: int, timeout: float = 5.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.at(path)) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{path}: {len(self.at(path))} of {count} requests came")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)
        return self.at(path)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._connections):
            writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 2.0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                _method, target, _version = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.requests.append(Received(target, headers, body, time.monotonic()))
                self._arrived.set()
                path = target.split("?")[0]
                queue = self.scripts.get(path, [])
                reply = queue.pop(0) if queue else self.default.get(path, Reply())
                if reply is HANG:
                    await asyncio.Event().wait()  # until the connection is torn down
                data = reply.body.encode()
                extra = "".join(f"{k}: {v}\r\n" for k, v in reply.headers.items())
                writer.write(
                    f"HTTP/1.1 {reply.status} X\r\ncontent-length: {len(data)}\r\n"
                    f"content-type: text/plain\r\n{extra}\r\n".encode()
                    + data
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._connections.discard(writer)
            writer.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_receiver_records_and_follows_its_script(receiver: Receiver) -> None:
    receiver.script("/hook", Reply(429, {"retry-after": "1"}, "slow down"))
    async with httpx.AsyncClient() as client:
        first = await client.post(receiver.url("/hook?k=v"), json={"a": 1})
        second = await client.post(receiver.url("/hook"), json={"a": 2})
    assert (first.status_code, first.headers["retry-after"], first.text) == (429, "1", "slow down")
    assert second.status_code == 200
    assert [r.json() for r in receiver.at("/hook")] == [{"a": 1}, {"a": 2}]
    assert receiver.requests[0].path == "/hook?k=v"
