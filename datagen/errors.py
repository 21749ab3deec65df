"""Every exception vision-zero raises on purpose, grouped by where the problem is.

`cli.py` turns a `VzeroError` into one actionable line; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class VzeroError(Exception):
    """Base of all errors the tool raises deliberately."""


class ConfigError(VzeroError, ValueError):
    """An option or config value is invalid; raised before any work starts."""


class InputError(VzeroError, ValueError):
    """One input item (a table, an image, an annotation file) is unusable.

    Raised for a single item so that a batch can skip it and record `reason` in the run report.
    """

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class UnusableItem(InputError):
    """The input an index maps to cannot become a pair, whatever the seed (e.g. a source pair whose edit is global).

    The runner skips the item at once instead of retrying it with derived seeds, and does not count it
    towards the "most items fail, so this is a bug" abort: it is a property of the input, listed in the report.
    """


class QualityRejected(VzeroError):
    """A generated pair failed the quality gate; the runner regenerates it from a derived seed."""


class ResumeMismatchError(VzeroError):
    """The output folder holds a run made with a different config, so resuming into it would mix data."""

    def __init__(self, out_dir: str, differences: dict[str, tuple[object, object]]) -> None:
        lines = [f"  {key}: folder has {old!r}, this command has {new!r}" for key, (old, new) in differences.items()]
        super().__init__(
            f"{out_dir} holds a run with a different config; use a new --out or repeat the original command.\n"
            + "\n".join(lines)
        )
        self.differences = differences


class ShardCorruptError(VzeroError):
    """A shard on disk does not match the checksum its manifest recorded."""


class GenerationError(VzeroError):
    """A run could not produce its items (e.g. nearly every item failed, or workers kept crashing)."""


class DatasetError(VzeroError, ValueError):
    """A dataset folder or Hub dataset is not a valid pair dataset."""


class HubError(VzeroError):
    """The Hugging Face Hub (or the self-hosted one `HF_ENDPOINT` names) refused or failed a request.

    Messages never contain the token: `datagen.hub` redacts it from anything the server sent back.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class HubAuthError(HubError, PermissionError):
    """No token, an invalid token (401), or a token without the needed permission (403)."""


class HubNotFoundError(HubError, LookupError):
    """The dataset repository, revision or file does not exist, or is private to others (404)."""


class HubUnavailableError(HubError, ConnectionError):
    """The Hub could not be reached or kept failing (5xx, dropped connections) after retries; re-run to resume."""
