"""The quality-gates config: environments, monitoring, gates, notifications, backups."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dhash_console.config.gates import Gate, GateOverride, HttpGate, MetricsGate, PrometheusGate
from dhash_console.config.notifications import NotificationsConfig
from dhash_console.localenv.faults import FaultSpec, parse_faults


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


AnyGate = HttpGate | MetricsGate | PrometheusGate
OnInconclusive = Literal["pause", "rollback", "ignore"]


class Monitoring(_Strict):
    duration_minutes: float = Field(60.0, gt=0, le=7 * 24 * 60)
    interval_seconds: float = Field(30.0, gt=0, le=3600)
    auto_rollback: bool = True
    on_inconclusive: OnInconclusive = "pause"


class MonitoringOverride(_Strict):
    duration_minutes: float | None = Field(None, gt=0, le=7 * 24 * 60)
    interval_seconds: float | None = Field(None, gt=0, le=3600)
    auto_rollback: bool | None = None
    on_inconclusive: OnInconclusive | None = None


class LocalVersion(_Strict):
    faults: str = ""

    @field_validator("faults")
    @classmethod
    def _valid_faults(cls, value: str) -> str:
        parse_faults(value)
        return value

    @property
    def fault_spec(self) -> FaultSpec:
        return parse_faults(self.faults)


class LocalDeployer(_Strict):
    """Runs the bundled dhash reference service as a real process on this machine."""

    kind: Literal["local"]
    initial_version: str = "1.0.0"
    versions: dict[str, LocalVersion] = Field(default_factory=dict)
    traffic_rps: float = Field(
        5.0,
        ge=0,
        description="requests per second the local deployer sends beside each version it "
        "starts, so that rate gates judge real traffic; 0 sends none",
    )


Argv = Annotated[list[str], Field(min_length=1)]


class CommandDeployer(_Strict):
    """Runs argv templates ({version}, {env}, {previous_version}); never through a shell."""

    kind: Literal["command"]
    deploy: Argv
    rollback: Argv | None = None
    wait: Argv | None = None
    current_version: Argv | None = None
    version_pattern: str = Field(
        r"(?P<version>[0-9A-Za-z.+_-]+)\s*$",
        description="regex whose `version` group picks the version out of current_version's output",
    )
    timeout_seconds: float = Field(300.0, gt=0)


Deployer = Annotated[LocalDeployer | CommandDeployer, Field(discriminator="kind")]


class BackupsConfig(_Strict):
    directory: str = "backups"
    keep: int = Field(20, ge=1)


class BackupsOverride(_Strict):
    keep: int | None = Field(None, ge=1)


class Environment(_Strict):
    base_url: str = Field(description="where the service answers, e.g. http://127.0.0.1:8787")
    database: str = Field(description="sqlite:///path or postgresql://user@host/db")
    deployer: Deployer
    confirm: Literal["none", "yes", "type-name"] = "none"
    monitoring: MonitoringOverride = Field(default_factory=MonitoringOverride)
    gates: dict[str, GateOverride] = Field(default_factory=dict)
    backups: BackupsOverride = Field(default_factory=BackupsOverride)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        return value.rstrip("/")

    @field_validator("database")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if not value.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError("must start with sqlite:/// or postgresql://")
        return value


class ConsoleSettings(_Strict):
    theme: str = "dark"


class Config(_Strict):
    service: str = "dhash"
    monitoring: Monitoring = Field(default_factory=Monitoring)
    gates: list[Gate] = Field(min_length=1)
    environments: dict[str, Environment] = Field(min_length=1)
    notifications: NotificationsConfig = Field(default_factory=NotificationsConfig)
    backups: BackupsConfig = Field(default_factory=BackupsConfig)
    migrations: str = "migrations"
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        names = [gate.name for gate in self.gates]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"gates: duplicate gate names {duplicates}")
        for env_name, env in self.environments.items():
            for gate_name in env.gates:
                if gate_name not in names:
                    raise ValueError(
                        f"environments.{env_name}.gates.{gate_name}: no gate of that name"
                    )
        return self


class ResolvedEnvironment(BaseModel):
    """One environment with the top-level monitoring, gates and backups merged in."""

    model_config = ConfigDict(frozen=True)

    name: str
    base_url: str
    database: str
    deployer: LocalDeployer | CommandDeployer
    confirm: Literal["none", "yes", "type-name"]
    monitoring: Monitoring
    gates: list[AnyGate]
    backups_dir: Path
    backups_keep: int
    migrations_dir: Path
    state_dir: Path

    @property
    def sqlite_path(self) -> Path | None:
        """The database file for a sqlite:/// URL, else None."""
        if not self.database.startswith("sqlite:///"):
            return None
        return Path(self.database.removeprefix("sqlite:///"))

    @property
    def port(self) -> int:
        parts = urlsplit(self.base_url)
        return parts.port or (443 if parts.scheme == "https" else 80)
