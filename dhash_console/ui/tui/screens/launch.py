"""Launch a rollout: environment, version, dry run, window length, and the plan first.

Dismisses with a LaunchRequest; the app starts the engine as its own process and attaches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from dhash_console.engine.plan import pre_rollout_plan
from dhash_console.textsafe import clean
from dhash_console.ui.tui.engine_process import LaunchRequest

if TYPE_CHECKING:
    from dhash_console.ui.tui.app import ConsoleApp


def dry_run_label(on: bool, env: str) -> str:
    if on:
        return "dry run: ON — nothing will change (space or enter toggles)"
    return (
        f"dry run: OFF — this rollout changes {env or 'the environment'} (space or enter toggles)"
    )


class LaunchScreen(ModalScreen[LaunchRequest | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "start", "Start rollout", priority=True),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._confirm_mode = "none"

    @property
    def console_app(self) -> ConsoleApp:
        return cast("ConsoleApp", self.app)

    def compose(self) -> ComposeResult:
        envs = self.console_app.backend.environments
        with Vertical(classes="form"):
            yield Static("Launch a guarded rollout", classes="dialog-title", markup=False)
            yield Label("Environment")
            yield Select(
                [(name, name) for name in envs],
                value=envs[0] if envs else Select.BLANK,
                allow_blank=False,
                id="env",
            )
            yield Label("Version to deploy")
            yield Input(placeholder="e.g. 1.1.0", id="version")
            yield Label("Monitoring window (minutes; fractions allowed)")
            yield Input(id="minutes", type="number")
            # The state in words: Textual draws the same X both ways (colour only), which a
            # plain-text screen read or a colour-blind operator cannot tell apart.
            yield Checkbox(dry_run_label(False, ""), id="dry-run")
            yield Static("", id="launch-plan", classes="plan", markup=False)
            yield Label("", id="type-name-label")
            yield Input(id="type-name")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Start rollout", id="start", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#version", Input).focus()
        self._environment_changed()

    @on(Checkbox.Changed, "#dry-run")
    def _dry_run_changed(self) -> None:
        box = self.query_one("#dry-run", Checkbox)
        box.label = dry_run_label(box.value, self._env_name())

    @on(Select.Changed, "#env")
    def _environment_changed(self) -> None:
        env_name = self._env_name()
        if not env_name:
            return
        self._dry_run_changed()
        env = self.console_app.backend.environment(env_name)
        self.query_one("#minutes", Input).value = f"{env.monitoring.duration_minutes:g}"
        self._confirm_mode = env.confirm
        typed = env.confirm == "type-name"
        label = self.query_one("#type-name-label", Label)
        label.update(f"Type the environment's name ({env_name}) to start:" if typed else "")
        label.display = typed
        self.query_one("#type-name", Input).display = typed
        versions = getattr(env.deployer, "versions", {}) or {}
        if versions:
            self.query_one("#version", Input).placeholder = "known: " + ", ".join(versions)
        self.query_one("#launch-plan", Static).update(f"{env_name}: reading what runs now…")
        self._load_plan(env_name)

    @work(exclusive=True, group="plan", exit_on_error=False)
    async def _load_plan(self, env_name: str) -> None:
        backend = self.console_app.backend
        env = backend.environment(env_name)
        current = await backend.current_version(env)
        text = (
            f"now running: {clean(current or 'unknown (or nothing)')}\n"
            f"window: {env.monitoring.duration_minutes:g} min, a sample every "
            f"{env.monitoring.interval_seconds:g} s, {len(env.gates)} gates "
            f"({', '.join(g.name for g in env.gates)})\n"
            f"rollback plan: {clean(pre_rollout_plan(env, current))}"
        )
        if env_name == self._env_name():
            self.query_one("#launch-plan", Static).update(text)

    def _env_name(self) -> str:
        value = self.query_one("#env", Select).value
        return value if isinstance(value, str) else ""

    @on(Input.Submitted)
    def _next(self, event: Input.Submitted) -> None:
        event.stop()
        self.focus_next()

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#start")
    def action_start(self) -> None:
        problem, request = self._request()
        if request is None:
            self.notify(problem, severity="error")
            return
        self.dismiss(request)

    def _request(self) -> tuple[str, LaunchRequest | None]:
        env = self._env_name()
        version = self.query_one("#version", Input).value.strip()
        if not env:
            return "choose an environment", None
        if not version:
            return "give the version to deploy", None
        minutes_text = self.query_one("#minutes", Input).value.strip()
        minutes: float | None = None
        if minutes_text:
            try:
                minutes = float(minutes_text)
            except ValueError:
                return f"window: not a number: {minutes_text!r}", None
            if minutes <= 0:
                return "window: must be more than 0 minutes", None
        dry_run = self.query_one("#dry-run", Checkbox).value
        if self._confirm_mode == "type-name" and not dry_run:
            typed = self.query_one("#type-name", Input).value.strip()
            if typed != env:
                return f"type {env} to confirm a rollout there", None
        return "", LaunchRequest(
            env=env, version=version, dry_run=dry_run, duration_minutes=minutes
        )
