"""The shared core: the pair record, seeding, the resumable sharded runner, quality gates, previews."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("vision-zero")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
