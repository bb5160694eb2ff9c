"""Benchmark the operator console (run by hand; tests never time anything).

    python bench/bench_tui.py                 # 60 s log flood, 20 s gate watch, first paint
    python bench/bench_tui.py --seconds 10    # shorter flood

Figures (TARGETS.md): 2,000 log lines/s for 60 s with bounded memory and key presses answered
within 100 ms; CPU while watching 5 gates at a 1 s interval (target <= 3 % of a core with the
TUI open); first paint (<= 700 ms). A separate writer process journals the events into a real
history database, as an engine would; the console attaches through the journal.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
ROLLOUT = "r-bench"


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


async def writer(db: Path, mode: str, seconds: float, rate: float) -> None:
    """Journal log lines (mode 'logs') or 5 gate samples a second (mode 'gates')."""
    from dhash_console.events import GateSample, LogLine, PhaseStarted, RolloutStarted
    from dhash_console.store.history import HistoryStore

    async with await HistoryStore.open(db) as store:
        seq = 0

        async def emit(event: object) -> None:
            nonlocal seq
            seq += 1
            await store.journal(event.model_copy(update={"seq": seq}))  # type: ignore[attr-defined]

        gates = [f"gate{i}" for i in range(5)]
        await emit(
            RolloutStarted(
                rollout_id=ROLLOUT,
                env="local",
                from_version="1.0.0",
                to_version="1.1.0",
                started_by="bench",
                via="cli",
                host=socket.gethostname(),
                pid=os.getpid(),
                duration_s=3600,
                interval_s=1,
                gates=gates,
            )
        )
        await emit(PhaseStarted(rollout_id=ROLLOUT, phase="monitor"))
        start = time.monotonic()
        sent = 0
        while (elapsed := time.monotonic() - start) < seconds:
            if mode == "logs":
                due = int(elapsed * rate) - sent
                for _ in range(max(0, due)):  # one transaction a line, as the engine journals
                    sent += 1
                    await emit(LogLine(rollout_id=ROLLOUT, message=f"line {sent} [bold]x[/] ok"))
                await asyncio.sleep(0.01)
            else:
                sent += 1
                for i, gate in enumerate(gates):
                    await emit(
                        GateSample(
                            rollout_id=ROLLOUT,
                            gate=gate,
                            index=sent,
                            result="pass",
                            value=float(i + sent % 7),
                            condition="<= 10",
                        )
                    )
                await asyncio.sleep(max(0.0, start + sent - time.monotonic()))


def start_writer(db: Path, mode: str, seconds: float, rate: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--writer",
            mode,
            "--db",
            str(db),
            "--seconds",
            str(seconds),
            "--rate",
            str(rate),
        ]
    )


async def watch(state: Path, seconds: float, keys: bool) -> dict[str, float]:
    from dhash_console.ui.tui.app import ConsoleApp
    from dhash_console.ui.tui.widgets.log_pane import LogPane

    app = ConsoleApp(
        config_path=REPO / "quality-gates-config.json", state_dir=state, attach=ROLLOUT
    )
    latencies: list[float] = []
    rss: list[float] = []
    async with app.run_test(size=(120, 40)) as pilot:
        while app.dashboard.state is None or app.dashboard.state.started is None:
            await pilot.pause(0.05)
        cpu0, wall0 = time.process_time(), time.monotonic()
        first_rss = rss_mb()
        while time.monotonic() - wall0 < seconds:
            if keys:
                for key in ("f", "f"):
                    pressed = time.monotonic()
                    await pilot.press(key)
                    latencies.append((time.monotonic() - pressed) * 1000)
            rss.append(rss_mb())
            await asyncio.sleep(1.0)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
        pane = app.query_one(LogPane)
        result = {
            "cpu_pct": 100 * cpu / wall,
            "rss_first_mb": first_rss,
            "rss_last_mb": rss[-1] if rss else first_rss,
            "rss_max_mb": max(rss) if rss else first_rss,
            "lines_received": pane.lines_received,
            "lines_kept": pane.log_widget.line_count,
        }
        if latencies:
            latencies.sort()
            result["key_p50_ms"] = statistics.median(latencies)
            result["key_p99_ms"] = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
            result["key_max_ms"] = latencies[-1]
        app.exit()
    return result


class PtyConsole:
    """The real console program on a pseudo-terminal: keys in as bytes, the screen out as bytes.

    Key latency is measured here, not through Pilot: `pilot.press` waits for the app to go
    idle, which under a log flood it never quite does, so it times the wait, not the answer.
    Here a key's time runs from writing its byte to the terminal until the terminal receives
    the frame that shows its effect.
    """

    def __init__(self, state: Path, cols: int = 120, rows: int = 40) -> None:
        import fcntl
        import pty
        import struct
        import termios
        import threading

        code = (
            "import sys; from pathlib import Path\n"
            + os.environ.get("BENCH_CHILD_PRELUDE", "")  # e.g. a profiler's set-up
            + "from dhash_console.ui.tui.app import ConsoleApp\n"
            f"ConsoleApp(config_path=Path({str(REPO / 'quality-gates-config.json')!r}),"
            f" state_dir=Path({str(state)!r}), attach={ROLLOUT!r}).run()\n"
        )
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        env = dict(os.environ, TERM="xterm-256color", COLUMNS=str(cols), LINES=str(rows))
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=REPO,
            env=env,
            start_new_session=True,
        )
        os.close(slave)
        self._lock = threading.Lock()
        self._since = bytearray()  # output since the last key sent
        self._seen_at: float | None = None
        self._marker = b""
        self.received = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 1 << 16)
            except OSError:
                return
            if not data:
                return
            now = time.monotonic()
            with self._lock:
                self.received += len(data)
                self._since += data
                if self._seen_at is None and self._marker and self._marker in self._since:
                    self._seen_at = now
                if len(self._since) > 1 << 22:  # keep the tail only; markers are short
                    del self._since[: -(1 << 12)]

    def press(self, key: bytes, marker: str, timeout_s: float = 5.0) -> float:
        """Send `key`; milliseconds until output after it contains `marker` (inf: never)."""
        with self._lock:
            self._since.clear()
            self._seen_at = None
            self._marker = marker.encode()
        sent = time.monotonic()
        os.write(self.master, key)
        deadline = sent + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                seen = self._seen_at
            if seen is not None:
                return (seen - sent) * 1000
            time.sleep(0.002)  # polling the reader's flag, with a deadline
        return float("inf")

    def wait_for(self, marker: str, timeout_s: float = 20.0) -> bool:
        return self.press(b"", marker, timeout_s) != float("inf")

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        os.close(self.master)


def pty_keys(state: Path, seconds: float) -> dict[str, float]:
    """Key latency against the real program in a pty, during whatever the writer journals."""
    import resource

    console = PtyConsole(state)
    latencies: list[float] = []
    try:
        if not console.wait_for(ROLLOUT):
            raise RuntimeError("the console did not attach within 20 s")
        start = time.monotonic()
        cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        while time.monotonic() - start < seconds:
            # `?` opens the help (its text appears); `?` again closes it (the dashboard's
            # footer is painted again). No Escape: a lone ESC waits ESCDELAY by design.
            latencies.append(console.press(b"?", "roll back: shows the plan"))
            time.sleep(0.25)
            latencies.append(console.press(b"?", "Pause/resume"))
            time.sleep(0.25)
        received = console.received
        if os.environ.get("BENCH_VERBOSE"):
            print("pty latencies (ms, in order):", " ".join(f"{x:.0f}" for x in latencies))
    finally:
        console.close()
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    latencies.sort()
    return {
        "pty_key_p50_ms": statistics.median(latencies),
        "pty_key_p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "pty_key_max_ms": latencies[-1],
        "pty_keys": float(len(latencies)),
        "pty_bytes_out_mb": received / 1e6,
        "pty_cpu_pct_incl_startup": 100 * cpu / seconds,
    }


def first_paint() -> float:
    """Fresh interpreter: from before importing Textual to the dashboard's first paint.

    Bytecode caching is left on (an installed console has its `.pyc` files), so the figure is
    an operator's start, not a compile of every module from source.
    """
    code = (
        "import time; t0 = time.perf_counter()\n"
        "import gc; gc.disable()  # as run_console does\n"
        "import asyncio, tempfile, pathlib\n"
        "from dhash_console.ui.tui.app import ConsoleApp\n"
        "async def main():\n"
        "    app = ConsoleApp(config_path=pathlib.Path('quality-gates-config.json'),"
        " state_dir=pathlib.Path(tempfile.mkdtemp()), offer_attach=False)\n"
        "    async with app.run_test(size=(120, 40)) as pilot:\n"
        "        while not app.ready: await pilot.pause(0.005)\n"
        "        await pilot.pause()\n"
        "        print((time.perf_counter() - t0) * 1000)\n"
        "asyncio.run(main())\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--gate-seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--writer", choices=("logs", "gates"))
    parser.add_argument("--db", type=Path)
    parser.add_argument(
        "--only",
        choices=("paint", "logs", "gates", "pty"),
        action="append",
        help="run only these parts (pty: key latency of the real program during the flood)",
    )
    args = parser.parse_args()
    if args.writer:
        asyncio.run(writer(args.db, args.writer, args.seconds, args.rate))
        return
    parts = set(args.only or ("paint", "logs", "gates", "pty"))
    if "paint" in parts:
        first_paint()  # writes the bytecode caches a fresh checkout lacks
        paints = sorted(first_paint() for _ in range(7))  # start-up is noisy on a shared box
        runs = ", ".join(f"{p:.0f}" for p in paints)
        print(f"first paint: median {statistics.median(paints):.0f} ms (runs {runs})")
    for name, mode, seconds in (
        ("logs", "logs", args.seconds),
        ("gates", "gates", args.gate_seconds),
        ("pty", "logs", args.seconds),
    ):
        if name not in parts:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            state = Path(tmp)
            db = state / "history.sqlite3"
            proc = start_writer(db, mode, seconds + 25, args.rate)
            try:
                deadline = time.monotonic() + 10
                while not db.exists() and time.monotonic() < deadline:
                    time.sleep(0.05)
                if name == "pty":
                    result = pty_keys(state, seconds)
                else:
                    result = asyncio.run(watch(state, seconds, keys=mode == "logs"))
            finally:
                proc.kill()
                proc.wait()
        print(f"{name}: " + ", ".join(f"{k}={v:.1f}" for k, v in result.items()))


if __name__ == "__main__":
    main()
