"""The site's release log: the differencing guard of rule 5 (:mod:`rwe.federation._disclosure`).

Two releases that cover overlapping periods of a site but differ could be subtracted: their
difference describes the rows in one and not the other, a table that was never protected
(Hundepool et al. 2012, sec. 5.7: linked tables and disclosure by differencing). The rule: a
site releases each period of its rows once. The log (JSON lines, kept at the site, never
shipped) records every release: site, protocol, the exact first and last timestamp of the
rows, the row count and the file's checksum. A new release is refused when an earlier release
of the same site, under any protocol, covers an overlapping period and has another checksum;
releasing the identical file again is allowed. Without a timestamp role a release covers all
time (every further release of the site must be identical). The log is appended to before the
file is written, so a failed write can only make the guard stricter.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from rwe.federation._site import FederationError

__all__ = ["RELEASE_LOG", "check_release", "record_release", "read_release_log"]

#: Default file name of a site's release log (next to the summary written).
RELEASE_LOG = "rwe-releases.jsonl"
MSG_OVERLAP = ("{out}: differencing guard: site {site!r} already released {period_b} "
               "({file}, {when}) and this release covers an overlapping period {period_a} with "
               "different content; release each period once (non-overlapping --period), or "
               "re-send the identical file")


def read_release_log(path: str | Path) -> list[dict[str, Any]]:
    p = Path(path)
    if not p.exists():
        return []
    out = []
    for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            raise FederationError(f"{p}:{i}: release log entry is not JSON: the log is damaged; "
                                  "nothing was released") from None
        out.append(entry)
    return out


def _span(period):
    if not period:
        return pd.Timestamp.min, pd.Timestamp.max
    return pd.Timestamp(period[0]), pd.Timestamp(period[1])


def _text(period) -> str:
    return "all of its rows" if not period else f"{period[0]} to {period[1]}"


def check_release(log: str | Path, release: dict[str, Any], out: str | Path,
                  same: Callable[[], Sequence[str]] | None = None) -> bool:
    """Check a release against the log: True when it is new, False when it re-sends an
    identical earlier release (the same checksum, or one of ``same()``: the checksums
    earlier versions stated for the same content, made only when an overlapping release's
    checksum differs); raises :class:`FederationError` (one line) on overlap."""
    earlier: Sequence[str] | None = None
    a0, a1 = _span(release.get("period"))
    for e in read_release_log(log):
        if e.get("site") != release["site"]:
            continue
        b0, b1 = _span(e.get("period"))
        if a0 <= b1 and b0 <= a1:
            if e.get("checksum") == release["checksum"]:
                return False
            if same is not None:
                earlier = tuple(same()) if earlier is None else earlier
                if e.get("checksum") in earlier:
                    return False
            raise FederationError(MSG_OVERLAP.format(
                out=out, site=release["site"], period_b=_text(e.get("period")),
                file=e.get("file", "?"),
                when=f"protocol {str(e.get('protocol_sha256', '?'))[:12]}...",
                period_a=_text(release.get("period"))))
    return True


def record_release(log: str | Path, release: dict[str, Any], file: str) -> None:
    """Append the release to the log (one JSON line)."""
    p = Path(log)
    entry = {**release, "file": file}
    with p.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry, sort_keys=True) + "\n")
