"""Sections whose typed results exist before a dossier build: a federated merge, whose
coordinator holds site summaries and no rows (:func:`rwe.federation.build_federated_dossier`).

The build renders them like any other section (records, notebooks, disclosure plan, index,
manifest, PDF, atomic install) and reads no data: what the manifest lists as inputs, and any
further file the dossier holds, come with the results.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ComputedSections"]


@dataclass(frozen=True)
class ComputedSections:
    """The results a dossier is built from instead of the protocol's data.

    Attributes
    ----------
    results : mapping of str to result
        The typed result of every section of the dossier (the section names of
        :data:`rwe.dossier._sections.ALL_SECTION_SPECS`); the dossier holds these sections
        and no other.
    inputs : sequence of dict
        The manifest's ``inputs``: ``{role, path, sha256, bytes}`` and any further facts of
        each input (a site file's site and checksum).
    write : callable, optional
        ``write(build_dir)`` writes further files into the dossier being built (e.g. the
        merged summaries); they are listed with their sha256 among the manifest's outputs.
    """

    results: Mapping[str, Any]
    inputs: Sequence[Mapping[str, Any]] = field(default_factory=tuple)
    write: Callable[[Path], None] | None = None
