"""The licence a real-photo dataset card declares, from what its sources state about their images."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from datagen.card import DataLicence, hub_licence_id


def source_licence(image_licences: Iterable[str], declared: str | None) -> DataLicence:
    """The card's licence for pairs made from these images.

    Args:
        image_licences: each used image's licence as its source states it (an SPDX-like id or a sentence).
        declared: for a Hub dataset, the licence its card declares ("" for none); None for other sources.

    Returns:
        The dataset's declared licence id; else the images' common id when they share one; else `other`
        with a note counting the images per stated licence, so that a publisher can check them.
    """
    if declared is not None:
        licence_id = hub_licence_id(declared) if declared else None
        if licence_id is not None:
            return DataLicence(licence_id, "as the source dataset declares")
        if declared:
            return DataLicence("other", f"the source dataset declares: {declared}")
        return DataLicence("other", "the source dataset declares no licence; check its terms before publishing")
    counts = Counter(image_licences)
    ids = {hub_licence_id(licence) for licence in counts}
    if len(ids) == 1 and None not in ids:
        return DataLicence(ids.pop())
    stated = "; ".join(f"{count} image{'s' * (count > 1)}: {licence}" for licence, count in sorted(counts.items()))
    return DataLicence("other", f"the source images' licences differ or are not stated ({stated})")
