"""The console the way a person uses it: the real program in tmux, keys in, screen out.

Through a launch, a manual rollback with its confirmation, and the history entry it leaves.
Skipped when tmux is not installed.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.tui.local_stage import LocalStage

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]


class Tmux:
    def __init__(self, socket: str) -> None:
        self.socket = socket
        self.session = "console"

    def run(self, *args: str) -> str:
        result = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=10
        )
        return result.stdout

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", self.session, *keys)

    def type(self, text: str) -> None:
        self.run("send-keys", "-t", self.session, "-l", text)

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", self.session)

    def wait_until_changed(self, timeout_s: float) -> None:
        before = self.screen()
        deadline = time.monotonic() + timeout_s
        while self.screen() == before and time.monotonic() < deadline:
            time.sleep(0.05)  # polling the pane, with a deadline

    def wait_gone(self, needle: str, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while needle in (text := self.screen()):
            if time.monotonic() > deadline:
                raise AssertionError(f"still on screen after {timeout_s}s: {needle}\n{text}")
            time.sleep(0.05)  # polling the pane for the condition, with a deadline

    def wait_for(self, *needles: str, timeout_s: float = 30.0) -> str:
        deadline = time.monotonic() + timeout_s
        while True:
            text = self.screen()
            if all(needle in text for needle in needles):
                return text
            if time.monotonic() > deadline:
                missing = [n for n in needles if n not in text]
                raise AssertionError(f"not on screen after {timeout_s}s: {missing}\n{text}")
            time.sleep(0.1)  # polling the pane for the condition, with a deadline


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    session = Tmux(f"dhash-test-{uuid.uuid4().hex[:8]}")
    yield session
    session.run("kill-server")


@pytest.fixture
def live_config(local_config: Callable[..., Path]) -> Path:
    # A one-minute window by default, so the launch form needs only the version.
    return local_config(
        **{"environments.local.monitoring": {"interval_seconds": 1, "duration_minutes": 1}}
    )


@pytest.fixture
def stage(live_config: Path, tmp_path: Path) -> Iterator[LocalStage]:
    running = LocalStage(live_config, tmp_path / "state").start()
    try:
        yield running
    finally:
        running.stop()


def test_launch_rollback_and_history_in_tmux(
    tmux: Tmux, live_config: Path, tmp_path: Path, stage: LocalStage
) -> None:
    state = tmp_path / "state"
    argv = [
        sys.executable,
        "-m",
        "dhash_console",
        "--config",
        str(live_config),
        "--state-dir",
        str(state),
    ]
    # The size in the environment too: Textual asks shutil, which reads COLUMNS/LINES first.
    command = "env -u CI TERM=xterm-256color COLUMNS=140 LINES=45 " + shlex.join(argv)
    # Size options in the same server command as the session: set in a later command,
    # window-size=manual could shrink the window to the 80x24 default while the console
    # starts, and it would draw for a terminal narrower than the assertions expect.
    tmux.run(
        "new-session",
        "-d",
        "-s",
        tmux.session,
        "-x",
        "140",
        "-y",
        "45",
        "-c",
        os.getcwd(),
        command,
        ";",
        "set-option",
        "-g",
        "default-size",
        "140x45",
        ";",
        "set-option",
        "-g",
        "window-size",
        "manual",
        ";",
        "resize-window",
        "-t",
        tmux.session,
        "-x",
        "140",
        "-y",
        "45",
    )
    assert tmux.run("display", "-p", "-t", tmux.session, "#{window_width}x#{window_height}") == (
        "140x45\n"
    )
    tmux.wait_for("no rollout attached", "Launch")
    tmux.keys("n")
    tmux.wait_for("Launch a guarded rollout", "now running: 1.0.0")
    tmux.wait_for("dry run: OFF — this rollout changes local")  # the state in words
    tmux.type("1.1.0")
    tmux.wait_for("1.1.0")
    deadline = time.monotonic() + 15
    while "Launch a guarded rollout" in tmux.screen():
        assert time.monotonic() < deadline, tmux.screen()
        tmux.keys("C-s")  # start; repeated only if the form had not taken it yet
        tmux.wait_until_changed(timeout_s=1.0)
    tmux.wait_for("● monitor", "1.0.0 → 1.1.0", "via tui", timeout_s=60)

    tmux.keys("r")
    tmux.wait_for("Roll back: local", "return to:", "1.0.0")
    tmux.keys("Enter")  # focus is on Cancel: Enter cancels, never confirms
    tmux.wait_gone("Roll back: local")
    tmux.wait_for("● monitor")
    tmux.keys("r")
    tmux.wait_for("Roll back: local")
    # Focus starts on Cancel: Shift+Tab goes back to the reason. Then wait for the text (the
    # screen moves on its own, so a changed screen does not mean a key was taken).
    deadline = time.monotonic() + 20
    while True:  # keys sent before the panel has its focus go nowhere: then again
        tmux.keys("BTab")
        tmux.type("tmux says roll back")
        try:
            tmux.wait_for("tmux says roll back", timeout_s=3)
            break
        except AssertionError:
            assert time.monotonic() < deadline, tmux.screen()
    tmux.keys("Tab", "Tab")  # reason -> Cancel -> Roll back now (keys are taken in order)
    tmux.keys("Enter")
    # The panel stays open and follows the rollback; Escape closes it when it is done.
    tmux.wait_for("engine acknowledged request #1", timeout_s=30)
    tmux.wait_for("rollback finished at", "1.0.0 healthy", timeout_s=60)
    tmux.keys("Escape")
    # Gone before the next key: a key within ESCDELAY of Escape would read as Alt+key.
    tmux.wait_gone("rollback finished at")
    tmux.wait_for("↶ rolled back", timeout_s=60)

    tmux.keys("h")
    tmux.wait_for("History", "↶ rolled back", "1.0.0 → 1.1.0")
    deadline = time.monotonic() + 30
    while True:  # open it; an Enter taken by the filter field first moves to the table
        tmux.keys("Enter")
        try:
            tmux.wait_for("Timeline", timeout_s=3)
            break
        except AssertionError:
            assert time.monotonic() < deadline, tmux.screen()
    tmux.wait_for("why it ended: rolled back to 1.0.0: tmux says roll back", "Timeline")
    tmux.keys("Escape")
    tmux.keys("q")  # history closes with Escape; q quits from anywhere
    tmux.keys("Escape", "q")
    deadline = time.monotonic() + 10
    while tmux.run("has-session", "-t", tmux.session) or _alive(tmux):
        if time.monotonic() > deadline:
            raise AssertionError("the console did not quit:\n" + tmux.screen())
        time.sleep(0.1)


def _alive(tmux: Tmux) -> bool:
    result = subprocess.run(
        ["tmux", "-L", tmux.socket, "has-session", "-t", tmux.session],
        capture_output=True,
        timeout=10,
    )
    return result.returncode == 0
