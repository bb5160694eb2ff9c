"""`backup`, `backup list`, `backup verify` and `migrate` through the real program."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dhash_console", "--state-dir", str(cwd / "state"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(cwd)},
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copy(REPO / "quality-gates-config.json", tmp_path)
    shutil.copytree(REPO / "migrations", tmp_path / "migrations")
    return tmp_path


def test_migrate_then_back_up_list_and_verify(project: Path) -> None:
    dry = cli(project, "migrate", "--env", "local", "--dry-run")
    assert dry.returncode == 0 and "CREATE TABLE hashes" in dry.stdout
    assert not (project / "state" / "local" / "dhash.sqlite3").exists()  # nothing changed
    assert cli(project, "migrate", "--env", "local").returncode == 0
    status = cli(project, "--json", "migrate", "--env", "local", "--status")
    assert status.returncode == 0
    assert json.loads(status.stdout.splitlines()[-1])["pending"] == []

    made = cli(project, "--json", "backup", "--env", "local")
    assert made.returncode == 0, made.stderr
    made_info = json.loads(made.stdout.splitlines()[-1])
    path = Path(made_info["path"])
    assert made_info["staged"] == str(path) + ".staged.sqlite3"  # verified and staged
    listed = cli(project, "--json", "backup", "list", "--env", "local")
    assert [json.loads(line)["path"] for line in listed.stdout.splitlines()] == [str(path)]
    verified = cli(project, "backup", "verify", str(path))
    assert verified.returncode == 0 and "restore drill" in verified.stdout
    sidecar = path.with_name(path.name + ".sha256")
    if shutil.which("sha256sum"):  # the system tool agrees, where there is one
        assert subprocess.run(["sha256sum", "-c", sidecar.name], cwd=path.parent).returncode == 0

    with path.open("ab") as handle:
        handle.write(b"tampered")
    refused = cli(project, "--json", "backup", "verify", str(path))
    assert refused.returncode == 1
    report = json.loads(refused.stdout.splitlines()[-1])
    assert report["verified"] is False and report["checks"][-1]["name"] == "sidecar"


def test_postgresql_environments_are_refused_plainly(project: Path) -> None:
    for args in (("backup", "--env", "staging"), ("migrate", "--env", "staging", "--status")):
        result = cli(project, *args)
        assert result.returncode == 2 and "not SQLite" in result.stderr
