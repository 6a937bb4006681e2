"""``rwe merge``: site summaries checked, merged and analysed, then built into one dossier.

The dossier is the one :func:`rwe.dossier.build_dossier` writes (results.json, reviewer
pages from the section notebooks, disclosure plan, manifest, PDF, atomic install), built from
the merge's typed results instead of rows (:class:`rwe.dossier._computed.ComputedSections`):
the pooled analyses as its ``subgroups``, ``representativeness`` and ``drift`` sections, the
sites, per-site results and the meta-analysis as its ``federation`` section. The merged
summaries go into ``merged/``; the manifest lists the protocol, every site file (its sha256
and the checksum it states) and the reference inputs the coordinator read.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rwe.federation._result import FederatedResult

__all__ = ["build_federated_dossier", "federated_sections", "MERGED_DIR"]

#: Where the merged summaries go in a merge's dossier.
MERGED_DIR = "merged"


def federated_sections(protocol: Any, result: FederatedResult) -> dict[str, Any]:
    """The dossier's sections of a merge, in reading order: each pooled section the protocol
    asks for (``report.sections``) and could be computed, then the federation section."""
    from rwe.dossier._sections import ALL_SECTION_SPECS

    wanted = set(protocol.report.sections) | {"federation"}
    have = {**result.sections, "federation": result}
    return {s.name: have[s.name] for s in ALL_SECTION_SPECS if s.name in wanted
            and s.name in have}


def _file_input(role: str, path: Path, **facts: Any) -> dict[str, Any]:
    from rwe.data import file_sha256

    return {"role": role, "path": str(path), "sha256": file_sha256(path),
            "bytes": path.stat().st_size, **facts}


def _inputs(protocol: Any, paths: Sequence[Path], result: FederatedResult) -> list[dict]:
    """The manifest's inputs: the protocol, each site file and the reference inputs."""
    import json

    out = []
    if protocol.path:
        out.append(_file_input("protocol", Path(protocol.path).resolve()))
    for p in paths:
        d = json.loads(Path(p).read_text(encoding="utf-8"))  # checked by the merge already
        out.append(_file_input("site summary", Path(p).resolve(), site=d["site"],
                               checksum=d["checksum"], period=d.get("period")))
    ref = protocol.reference_path() if "representativeness" in result.sections else None
    if ref is not None:
        out.append(_file_input("reference population", Path(ref)))
    if "drift" in result.sections and protocol.data.reference_rows:
        rows = protocol.resolve(protocol.data.reference_rows)
        if Path(rows).is_file():
            out.append(_file_input("drift reference rows", Path(rows)))
    return out


def build_federated_dossier(protocol_path: str | Path, paths: Sequence[str | Path],
                            out: str | Path, *, force: bool = False, pdf: bool | None = None,
                            jobs: int | None = None, progress: bool = True,
                            notebooks_dir: str | Path | None = None
                            ) -> tuple[FederatedResult, Any]:
    """Check, merge and analyse site summary files, then build their dossier at ``out``.

    Parameters
    ----------
    protocol_path : str or Path
        The protocol every site summarized for.
    paths : sequence of path
        Site summary files (``rwe summarize``).
    out : str or Path
        The dossier directory to create.
    force, pdf, jobs, progress, notebooks_dir
        As for :func:`rwe.dossier.build_dossier`.

    Returns
    -------
    (FederatedResult, DossierResult)

    Raises
    ------
    FederationError
        A file cannot be merged (one line naming it): nothing is written.
    DossierExistsError
        ``out`` holds a dossier and ``force`` is False, or holds something else (checked
        before anything is read).
    """
    from rwe.dossier import build_dossier
    from rwe.dossier._build import check_target
    from rwe.dossier._computed import ComputedSections
    from rwe.federation._merge import merge_sites
    from rwe.protocol import load_protocol

    check_target(Path(out).resolve(), force)
    protocol = load_protocol(protocol_path)
    files = [Path(p) for p in paths]
    result = merge_sites(protocol, files)

    def write(build: Path) -> None:
        folder = build / MERGED_DIR
        folder.mkdir()
        for name, summary in result.merged.items():
            summary.save(folder / f"{name}.summary")

    computed = ComputedSections(results=federated_sections(protocol, result),
                                inputs=_inputs(protocol, files, result), write=write)
    dossier = build_dossier(protocol_path, out, force=force, pdf=pdf, jobs=jobs,
                            progress=progress, notebooks_dir=notebooks_dir, computed=computed)
    return result, dossier
