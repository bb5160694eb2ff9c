"""The deployer drivers: one small protocol, a `local` and a `command` driver behind it."""

from __future__ import annotations

from dhash_console.config.models import CommandDeployer, LocalDeployer, ResolvedEnvironment
from dhash_console.ops.deploy.base import Deployer, DeployFailed, LogSink, clean_line, health_ok
from dhash_console.ops.deploy.command import CommandDriver
from dhash_console.ops.deploy.local import LocalServiceDeployer

__all__ = [
    "CommandDriver",
    "DeployFailed",
    "Deployer",
    "LocalServiceDeployer",
    "LogSink",
    "build_deployer",
    "clean_line",
    "health_ok",
]


def build_deployer(env: ResolvedEnvironment) -> Deployer:
    """The driver for this environment's `deployer` config. ConfigError on a bad template."""
    config = env.deployer
    if isinstance(config, LocalDeployer):
        return LocalServiceDeployer(env, config)
    if isinstance(config, CommandDeployer):
        return CommandDriver(env, config)
    raise TypeError(f"unknown deployer config {type(config).__name__}")  # pragma: no cover
