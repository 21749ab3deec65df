"""What both real-photo generators share: a source whose skipped inputs and digest the runner reads."""

from __future__ import annotations

from typing import Protocol

import cv2

from datagen.errors import InputError


class Source(Protocol):
    """An opened source of photos or of edit pairs."""

    skipped: list[InputError]

    @property
    def digest(self) -> str: ...


class SourcedGenerator:
    """Base of the real-photo generators; build one per worker process."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.skipped_inputs = list(source.skipped)
        # One worker per core: OpenCV's own thread pool would only oversubscribe the cores.
        cv2.setNumThreads(1)

    @property
    def input_digest(self) -> str:
        """The source's digest; computed only when the runner's parent asks for it (it reads every file)."""
        return self.source.digest
