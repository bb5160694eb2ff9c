"""Fixtures for the console's tests: a config from the shipped one, a state dir, a journal."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from dhash_console.store.history import HistoryStore
from dhash_console.ui.tui.app import ConsoleApp
from tests.tui.helpers import T0, Journal


@pytest.fixture
def config_path(local_config: Callable[..., Path]) -> Path:
    return local_config()


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    path = tmp_path / "state"
    path.mkdir()
    return path


@pytest.fixture
async def store(state_dir: Path) -> AsyncIterator[HistoryStore]:
    opened = await HistoryStore.open(state_dir / "history.sqlite3")
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def make_app(config_path: Path, state_dir: Path) -> Callable[..., ConsoleApp]:
    def make(**kwargs: object) -> ConsoleApp:
        kwargs.setdefault("clock", lambda: T0 + 30.0)
        return ConsoleApp(config_path=config_path, state_dir=state_dir, **kwargs)  # type: ignore[arg-type]

    return make


@pytest.fixture
def journal(store: HistoryStore) -> Journal:
    return Journal(store, "r-20260101-000000-test")


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]
