"""Bad configs exit 2 and name the field; the shipped config is valid in every environment."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dhash_console.cli import main
from tests.conftest import SHIPPED_CONFIG


def run_validate(tmp_path: Path, data: Any, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    path = tmp_path / "config.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    code = main(["--config", str(path), "config", "validate"])
    return code, capsys.readouterr().err


def test_shipped_config_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(SHIPPED_CONFIG), "config", "validate"]) == 0
    assert "valid" in capsys.readouterr().out


def _break(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    target = data
    *parents, last = path.split(".")
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        ("monitoring.interval_secs", 5, "monitoring.interval_secs: unknown key"),
        ("monitoring.interval_seconds", "fast", "monitoring.interval_seconds"),
        ("monitoring.duration_minutes", -1, "monitoring.duration_minutes"),
        ("monitoring.on_inconclusive", "shrug", "monitoring.on_inconclusive"),
        ("gates.1.max", KeyError, "gates[1]: a gate needs a threshold"),
        ("gates.0.failure_limit", 0, "gates[0].failure_limit"),
        ("gates.0.kind", "carrier-pigeon", "gates[0]"),
        ("environments.staging.base_url", KeyError, "environments.staging.base_url: required"),
        ("environments.staging.base_url", "ftp://x", "environments.staging.base_url"),
        (
            "environments.local.deployer.versions.2.0.0-bad.faults",
            "error_rate=lots",
            "environments.local.deployer.versions.2.0.0-bad.faults",
        ),
        ("environments.production.gates.nope", {"max": 1}, "environments.production.gates.nope"),
        (
            "gates.1.error_ratio.exclude",
            {"path": "/health|("},
            "gates[1].error_ratio.exclude: path: not a regular expression",
        ),
        (
            "gates.1.error_ratio.match",
            {"not a label": "x"},
            "gates[1].error_ratio.match: 'not a label' is not a label name",
        ),
        ("gates.1.error_ratio.exclude", ["/health"], "gates[1].error_ratio.exclude"),
        ("gates.2.quantile.match", {"le": "0.5"}, "gates[2].quantile: le is the bucket bound"),
        ("environments.production.confirm", "maybe", "environments.production.confirm"),
        ("notifications.slack.webhook_url", "https://hooks.example", "notifications.slack"),
    ],
)
def test_bad_config_exits_2_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], path: str, value: Any, named: str
) -> None:
    data = json.loads(SHIPPED_CONFIG.read_text())
    if path.startswith("environments.local.deployer.versions."):
        data["environments"]["local"]["deployer"]["versions"]["2.0.0-bad"]["faults"] = value
    else:
        _break(data, path, value)
    code, err = run_validate(tmp_path, data, capsys)
    assert code == 2
    assert named in err


def test_bad_override_value_names_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = json.loads(SHIPPED_CONFIG.read_text())
    data["environments"]["production"]["gates"]["error_rate"]["failure_limit"] = -3
    code, err = run_validate(tmp_path, data, capsys)
    assert code == 2
    assert "environments.production.gates.error_rate.failure_limit" in err


def test_not_json_names_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_validate(tmp_path, '{\n  "gates": [,]\n}', capsys)
    assert code == 2
    assert "line 2" in err


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(tmp_path / "nope.json"), "config", "validate"]) == 2
    assert "file not found" in capsys.readouterr().err


def test_schema_is_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(SHIPPED_CONFIG), "config", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["type"] == "object"
    assert {"gates", "environments"} <= set(schema["properties"])


def test_environment_overrides_merge(tmp_path: Path) -> None:
    from dhash_console.config import load_config, resolve_environment

    config = load_config(SHIPPED_CONFIG)
    prod = resolve_environment(config, "production", config_dir=tmp_path, state_dir=tmp_path)
    staging = resolve_environment(config, "staging", config_dir=tmp_path, state_dir=tmp_path)
    assert prod.monitoring.interval_seconds == 15
    assert prod.monitoring.on_inconclusive == "rollback"
    assert staging.monitoring.interval_seconds == 30
    prod_rate = next(g for g in prod.gates if g.name == "error_rate")
    assert prod_rate.max == 0.005 and prod_rate.failure_limit == 2  # type: ignore[union-attr]
    assert prod.backups_keep == 50


def test_unknown_environment_is_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = main(
        [
            "--config",
            str(SHIPPED_CONFIG),
            "--state-dir",
            str(tmp_path),
            "deploy",
            "--env",
            "moon",
            "--version",
            "1",
        ]
    )
    assert code == 2
    assert "--env" in capsys.readouterr().err
