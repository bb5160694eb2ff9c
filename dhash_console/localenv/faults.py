"""Fault injection settings for the reference service, as in podinfo and rollouts-demo.

A fault spec is written as comma-separated `key=value` pairs, for example
`error_rate=0.5,after_s=10`: half of the requests fail with a 500 from ten
seconds after start-up on.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class FaultSpec(BaseModel):
    """What the service does wrong, and from when."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    error_rate: float = Field(
        0.0, ge=0.0, le=1.0, description="share of API requests that fail with 500"
    )
    latency_ms: float = Field(0.0, ge=0.0, description="latency added to every API request")
    health_down: bool = Field(False, description="/health answers 503")
    after_s: float = Field(
        0.0, ge=0.0, description="seconds after start-up before the faults apply"
    )

    @property
    def is_clean(self) -> bool:
        return self.error_rate == 0 and self.latency_ms == 0 and not self.health_down

    def to_spec(self) -> str:
        """The inverse of `parse_faults`."""
        parts = [f"{name}={value}" for name, value in self.model_dump().items() if value]
        return ",".join(parts)


_TRUE = {"1", "true", "yes", "on", "down"}
_FALSE = {"0", "false", "no", "off", "up"}


def parse_faults(spec: str) -> FaultSpec:
    """Parse `error_rate=0.5,after_s=10`; raise ValueError naming the bad key."""
    values: dict[str, object] = {}
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep:
            raise ValueError(f"fault {key!r} needs a value, as in {key}=...")
        if key not in FaultSpec.model_fields:
            known = ", ".join(FaultSpec.model_fields)
            raise ValueError(f"unknown fault {key!r} (known: {known})")
        value = value.strip()
        if key == "health_down":
            if value.lower() not in _TRUE | _FALSE:
                raise ValueError(f"fault health_down takes true or false, not {value!r}")
            values[key] = value.lower() in _TRUE
        else:
            values[key] = value
    try:
        return FaultSpec.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"fault {field}: {first['msg']}") from None
