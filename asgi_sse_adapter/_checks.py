"""Checks of numeric options, shared by the constructors: a nonsense value (0, a negative, NaN,
a float where a count is meant) fails at construction with a ``ValueError`` naming the option,
not later as a timer that fires in a loop or a bound that never holds."""

from __future__ import annotations

import math

__all__ = ["check_choice", "check_count", "check_seconds"]


def check_count(name: str, value: object, *, minimum: int, optional: bool = False) -> None:
    """Refuse a size or count option that is not an ``int`` of at least ``minimum`` (nor
    ``None`` when ``optional``: "no limit") with a ``ValueError`` naming it. Called at
    construction."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        kind = "a positive int" if minimum == 1 else f"an int >= {minimum}"
        raise ValueError(f"{name} must be {kind}{' or None' if optional else ''}, not {value!r}")


def check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    """Refuse a string option that is none of ``choices`` with a ``ValueError`` naming it (a
    typo must not quietly mean the default)."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, not {value!r}")


def check_seconds(name: str, value: object, *, optional: bool = False) -> None:
    """Refuse a duration that is not a positive finite number of seconds (nor ``None`` when
    ``optional``: "off") with a ``ValueError`` naming it: 0, a negative, NaN or infinity would
    fire a timer at once, in a loop, or never."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise ValueError(
            f"{name} must be a positive finite number of seconds{' or None' if optional else ''}, "
            f"not {value!r}"
        )
