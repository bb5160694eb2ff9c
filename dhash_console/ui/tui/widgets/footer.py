"""Textual's footer, recomposed only when its keys change, and without a leak (textual#6666).

Textual recomposes a footer at every screen change, even when its screen's keys are the same
as before, and each recompose left the old keys alive: every `FooterKey` data-binds `compact`
on its footer, and Textual drops that watcher only when `compact` changes, which it never
does here. During a log flood, an operator opening and closing panels made ~45 dead widgets a
second and the garbage collector then paused the console for longer and longer (keys waited
up to a quarter of a second). So: no recompose for the same keys, and no watchers kept for
keys that are gone.
"""

from __future__ import annotations

from collections.abc import Hashable

from textual.widgets import Footer


class ConsoleFooter(Footer):
    _shown: Hashable = None

    def _keys(self) -> Hashable:
        """What the footer would show: its screen's active bindings, enabled or not."""
        if not self._bindings_ready:
            return None
        return tuple(
            (binding, enabled, tooltip)
            for (_, binding, enabled, tooltip) in self.screen.active_bindings.values()
        )

    async def recompose(self) -> None:
        if not self.is_attached:  # its screen closed before the scheduled recompose ran
            return
        keys = self._keys()
        if keys is not None and keys == self._shown:
            return
        self._shown = keys
        await super().recompose()
        watchers = getattr(self, "__watchers", {}).get("compact")
        if watchers:
            watchers[:] = [(node, callback) for node, callback in watchers if node.is_attached]
