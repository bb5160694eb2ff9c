"""The cost of watching (TARGETS.md): CPU of a headless monitoring window with 5 gates at a 1 s
interval, and memory over a whole 60-minute window at 1 s on a simulated clock.

    python bench/bench_watch.py [--seconds 60]

CPU: a real `dhash-console monitor` process against the bundled reference service with traffic;
CPU seconds (user + system, from the kernel's rusage of the child) over wall seconds.
Memory: the engine in this process with a fake clock against the reference service, 3,600
evaluations a gate; RSS after the first simulated minute and after the window.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.bench_guard import TRAFFIC_RPS, service_running, write_config  # noqa: E402

EXTRA_GATES: list[dict[str, Any]] = [
    {"name": "version", "kind": "http", "path": "/version", "expect_status": [200]},
    {
        "name": "queue_pending",
        "kind": "metrics",
        "gauge": {"metric": "dhash_queue_pending"},
        "max": 1000,
    },
]


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def cpu_of_headless_window(seconds: float) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        config = write_config(work, 1, EXTRA_GATES)
        state = work / "state"
        async with service_running(config, state):
            started = time.monotonic()
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "dhash_console",
                    "--config",
                    str(config),
                    "--state-dir",
                    str(state),
                    "--no-ui",
                    "monitor",
                    "--env",
                    "local",
                    "--duration-minutes",
                    str(seconds / 60),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env={**os.environ, "CI": ""},
            )
            # Measured from 5 s in (start-up, pre-checks and the first rounds done) to 1 s
            # before the end: the steady cost of watching.
            await asyncio.sleep(5)
            cpu_start, wall_start = proc_cpu_seconds(proc.pid), time.monotonic()
            await asyncio.sleep(seconds - 6 - (time.monotonic() - started - 5))
            cpu_end, wall_end = proc_cpu_seconds(proc.pid), time.monotonic()
            proc.wait()
            return cpu_end - cpu_start, wall_end - wall_start


async def memory_over_simulated_hour() -> tuple[float, float]:
    from dhash_console.config import load_config, resolve_environment
    from dhash_console.engine.clock import FakeClock
    from dhash_console.engine.rollout import RolloutRequest
    from dhash_console.engine.session import SessionOptions, run_rollout
    from dhash_console.localenv.traffic import TrafficGenerator

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        config = write_config(work, 1, EXTRA_GATES)
        state = work / "state"
        env = resolve_environment(load_config(config), "local", config_dir=work, state_dir=state)
        marks: dict[str, float] = {}

        class Sampler:
            name = "sampler"

            async def run(self, events: Any) -> None:
                async for event in events:
                    if event.type == "gate_sample" and event.gate == "health" and event.index == 60:
                        marks["first_minute"] = rss_mb()

        async with service_running(config, state) as url:
            # The simulated clock scrapes far faster than real time: the deployer's traffic
            # would leave rounds with no requests (inconclusive). Traffic in this event loop
            # interleaves with the rounds, so each one has requests to judge.
            traffic = TrafficGenerator(url, TRAFFIC_RPS)
            await traffic.start()
            try:
                request = RolloutRequest(
                    env=env,
                    to_version=None,
                    started_by="bench",
                    monitor_only=True,
                    duration_minutes=60,
                )
                await run_rollout(request, SessionOptions(faces=[Sampler()], clock=FakeClock()))
                marks["end"] = rss_mb()
            finally:
                await traffic.stop()
        return marks["first_minute"], marks["end"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    cpu, wall = asyncio.run(cpu_of_headless_window(args.seconds))
    print(
        f"headless, 5 gates every 1 s for {wall:.0f} s: {cpu:.2f} CPU s = "
        f"{100 * cpu / wall:.2f} % of one core (target <= 1 %)"
    )
    first, end = asyncio.run(memory_over_simulated_hour())
    print(
        f"60-minute window at 1 s on a simulated clock (3,600 evaluations a gate): RSS "
        f"{first:.1f} MB after the first minute, {end:.1f} MB after the window "
        f"(+{end - first:.1f} MB; target <= +15 MB)"
    )


if __name__ == "__main__":
    main()
