"""What may be written into a published file: inputs named as typed when relative, never by an absolute path.

Datasets get published, so nothing a run writes (records, manifest, report, card) may name an absolute path
of the machine: a home folder carries the user's name. Domains name their inputs relative to the source
root; this module gives the run's own values (config, command line) their public form, and scrubs what
slipped through anyway (a library's error message quoting a file's full path) before it is written.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

PLACEHOLDER = "<absolute path>"
_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*:)(?P<rest>.*)$")
"""A `hf:` style prefix before a path; `C:` alone (a drive) is not one, since it is followed by a separator."""


def public_path(value: str) -> str:
    """`value` as typed when it is a relative path (or no path), else `PLACEHOLDER` (after any `hf:` prefix)."""
    match = _SCHEME.match(value)
    prefix, rest = (match["scheme"], match["rest"]) if match and not match["rest"].startswith("\\") else ("", value)
    if os.path.isabs(rest) or rest.startswith("~"):
        return prefix + PLACEHOLDER
    return value


def public_config(value: Any) -> Any:
    """A JSON-like config with every string that is an absolute path replaced by `public_path`'s form."""
    if isinstance(value, dict):
        return {key: public_config(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [public_config(item) for item in value]
    return public_path(value) if isinstance(value, str) else value


class PathScrubber:
    """Removes the machine's absolute paths from text that is about to be written into a dataset.

    Two kinds of roots: the input roots a run was given as absolute paths (its config's path values),
    below which a path is cut to its part relative to that root, as the domains name inputs themselves;
    and the machine's own folders (home, temporary, current), which become `PLACEHOLDER`.
    """

    def __init__(self, input_roots: Iterable[str] = ()) -> None:
        self._replacements: list[tuple[str, str]] = []
        for root in input_roots:
            for form in _forms(root):
                self._replacements += [(form + os.sep, ""), (form, PLACEHOLDER)]
        for root in (str(Path.home()), tempfile.gettempdir(), os.getcwd()):
            for form in _forms(root):
                self._replacements.append((form, PLACEHOLDER))
        # Longest first, so that a root inside another (a source folder under home) is cut at its own end.
        self._replacements.sort(key=lambda pair: -len(pair[0]))

    @classmethod
    def for_config(cls, config: Any) -> PathScrubber:
        """A scrubber whose input roots are the absolute paths among `config`'s string values (a JSON-like tree)."""
        return cls(_absolute_strings(config))

    def scrub(self, text: str) -> str:
        for old, new in self._replacements:
            if old in text:
                text = text.replace(old, new)
        return text

    def scrub_tree(self, value: Any) -> Any:
        """`value` (JSON-like) with every string scrubbed."""
        if isinstance(value, dict):
            return {key: self.scrub_tree(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.scrub_tree(item) for item in value]
        return self.scrub(value) if isinstance(value, str) else value


def _forms(root: str) -> set[str]:
    """The spellings of an absolute folder that text may contain: as given and fully resolved; never `/` alone."""
    forms = {root.rstrip(os.sep), os.path.realpath(root).rstrip(os.sep)}
    return {form for form in forms if form and os.path.isabs(form) and form != os.sep}


def _absolute_strings(value: Any) -> list[str]:
    """The absolute paths among the strings of a JSON-like tree (after a `hf:` style prefix, if any)."""
    if isinstance(value, dict):
        return [found for item in value.values() for found in _absolute_strings(item)]
    if isinstance(value, (list, tuple)):
        return [found for item in value for found in _absolute_strings(item)]
    if not isinstance(value, str):
        return []
    match = _SCHEME.match(value)
    path = match["rest"] if match else value
    return [path] if os.path.isabs(path) else []
