"""Domains plug into the shared runner here; `datagen` never imports a domain package itself.

A domain is found either because its package called `register_domain` on import, or through the
`vision_zero.domains` entry-point group, which is how a user's own package adds a domain: one `domain.py`
defining a `Domain`, and one line in its `pyproject.toml`:

    [project.entry-points."vision_zero.domains"]
    shapes = "my_shapes.domain:DOMAIN"

Two packages offering the same name is an error naming both: silently running the wrong generator would make a
dataset that looks right.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Protocol

from datagen.errors import ConfigError, InputError
from datagen.quality import QualityGate
from datagen.record import Pair

ENTRY_POINT_GROUP = "vision_zero.domains"
GENERIC_PROMPT_HINT = "a few details of the image differ"
"""What players are told about the difference when the domain gives no words of its own."""


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
class WorkerResources:
    """What one item-making worker of a domain occupies, for schedulers that place work on machines (Ray)."""

    cpus: float = 1.0
    gpus: float = 0.0


def one_cpu(config: Any) -> WorkerResources:
    """The default: a worker makes its items on one CPU core."""
    return WorkerResources()


@dataclass(frozen=True)
class Domain:
    """What a domain package provides to the shared runner, the command line and the trainer.

    Attributes:
        name: the `domain` column value and the id prefix, e.g. `"chart"`.
        config_type: a frozen dataclass of the domain's options, each field with a default and a docstring (the
            docstring is the option's help in `vzero domains`); `asdict` of it is saved in the manifest.
        make_generator: `config -> generator`; called in the parent to validate and in every worker.
        quality: the thresholds its pairs must pass.
        summary: one line for `vzero domains`.
        prompt_hint: how the spy's image differs, in words every player of a game on its pairs is told, e.g.
            "a few objects in the scene differ in colour or shape" (never the actual change).
        resources: `config -> WorkerResources`, what one worker needs (e.g. a GPU when the config renders on one).
    """

    name: str
    config_type: type
    make_generator: Callable[[Any], PairGenerator]
    quality: QualityGate
    summary: str = ""
    prompt_hint: str = GENERIC_PROMPT_HINT
    resources: Callable[[Any], WorkerResources] = one_cpu

    @property
    def module(self) -> str:
        """The module that defines the domain's generator, e.g. `chart_edit.domain`."""
        return self.make_generator.__module__


_DOMAINS: dict[str, Domain] = {}


def register_domain(domain: Domain) -> Domain:
    """Make `domain` available by name.

    Registering it again from the same module (a re-import) is fine; the same name from another module is not.

    Raises:
        ConfigError: another module already registered a domain of that name; the message names both.
    """
    existing = _DOMAINS.get(domain.name)
    if existing is not None and existing.module != domain.module:
        raise ConfigError(
            f"two packages define the domain {domain.name!r}: {existing.module} and {domain.module}; "
            "uninstall one or rename its domain"
        )
    _DOMAINS[domain.name] = domain
    return domain


def domain_entry_points() -> dict[str, EntryPoint]:
    """The installed `vision_zero.domains` entry points by name.

    Raises:
        ConfigError: two installed distributions declare the same name (naming both and their targets).
    """
    found: dict[str, EntryPoint] = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        other = found.get(point.name)
        if other is not None and other.value != point.value:
            raise ConfigError(
                f"two installed packages declare the domain {point.name!r}: {_provider(other)} and "
                f"{_provider(point)}; uninstall one or rename its domain"
            )
        found[point.name] = point
    return found


def _provider(point: EntryPoint) -> str:
    """`distribution (module:attribute)`, how a clash names each side."""
    distribution = point.dist.name if point.dist is not None else "an unknown distribution"
    return f"{distribution} ({point.value})"


def get_domain(name: str) -> Domain:
    """The registered domain `name`, loading its entry point on first use.

    Raises:
        ConfigError: no such domain, an entry point that does not give a `Domain` of that name, or a name clash.
    """
    points = domain_entry_points()
    if name not in _DOMAINS and name in points:
        loaded = points[name].load()
        if not isinstance(loaded, Domain) or loaded.name != name:
            raise ConfigError(
                f"entry point {name!r} of {_provider(points[name])} must name a datagen.registry.Domain "
                f"called {name!r}, got {loaded!r}"
            )
        register_domain(loaded)
    if name not in _DOMAINS:
        raise ConfigError(f"unknown domain {name!r}; known: {', '.join(available_domains()) or 'none'}")
    return _DOMAINS[name]


def available_domains() -> list[str]:
    """Names of registered domains and of those declared as entry points."""
    return sorted(set(_DOMAINS) | set(domain_entry_points()))


def prompt_hint(name: str) -> str:
    """The domain's words for how a spy's image differs; the generic words for a domain not installed here.

    A dataset may come from the Hub, made with a domain this machine does not have: it still trains.
    """
    if name not in available_domains():
        return GENERIC_PROMPT_HINT
    return get_domain(name).prompt_hint
