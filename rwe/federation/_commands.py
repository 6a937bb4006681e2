"""The two federated commands as library calls (the CLI only maps its arguments onto them)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rwe.exceptions import DossierExistsError
from rwe.federation._releases import RELEASE_LOG, check_release, record_release
from rwe.federation._result import FederatedResult

__all__ = ["release_site_summary", "merge_site_files"]


def _check_summary_out(out: Path, force: bool) -> None:
    from rwe.federation._site import EARLIER_SITE_SCHEMA, SITE_SCHEMA

    if out.is_dir():
        raise DossierExistsError(f"{out}: is a directory, expected a site summary file name")
    if out.exists():
        with open(out, "rb") as fh:
            head = fh.read(64)
        if not any(head.startswith(b'{"schema":"' + s.encode() + b'"')
                   for s in (SITE_SCHEMA, EARLIER_SITE_SCHEMA)):
            raise DossierExistsError(f"{out}: exists and is not an rwe site summary; nothing "
                                     "was replaced")
        if not force:
            raise DossierExistsError(f"{out}: a site summary already exists there; pass "
                                     "--force to replace it")


def release_site_summary(protocol_path: str | Path, site: str, out: str | Path, *,
                         data: str | Path | None = None, period: Sequence[str] | None = None,
                         release_log: str | Path | None = None, force: bool = False
                         ) -> tuple[Any, dict[str, Any], bool]:
    """``rwe summarize``: summarize the site's rows, check the differencing guard against the
    site's release log, record the release and write the file (atomically).

    Returns the site summary, the release record and whether it is new (False: an identical
    earlier release re-sent)."""
    from rwe.federation._site import summarize_site
    from rwe.protocol import load_protocol

    out = Path(out)
    _check_summary_out(out, force)
    protocol = load_protocol(protocol_path)
    summary, release = summarize_site(protocol, site, data=data, period=period)
    log = Path(release_log) if release_log is not None else out.parent / RELEASE_LOG
    new = check_release(log, release, out, same=lambda: (summary.earlier_checksum(),))
    if new:
        record_release(log, release, out.name)
    summary.save(out)
    return summary, release, new


def merge_site_files(protocol_path: str | Path, paths: Sequence[str | Path],
                     out: str | Path, *, force: bool = False, pdf: bool | None = None,
                     jobs: int | None = None, progress: bool = True
                     ) -> tuple[FederatedResult, Any]:
    """``rwe merge``: check every file, merge, analyse and build the dossier at ``out``
    (:func:`rwe.federation.build_federated_dossier`); returns the result and the
    :class:`rwe.dossier.DossierResult`."""
    from rwe.federation._dossier import build_federated_dossier

    return build_federated_dossier(protocol_path, paths, out, force=force, pdf=pdf, jobs=jobs,
                                   progress=progress)
