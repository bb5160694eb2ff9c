"""`dhash-console demo`: the bundled dhash service, traffic, and a guarded rollout against it."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dhash_console.commands.context import CommandContext
    from dhash_console.config import ResolvedEnvironment

EXAMPLES = """\
examples:
  dhash-console demo --scenario bad-release --no-ui   # fails a gate, rolls back, exits 1
  dhash-console demo --scenario healthy --no-ui       # passes its window, exits 0
  dhash-console demo --scenario bad-release --json    # the same as JSON lines

The demo starts the bundled dhash reference service at version 1.0.0 in the `local`
environment (its deployer sends it traffic at traffic_rps), rolls out a new version under a
compressed monitoring window, and stops everything it started when it ends, also when
interrupted.
"""

SCENARIOS = {"healthy": "1.1.0", "bad-release": "2.0.0-bad"}
INITIAL_VERSION = "1.0.0"
DEMO_WINDOW_MINUTES = 0.75


def register(sub: Any) -> argparse.ArgumentParser:
    from dhash_console.commands.deploy import positive_minutes

    parser: argparse.ArgumentParser = sub.add_parser(
        "demo",
        help="run a guarded rollout against the bundled local dhash service",
        description="Start the bundled dhash service in the local environment with traffic, "
        "and run a guarded rollout against it, start to end.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="bad-release")
    parser.add_argument(
        "--duration-minutes",
        type=positive_minutes,
        default=DEMO_WINDOW_MINUTES,
        help=f"monitoring window (default {DEMO_WINDOW_MINUTES})",
    )
    parser.add_argument("--env", default="local", help="a local-kind environment (default local)")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace, ctx: CommandContext) -> int:
    from dhash_console.commands._rollout import run_headless
    from dhash_console.config import LocalDeployer
    from dhash_console.engine.rollout import RolloutRequest
    from dhash_console.errors import UsageError
    from dhash_console.store.process import operator_identity

    env = ctx.environment(args.env)
    if not isinstance(env.deployer, LocalDeployer):
        raise UsageError(
            f"--env: {env.name} does not run the bundled service (deployer kind "
            f"{env.deployer.kind}); the demo needs a local one"
        )
    env = _with_free_port(env)
    stage = _DemoStage(ctx, env)
    request = RolloutRequest(
        env=env,
        to_version=SCENARIOS[args.scenario],
        started_by=operator_identity(),
        via="demo",
        duration_minutes=args.duration_minutes,
    )
    return run_headless(ctx, request, before=stage.start, after=stage.stop)


def _with_free_port(env: ResolvedEnvironment) -> ResolvedEnvironment:
    """Keep the configured port when it is free; else take any free one, so demos never clash."""
    import socket
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(env.base_url)
    host = parts.hostname or "127.0.0.1"
    with socket.socket() as probe:
        try:
            probe.bind((host, env.port))
            return env
        except OSError:
            pass
    with socket.socket() as probe:
        probe.bind((host, 0))
        port = probe.getsockname()[1]
    url = urlunsplit((parts.scheme, f"{host}:{port}", parts.path, "", ""))
    return env.model_copy(update={"base_url": url.rstrip("/")})


class _DemoStage:
    """What the demo starts before the rollout and stops after it, whatever happened."""

    def __init__(self, ctx: CommandContext, env: ResolvedEnvironment) -> None:
        self.ctx = ctx
        self.env = env
        self.deployer: Any = None

    async def _log(self, level: str, message: str) -> None:
        self.ctx.console.print(f"demo: {message}")

    async def start(self) -> None:
        from dhash_console.ops.deploy import build_deployer
        from dhash_console.ops.migrate import apply_migrations, discover

        env = self.env
        assert env.sqlite_path is not None
        env.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        self.ctx.console.print(f"demo: bringing up dhash {INITIAL_VERSION} at {env.base_url}")
        # The schema 1.0.0 shipped with: all but the newest migration, which the release
        # brings, so that a rollback shows the database restored from its backup.
        files = discover(env.migrations_dir)
        target = files[-2].version if len(files) > 1 else None
        await apply_migrations(
            env.sqlite_path, env.migrations_dir, applied_by="demo", target=target
        )
        self.deployer = build_deployer(env)
        # The local deployer runs the traffic beside each version it starts (and stops it with
        # the version), so the demo sends none of its own.
        await self.deployer.ensure_running(INITIAL_VERSION, self._log)

    async def stop(self) -> None:
        if self.deployer is not None:
            await self.deployer.stop(self._log)
            self.ctx.console.print("demo: dhash service stopped")
