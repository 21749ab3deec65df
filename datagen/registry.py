"""Domains plug into the shared runner here; `datagen` never imports a domain package itself.

A domain is found either because its package called `register_domain` on import, or through the
`vision_zero.domains` entry-point group, which is how a user's own package adds a domain.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Protocol

from datagen.errors import ConfigError, InputError
from datagen.quality import QualityGate
from datagen.record import Pair

ENTRY_POINT_GROUP = "vision_zero.domains"


class PairGenerator(Protocol):
    """Built once per worker process, then called for many indices."""

    skipped_inputs: Sequence[InputError]
    """Input files the generator found unusable while it was built (reported once per run)."""
    input_digest: str
    """Identifies the input data it reads (e.g. `files_digest` of the user's folder), "" when it reads none.

    It is part of the run's fingerprint: resuming after the inputs changed would mix old and new data.
    """
    # Optionally also `licence: datagen.card.DataLicence`, for pairs made from images with their own terms
    # (the card declares it); a generator without one makes synthetic pairs, published as `SYNTHETIC_LICENCE`.

    def __call__(self, index: int, seed: int) -> Pair:
        """The pair for `index`, using only randomness derived from `seed`."""
        ...


@dataclass(frozen=True)
class Domain:
    """What a domain package provides to the shared runner.

    Attributes:
        name: the `domain` column value and the id prefix, e.g. `"chart"`.
        config_type: a dataclass of the domain's options; `asdict` of it is saved in the manifest.
        make_generator: `config -> generator`; called in the parent to validate and in every worker.
        quality: the thresholds its pairs must pass.
    """

    name: str
    config_type: type
    make_generator: Callable[[Any], PairGenerator]
    quality: QualityGate


_DOMAINS: dict[str, Domain] = {}


def register_domain(domain: Domain) -> Domain:
    """Make `domain` available by name; registering the same name twice replaces it."""
    _DOMAINS[domain.name] = domain
    return domain


def get_domain(name: str) -> Domain:
    """The registered domain `name`, loading entry points on first miss."""
    if name not in _DOMAINS:
        for point in entry_points(group=ENTRY_POINT_GROUP):
            if point.name == name:
                register_domain(point.load())
    if name not in _DOMAINS:
        raise ConfigError(f"unknown domain {name!r}; known: {', '.join(available_domains()) or 'none'}")
    return _DOMAINS[name]


def available_domains() -> list[str]:
    """Names of registered domains and of those declared as entry points."""
    return sorted(set(_DOMAINS) | {point.name for point in entry_points(group=ENTRY_POINT_GROUP)})
