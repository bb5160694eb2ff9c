"""A channel: what it wants to receive, and how it delivers one item."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

from dhash_console.ops.notify.delivery import (
    Attempt,
    Outcome,
    Pacer,
    RetryPolicy,
    deliver_with_retries,
)
from dhash_console.ops.notify.message import Item


class Channel(ABC):
    """One destination. Subclasses build the payload and make one attempt."""

    name: str
    queue_size: int = 500
    reports_success: bool = True  # say "sent" in the history for each delivery

    def __init__(
        self,
        *,
        events: Sequence[str] | None,
        environments: Sequence[str] | None,
        policy: RetryPolicy,
        min_interval: float,
        clock: Callable[[], float],
        secrets: Sequence[str] = (),
    ) -> None:
        self.events = list(events) if events is not None else None
        self.environments = list(environments) if environments is not None else None
        self.policy = policy
        self.pacer = Pacer(min_interval, clock)
        self.secrets = [secret for secret in secrets if secret]

    def wants(self, item: Item, env: str, default_events: Sequence[str]) -> bool:
        if self.environments is not None and env not in self.environments:
            return False
        if item.notification is None:
            return False
        events = self.events if self.events is not None else default_events
        return "*" in events or item.key in events

    async def deliver(self, item: Item) -> Outcome:
        """Every try, paced and retried; never raises; the detail is redacted."""
        outcome = await deliver_with_retries(
            lambda: self.attempt(item),
            policy=self.policy,
            pacer=self.pacer,
            secrets=self.secrets,
        )
        if outcome.ok:
            tries = "" if outcome.attempts == 1 else f" after {outcome.attempts} attempts"
            return Outcome(True, f"{item.summary()}{tries}", outcome.attempts)
        return Outcome(False, f"{outcome.detail}; message: {item.summary()}", outcome.attempts)

    @abstractmethod
    async def attempt(self, item: Item) -> Attempt:
        """One try at sending the item."""

    async def aclose(self) -> None:  # noqa: B027 - most channels hold nothing open
        """Release connections."""
