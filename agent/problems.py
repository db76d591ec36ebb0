"""Every configuration problem at once, each naming its flag and variable."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from agent.options import Option

__all__ = ["Problems"]

_T = TypeVar("_T")


class Problems:
    """Collects problems; the caller raises one ConfigError with all of them."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, option: Option | None, message: str, *, also: str = "") -> None:
        """``also``: a variable a controller sets that the option overrides (``LWS_GROUP_SIZE``)."""
        names = (option.names + (f" / {also}" if also else "")) if option else also
        self.items.append(f"{names}: {message}" if names else message)

    def parse(
        self, option: Option, text: str | None, parse: Callable[[str], _T], *, also: str = ""
    ) -> _T | None:
        if text is None:
            return None
        try:
            return parse(text)
        except ValueError as exc:
            self.add(option, str(exc), also=also)
            return None
