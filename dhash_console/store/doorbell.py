"""A doorbell for control requests: the face that writes one rings, the engine wakes at once.

A control request is a row in the history database, and the engine used to find it by polling
every 50 ms: twenty wake-ups a second, the largest part of its CPU while it watches a rollout
(bench/bench_watch.py). Now the writer also rings the engine's bell, an empty datagram to a Unix
socket in Linux's abstract namespace named after the journal and the rollout, and the engine
reads the database as soon as it is rung. The bell carries nothing: the database stays the only
channel, a stray ring costs one read, and the engine still polls now and then in case a ring is
lost (a writer in another network namespace, say). Where there is no abstract namespace (macOS,
Windows) there is no bell and the engine polls as often as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import sys
from pathlib import Path


def address(journal: Path, rollout_id: str) -> str | None:
    """The bell of `rollout_id` in the journal at `journal`; None where there are no bells."""
    if not sys.platform.startswith("linux"):
        return None
    key = f"{Path(journal).resolve()}\0{rollout_id}".encode()
    return "\0dhash-console-" + hashlib.sha256(key).hexdigest()[:40]


def ring(journal: Path, rollout_id: str) -> None:
    """Wake the engine of `rollout_id`, if one listens on this machine. Never raises."""
    where = address(journal, rollout_id)
    if where is None:
        return
    # OSError: nobody listening (the engine is gone, or polls).
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        sock.sendto(b"", where)


class Doorbell:
    """The engine's end. `listening` is False where there is no bell or it is taken."""

    def __init__(self, journal: Path, rollout_id: str) -> None:
        self._rung = asyncio.Event()
        self._sock: socket.socket | None = None
        where = address(journal, rollout_id)
        if where is None:
            return
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.bind(where)
        except OSError:  # another engine of the same rollout holds it: poll instead
            sock.close()
            return
        self._sock = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._on_ring)

    @property
    def listening(self) -> bool:
        return self._sock is not None

    def _on_ring(self) -> None:
        assert self._sock is not None
        with contextlib.suppress(OSError):  # BlockingIOError: every ring read
            while True:
                self._sock.recv(16)
        self._rung.set()

    async def wait(self, timeout: float) -> bool:
        """Until rung or `timeout` seconds passed; True when rung."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._rung.wait(), timeout)
        rung = self._rung.is_set()
        self._rung.clear()
        return rung

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
