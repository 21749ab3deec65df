"""How an exception raised by a domain's code becomes a report event that lets its author find the bug.

By default an event holds the exception's type and message and `where`: the innermost frame of the domain's own
package (`chart_edit/domain.py:87 in __call__`), so "every item failed; first reason: TypeError" points at a
line. With `--debug` or `VZERO_DEBUG=1` it also holds the whole traceback. Paths are written relative to the
folder they were imported from (`numpy/core/...`, `my_domain/domain.py`), never as absolute paths of the machine:
reports get published.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Iterable

DEBUG_VARIABLE = "VZERO_DEBUG"


def debug_enabled(flag: bool = False) -> bool:
    """Whether full tracebacks are wanted: the `--debug` flag, or `VZERO_DEBUG` set to anything but 0/empty."""
    return flag or os.environ.get(DEBUG_VARIABLE, "") not in ("", "0")


def relative_source(filename: str, roots: Iterable[str] | None = None) -> str:
    """`filename` relative to the longest import root (a `sys.path` entry) that holds it; else its base name."""
    path = os.path.realpath(filename)
    best = ""
    for root in sys.path if roots is None else roots:
        root = os.path.realpath(root or os.getcwd())
        if path.startswith(root + os.sep) and len(root) > len(best):
            best = root
    return os.path.relpath(path, best).replace(os.sep, "/") if best else os.path.basename(path)


def domain_frame(error: BaseException, package: str) -> str | None:
    """`module.py:LINE in function` of the innermost frame in `package` (else the innermost frame at all)."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return None
    sources = [relative_source(frame.filename) for frame in frames]
    inside = [i for i, source in enumerate(sources) if source.startswith(f"{package}/") or source == f"{package}.py"]
    chosen = inside[-1] if inside else len(frames) - 1
    return f"{sources[chosen]}:{frames[chosen].lineno} in {frames[chosen].name}"


def traceback_text(error: BaseException) -> str:
    """The whole traceback (chained exceptions included) with every file named by `relative_source`."""
    formatted = traceback.TracebackException.from_exception(error)
    seen: set[int] = set()
    pending = [formatted]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        for frame in current.stack:
            frame.filename = relative_source(frame.filename)
        pending += [chained for chained in (current.__cause__, current.__context__) if chained is not None]
    return "".join(formatted.format())


def package_of(thing: object) -> str:
    """The top-level package a class, function or instance comes from, e.g. `chart_edit`."""
    module = getattr(thing, "__module__", None) or type(thing).__module__
    return module.split(".")[0]


def error_fields(error: BaseException, package: str, *, debug: bool) -> dict[str, str | None]:
    """`reason`, `where` and (in debug mode) `traceback` of a report event for `error`."""
    return {
        "reason": f"{type(error).__name__}: {error}",
        "where": domain_frame(error, package),
        "traceback": traceback_text(error) if debug else None,
    }
