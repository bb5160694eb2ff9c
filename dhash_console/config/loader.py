"""Load the config once, at the edge, and turn every problem into a message naming its field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from dhash_console.config.models import Config, Environment, ResolvedEnvironment
from dhash_console.defaults import default_config_path, default_state_dir
from dhash_console.errors import ConfigError, UsageError

__all__ = ["default_config_path", "default_state_dir"]


_UNION_TAGS = {"deployer": ("local", "command"), "gates": ("http", "metrics", "prometheus")}


def _field_path(loc: tuple[int | str, ...]) -> str:
    """`('gates', 1, 'metrics', 'max')` -> `gates[1].max`: the union tag pydantic adds after
    a discriminated field is dropped, and nothing else (an environment may be named local)."""
    out = ""
    previous: list[int | str] = []
    for part in loc:
        owner = (
            previous[-2]
            if len(previous) >= 2 and isinstance(previous[-1], int)
            else (previous[-1] if previous else None)
        )
        if (
            isinstance(owner, str)
            and part in _UNION_TAGS.get(owner, ())
            and (owner == "deployer" or isinstance(previous[-1], int))
        ):
            previous.append(f"<{part}>")
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
        previous.append(part)
    return out or "(top level)"


def format_validation_error(exc: ValidationError) -> list[str]:
    problems = []
    for err in exc.errors():
        field = _field_path(tuple(err["loc"]))
        message = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown key"
        elif err["type"] == "missing":
            message = "required but missing"
        problems.append(f"{field}: {message}")
    return problems


def parse_config(data: Any, source: str = "config") -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc), source) from None


def load_config(path: Path) -> Config:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(["file not found"], str(path)) from None
    except OSError as exc:
        raise ConfigError([f"cannot read: {exc.strerror}"], str(path)) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            [f"not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"], str(path)
        ) from None
    return parse_config(data, str(path))


def resolve_environment(
    config: Config, name: str, *, config_dir: Path, state_dir: Path
) -> ResolvedEnvironment:
    """Merge the top-level monitoring, gates and backups into one environment.

    Relative paths are taken from the config file's folder; `{state_dir}` in a
    database URL names the state directory, so that tests and demos stay apart.
    """
    env: Environment | None = config.environments.get(name)
    if env is None:
        known = ", ".join(sorted(config.environments))
        raise UsageError(f"--env: no environment {name!r} in the config (known: {known})")

    monitoring = config.monitoring.model_copy(update=env.monitoring.model_dump(exclude_none=True))
    gates = []
    for gate in config.gates:
        override = env.gates.get(gate.name)
        if override is not None:
            changes = override.model_dump(exclude_none=True)
            unknown = [key for key in changes if key not in type(gate).model_fields]
            if unknown:
                raise ConfigError(
                    [
                        f"environments.{name}.gates.{gate.name}.{unknown[0]}: "
                        f"not a setting of a {gate.kind} gate"
                    ]
                )
            try:
                gate = type(gate).model_validate({**gate.model_dump(), **changes})
            except ValidationError as exc:
                prefix = f"environments.{name}.gates.{gate.name}"
                raise ConfigError([f"{prefix}.{p}" for p in format_validation_error(exc)]) from None
        if gate.enabled:
            gates.append(gate)

    state_dir = state_dir.resolve()
    database = env.database.replace("{state_dir}", state_dir.as_posix())
    if database.startswith("sqlite:///"):
        db_path = Path(database.removeprefix("sqlite:///"))
        if not db_path.is_absolute():
            database = "sqlite:///" + (config_dir / db_path).resolve().as_posix()

    def _path(value: str) -> Path:
        path = Path(value.replace("{state_dir}", state_dir.as_posix()))
        return path if path.is_absolute() else (config_dir / path).resolve()

    return ResolvedEnvironment(
        name=name,
        base_url=env.base_url,
        database=database,
        deployer=env.deployer,
        confirm=env.confirm,
        monitoring=monitoring,
        gates=gates,
        backups_dir=_path(config.backups.directory),
        backups_keep=env.backups.keep or config.backups.keep,
        migrations_dir=_path(config.migrations),
        state_dir=state_dir,
    )
