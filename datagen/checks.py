"""The checks of option and config values, worded one way: each names the value, what it got and what is allowed.

Domains' `validate(config)` functions and the runner use these, so a bad value reads the same whichever command
or domain it reached, and fails before any work (DESIGN.md: a bad configuration fails at once).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from datagen.errors import ConfigError


def check_int(name: str, value: object, low: int, high: int | None = None, *, unit: str = "") -> None:
    """Raise `ConfigError` unless `value` is an integer in `[low, high]` (no upper bound when `high` is None)."""
    suffix = f" {unit}" if unit else ""
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        allowed = f"from {low} to {high}" if high is not None else f">= {low}"
        raise ConfigError(f"{name} must be an integer {allowed}{suffix}, got {value!r}")


def check_positive(name: str, value: object, *, unit: str = "") -> None:
    """Raise `ConfigError` unless `value` is a number above 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(f"{name} must be a positive number{' of ' + unit if unit else ''}, got {value!r}")


def check_choice(name: str, value: object, allowed: Collection[str], *, what: str | None = None) -> None:
    """Raise `ConfigError` unless `value` is one of `allowed`."""
    if value not in allowed:
        raise ConfigError(f"unknown {what or name} {value!r}; choose from {', '.join(allowed)}")


def check_choices(name: str, values: Iterable[str], allowed: Collection[str], *, what: str | None = None) -> None:
    """Raise `ConfigError` when `values` is empty or holds anything not in `allowed`."""
    values = list(values)
    if not values:
        raise ConfigError(f"{name} is empty; choose from {', '.join(allowed)}")
    for value in values:
        check_choice(name, value, allowed, what=what)
