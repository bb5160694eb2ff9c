"""Which route template a request falls under, known before the router runs.

Metrics label requests by template (`/hashes/{id}`, not `/hashes/42`) to bound cardinality,
and requests answered before routing (an injected fault) need the label too.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.routing import BaseRoute, Match, Route
from starlette.types import Scope

UNMATCHED = "unmatched"


class RouteTemplates:
    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        self.routes = [route for route in routes if isinstance(route, Route)]

    def template(self, scope: Scope) -> str:
        """The template of the route that will answer (for a wrong method, the one that
        says 405), or "unmatched"."""
        if "dhash.route_template" in scope:
            return str(scope["dhash.route_template"])
        found = UNMATCHED
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                found = route.path
                break
            if match is Match.PARTIAL and found == UNMATCHED:
                found = route.path
        scope["dhash.route_template"] = found
        return found
