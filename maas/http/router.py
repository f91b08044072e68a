"""Routes by method and path pattern (`/v2/models/<name>/infer`), matched as Powertools'
resolver matched them, so that every path reaches the route (or the 404) it reached before."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

# The characters a path parameter may hold: RFC 3986's unreserved and sub-delims, the escapes
# and a few unsafe ones, as Powertools allows (event_handler/api_gateway.py).
_PARAMETER_CHARS = r"[-._~()'!*:@,;=+&$%<> \[\]{}|^\w]+"
_PLACEHOLDER = re.compile(r"<(\w+)>")

H = TypeVar("H")


class Router(Generic[H]):
    """Handlers by (method, pattern), tried in the order they were added."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], H]] = []

    def add(self, method: str, pattern: str) -> Callable[[H], H]:
        """A decorator adding its function as the handler of `method` on `pattern`."""
        # `^...$` as Powertools compiles them: `$` also matches before a final newline, which is
        # why the OIP app refuses control characters in paths before any route runs.
        named = _PLACEHOLDER.sub(lambda found: f"(?P<{found[1]}>{_PARAMETER_CHARS})", pattern)
        compiled = re.compile("^" + named + "$")

        def register(handler: H) -> H:
            self._routes.append((method, compiled, handler))
            return handler

        return register

    def match(self, method: str, path: str) -> tuple[H, dict[str, str]] | None:
        """The first handler of `method` whose pattern matches `path`, and the path's parameters."""
        for route_method, pattern, handler in self._routes:
            if route_method == method:
                found = pattern.match(path)
                if found is not None:
                    return handler, found.groupdict()
        return None


__all__ = ["Router"]
