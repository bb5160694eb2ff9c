"""The quality-gates config: pydantic models, loaded and validated once at the edge."""

from dhash_console.config.gates import (
    ErrorRatio,
    Gate,
    GateOverride,
    Gauge,
    HttpGate,
    MetricsGate,
    PrometheusGate,
    Quantile,
)
from dhash_console.config.loader import (
    default_config_path,
    default_state_dir,
    load_config,
    parse_config,
    resolve_environment,
)
from dhash_console.config.models import (
    AnyGate,
    CommandDeployer,
    Config,
    Environment,
    LocalDeployer,
    Monitoring,
    ResolvedEnvironment,
)
from dhash_console.config.notifications import EmailChannel, NotificationsConfig, WebhookChannel

__all__ = [
    "AnyGate",
    "CommandDeployer",
    "Config",
    "EmailChannel",
    "Environment",
    "ErrorRatio",
    "Gate",
    "GateOverride",
    "Gauge",
    "HttpGate",
    "LocalDeployer",
    "MetricsGate",
    "Monitoring",
    "NotificationsConfig",
    "PrometheusGate",
    "Quantile",
    "ResolvedEnvironment",
    "WebhookChannel",
    "default_config_path",
    "default_state_dir",
    "load_config",
    "parse_config",
    "resolve_environment",
]
