"""Reference (target) populations: versioned, cited marginal shares, optionally with rows.

A reference population is what the cohort is compared with (EVIDENCE.md REP-1): the US
population, a disease-specific prevalence population, a hospital catchment, the training
population or another site. It is stored as a long CSV (``attribute, category, share``) with a
``# key: value`` header (name, source, table, year, universe, version) and a data card in
``datasets/reference/README.md``.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rwe._paths import (  # noqa: F401 (available_references, reference_dir re-exported)
    available_references,
    bundled_reference,
    reference_dir,
)
from rwe.exceptions import InvalidParameterError, ReferenceDataError

__all__ = [
    "ReferencePopulation",
    "load_reference",
    "available_references",
    "reference_dir",
    "SHARE_TOLERANCE",
    "parse_ages",
    "ages_label",
    "describe_ages",
    "parse_verified",
]

#: Shares of one attribute must sum to 1 within this absolute tolerance (published percentages
#: are rounded to 0.1 point, so a sum of 99.9% is normal); within it they are renormalised.
SHARE_TOLERANCE = 1e-3

MSG_SUM = ("{source}: shares of attribute {attribute!r} sum to {total:.6g}, not 1 "
           "(tolerance {tol:g})")
MSG_NEGATIVE = "{source}: attribute {attribute!r}, category {category!r} has share {share!r} < 0"
MSG_COLUMNS = ("{source}: a reference file needs the columns {needed}; its header has {n} "
               "column(s) and lacks {missing}{hint}")
MSG_BINARY = ("{source}: not a reference file: {why}; a reference is a text CSV "
              "(attribute, category, share)")
MSG_TOO_LARGE = ("{source}: the file has {size} bytes; a reference population of marginal "
                 "shares is limited to {limit:,} bytes")
#: Largest reference file read (bytes). The bundled census references are about 4 kB.
MAX_REFERENCE_BYTES = 10_000_000
MSG_DUPLICATE = "{source}: attribute {attribute!r} lists category {category!r} more than once"
MSG_UNKNOWN = ("reference {name!r} is neither a file nor a name in {directory}; available: "
               "{available}")
MSG_AGES = ("{source}: age range {value!r} of {what} is not of the form 'a+' (ages a and "
            "older, '0+' for all ages) or 'a-b' (ages a to b)")
MSG_MIXED_AGES = ("{source}: attribute {attribute!r} mixes age ranges {found}; give one age "
                  "range per attribute (an age-specific table is a separate attribute or file)")
MSG_VERIFIED = ("{source}: verified value {value!r} of {what} is not one of true, false")
MSG_MIXED_VERIFIED = ("{source}: attribute {attribute!r} mixes verified values {found}; give one "
                      "per attribute (the figures of one attribute are checked together)")
MSG_VERIFIED_CONFLICT = ("{source}: the header says 'verified: {header}' but the verified column "
                         "says {detail}; make them agree (the header is true only when every "
                         "attribute is verified)")
MSG_MIN_AGE = ("{source}: minimum age {age:g} falls inside the reference age group {group!r} of "
               "attribute {attribute!r}; the groups start at {boundaries}: use one of these or "
               "a reference with single-year or {age:g}+ figures")


def parse_ages(text: str, *, source: str = "<reference>", what: str = "the reference"
               ) -> tuple[float, float]:
    """``(lowest, highest + 1)`` ages of an age-range label: ``"0+"`` -> ``(0, inf)``,
    ``"40+"`` -> ``(40, inf)``, ``"18-64"`` -> ``(18, 65)``.

    Raises
    ------
    ReferenceDataError
        When the label is of neither form.
    """
    txt = str(text).strip()
    try:
        if txt.endswith("+"):
            lo, hi = float(txt[:-1]), math.inf
        else:
            a, b = txt.split("-")
            lo, hi = float(a), float(b) + 1
    except ValueError:
        raise ReferenceDataError(MSG_AGES.format(source=source, value=text, what=what)) from None
    if not (math.isfinite(lo) and lo >= 0 and hi > lo):
        raise ReferenceDataError(MSG_AGES.format(source=source, value=text, what=what))
    return lo, hi


_TRUTH = {"true": True, "yes": True, "false": False, "no": False}


def parse_verified(value: Any, *, source: str = "<reference>", what: str = "the reference"
                   ) -> bool:
    """``true`` / ``yes`` -> True, ``false`` / ``no`` -> False (case-insensitive).

    Raises
    ------
    ReferenceDataError
        When the value is neither.
    """
    v = _TRUTH.get(str(value).strip().lower())
    if v is None:
        raise ReferenceDataError(MSG_VERIFIED.format(source=source, value=value, what=what))
    return v


def ages_label(min_age: float | None, max_age: float | None = None) -> str:
    """The age-range label of ages ``min_age`` and older (``"40+"``; ``"0+"`` for all ages)."""
    lo = 0.0 if min_age is None else float(min_age)
    if max_age is None or not math.isfinite(max_age):
        return f"{lo:g}+"
    return f"{lo:g}-{float(max_age) - 1:g}"


def describe_ages(label: str | None) -> str:
    """Plain words for an age-range label: ``"0+"`` -> ``"all ages"``, ``"40+"`` -> ``"adults
    40+"``, ``"5-17"`` -> ``"ages 5-17"``, None -> ``"ages not stated"``."""
    if label is None:
        return "ages not stated"
    lo, hi = parse_ages(label)
    if lo == 0 and not math.isfinite(hi):
        return "all ages"
    return (f"adults {label}" if lo >= 18 else f"ages {label}")


def _check_shares(shares: Mapping[str, Mapping[str, float]], source: str
                  ) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    if not shares:
        raise ReferenceDataError(f"{source}: the reference defines no attribute")
    for attr, cats in shares.items():
        if not cats:
            raise ReferenceDataError(f"{source}: attribute {attr!r} has no category")
        clean: dict[str, float] = {}
        for cat, share in cats.items():
            try:
                v = float(share)
            except (TypeError, ValueError):
                raise ReferenceDataError(
                    f"{source}: attribute {attr!r}, category {cat!r}: share {share!r} is not a "
                    "number") from None
            if not math.isfinite(v) or v < 0:
                raise ReferenceDataError(MSG_NEGATIVE.format(source=source, attribute=attr,
                                                             category=cat, share=share))
            clean[str(cat)] = v
        total = math.fsum(clean.values())
        if abs(total - 1.0) > SHARE_TOLERANCE:
            raise ReferenceDataError(MSG_SUM.format(source=source, attribute=attr, total=total,
                                                    tol=SHARE_TOLERANCE))
        out[str(attr)] = {k: v / total for k, v in clean.items()}
    return out


def _read_text(p: Path) -> str:
    """The text of a reference file, refusing a binary, non-UTF-8 or oversized file in one
    line that never quotes the file (it may be anything a path was pointed at)."""
    with p.open("rb") as fh:
        raw = fh.read(MAX_REFERENCE_BYTES + 1)
    if len(raw) > MAX_REFERENCE_BYTES:
        raise ReferenceDataError(MSG_TOO_LARGE.format(source=p, size=f"{p.stat().st_size:,}",
                                                      limit=MAX_REFERENCE_BYTES))
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise ReferenceDataError(MSG_BINARY.format(
            source=p, why=f"binary content (a NUL byte at byte {nul})"))
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ReferenceDataError(MSG_BINARY.format(
            source=p, why=f"not UTF-8 text ({exc.reason} at byte {exc.start})")) from None


def _columns_message(p: Path, needed: list[str], found: list[Any]) -> str:
    """Which required columns the header lacks. The header itself is not quoted (the file may
    be anything a path was pointed at); a near miss of a required name is suggested."""
    import difflib

    names = [str(c).strip() for c in found]
    missing = [c for c in needed if c not in names]
    hints = []
    for c in missing:
        close = difflib.get_close_matches(c, names, n=1, cutoff=0.75)
        if close:
            hints.append(f"{close[0]!r} for {c!r}")
    hint = f"; did you mean {', '.join(hints)}?" if hints else ""
    return MSG_COLUMNS.format(source=p, needed=", ".join(needed), n=len(found),
                              missing=", ".join(missing), hint=hint)


@dataclass(frozen=True, eq=False)
class ReferencePopulation:
    """A target population: marginal shares per attribute, metadata and (optionally) rows.

    Build one with :meth:`from_csv`, :meth:`from_shares`, :meth:`from_frame` or
    :func:`load_reference`. Shares of each attribute sum to 1 (files must sum to 1 within
    :data:`SHARE_TOLERANCE` and are then renormalised).

    Attributes
    ----------
    name : str
        Short name (file stem or given).
    shares : dict
        ``{attribute: {category: share}}``.
    metadata : dict
        Source, table, year, universe, version... (the file header).
    rows : pandas.DataFrame or None
        Individual rows when built from a frame; needed for SMD of continuous covariates and
        for Tipton's generalizability index.
    source : str
        File path or ``"<dict>"`` / ``"<DataFrame>"``.
    """

    name: str
    shares: dict[str, dict[str, float]]
    metadata: dict[str, str] = field(default_factory=dict)
    rows: pd.DataFrame | None = field(default=None, repr=False)
    source: str = "<dict>"

    # ------------------------------------------------------------------ builders
    @classmethod
    def from_shares(cls, shares: Mapping[str, Mapping[str, float]], *, name: str = "custom",
                    metadata: Mapping[str, str] | None = None) -> ReferencePopulation:
        """From ``{attribute: {category: share}}`` (each attribute must sum to 1).

        Raises
        ------
        ReferenceDataError
            When an attribute's shares do not sum to 1 or a share is negative.
        """
        return cls(name=name, shares=_check_shares(shares, f"<shares {name}>"),
                   metadata=dict(metadata or {}), source="<dict>")

    @classmethod
    def from_frame(cls, rows: pd.DataFrame, attributes: Sequence[str], *, name: str = "rows",
                   metadata: Mapping[str, str] | None = None) -> ReferencePopulation:
        """Marginal shares computed from individual rows (missing values excluded).

        The rows are kept, so continuous covariates can be compared by SMD and Tipton's B can be
        estimated (e.g. a training snapshot, another site, a registry extract).
        """
        if not isinstance(rows, pd.DataFrame):
            raise InvalidParameterError(
                f"rows must be a pandas DataFrame, got {type(rows).__name__}")
        attributes = [attributes] if isinstance(attributes, str) else list(attributes)
        missing = [a for a in attributes if a not in rows.columns]
        if missing:
            raise InvalidParameterError(
                f"attributes {missing} are not columns of the reference rows; available: "
                f"{', '.join(map(repr, rows.columns))}")
        shares: dict[str, dict[str, float]] = {}
        for a in attributes:
            vc = rows[a].dropna().astype(str).value_counts()
            if vc.sum() == 0:
                raise ReferenceDataError(f"<DataFrame {name}>: attribute {a!r} is entirely missing")
            shares[a] = (vc / vc.sum()).to_dict()
        meta = {"universe": f"{len(rows)} individual rows"} | dict(metadata or {})
        return cls(name=name, shares=_check_shares(shares, f"<DataFrame {name}>"),
                   metadata=meta, rows=rows.copy(), source="<DataFrame>")

    @classmethod
    def from_csv(cls, path: str | Path) -> ReferencePopulation:
        """Read a long CSV ``attribute, category, share`` with an optional ``# key: value`` header.

        Raises
        ------
        ReferenceDataError
            Missing file or columns, duplicate categories, negative shares, or an attribute
            whose shares do not sum to 1 (the message names the file, attribute and sum).
        """
        p = Path(path)
        if not p.is_file():
            raise ReferenceDataError(f"{p}: reference file not found")
        text = _read_text(p)
        meta: dict[str, str] = {}
        body: list[str] = []
        for line in text.splitlines():
            if line.startswith("#"):
                key, sep, value = line[1:].partition(":")
                if sep:
                    meta[key.strip()] = value.strip()
            elif line.strip():
                body.append(line)
        if not body:
            raise ReferenceDataError(f"{p}: the reference file has no header and no rows; "
                                     "expected a CSV with the columns attribute, category, share")
        try:
            df = pd.read_csv(io.StringIO("\n".join(body)), dtype={"attribute": str,
                                                                  "category": str})
        except Exception as exc:  # pandas parser errors (they name a line, not its content)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ReferenceDataError(f"{p}: could not be parsed as CSV: {first}") from None
        needed = ["attribute", "category", "share"]
        if not set(needed) <= set(df.columns):
            raise ReferenceDataError(_columns_message(p, needed, list(df.columns)))
        dup = df.duplicated(["attribute", "category"])
        if dup.any():
            r = df.loc[dup].iloc[0]
            raise ReferenceDataError(MSG_DUPLICATE.format(source=p, attribute=r["attribute"],
                                                          category=r["category"]))
        shares: dict[str, dict[str, float]] = {}
        for attr, g in df.groupby("attribute", sort=False):
            shares[str(attr)] = dict(zip(g["category"], g["share"], strict=True))
        if "universe_ages" in meta:
            parse_ages(meta["universe_ages"], source=str(p), what="universe_ages")
        if "ages" in df.columns:  # the age range of each attribute's figures
            for attr, value in _one_per_attribute(df, "ages", p, MSG_MIXED_AGES).items():
                parse_ages(value, source=str(p), what=f"attribute {attr!r}")
                meta[f"ages:{attr}"] = value
        if "verified" in df.columns:  # whether each attribute's figures were checked
            _per_attribute_verified(df, meta, str(p))
        meta.setdefault("name", p.stem)
        meta["path"] = str(p)
        return cls(name=meta["name"], shares=_check_shares(shares, str(p)), metadata=meta,
                   source=str(p))

    # ------------------------------------------------------------------ access
    @property
    def attributes(self) -> list[str]:
        return list(self.shares)

    @property
    def has_rows(self) -> bool:
        return self.rows is not None

    def ages(self, attribute: str) -> str | None:
        """Age range of the figures of ``attribute`` (``"0+"`` all ages, ``"40+"``...): the
        file's ``ages`` column for that attribute, else its ``universe_ages`` header, else None
        (not stated). An age-band attribute derived with :meth:`with_age_bands` carries the
        range it was restricted to."""
        return self.metadata.get(f"ages:{attribute}", self.metadata.get("universe_ages"))

    @property
    def verified(self) -> bool | None:
        """Whether all the figures were checked against the published tables: the file's
        ``verified`` header (true / false); without it, True when every attribute's
        ``verified`` column says true, False when one says false; None when the file does not
        say. :meth:`verified_for` gives the status of one attribute."""
        v = _TRUTH.get(str(self.metadata.get("verified", "")).strip().lower())
        if v is not None:
            return v
        per = [self.verified_for(a) for a in self.shares]
        if any(x is False for x in per):
            return False
        return True if per and all(x is True for x in per) else None

    def verified_for(self, attribute: str) -> bool | None:
        """Whether the figures of ``attribute`` were checked against the published tables: the
        file's ``verified`` column for that attribute, else its ``verified`` header, else None
        (not stated). An age-band attribute derived with :meth:`with_age_bands` has the status
        of the attribute it was derived from."""
        v = self.metadata.get(f"verified:{attribute}")
        if v is None:
            v = self.metadata.get("verified", "")
        return _TRUTH.get(str(v).strip().lower())

    def unverified_attributes(self) -> list[str]:
        """The attributes whose figures are stated as not verified."""
        return [a for a in self.shares if self.verified_for(a) is False]

    def age_boundaries(self, source: str = "age") -> list[float]:
        """The ages at which the groups of ``source`` start (``[0, 5, ..., 85]``): the only
        values a band cut or a minimum age can take."""
        lo, _ = self._age_groups(source)
        return sorted(set(lo.tolist()))

    def _age_groups(self, source: str) -> tuple[np.ndarray, np.ndarray]:
        s = self.share(source)
        lo = np.empty(len(s))
        hi = np.empty(len(s))
        for i, cat in enumerate(s.index):
            try:
                lo[i], hi[i] = parse_ages(cat, source=self.source,
                                          what=f"age group of attribute {source!r}")
            except ReferenceDataError:
                raise ReferenceDataError(
                    f"{self.source}: age group {cat!r} of attribute {source!r} is not of the form "
                    "'a-b' or 'a+'") from None
        return lo, hi

    def check_min_age(self, min_age: float, source: str = "age") -> None:
        """Raise :class:`ReferenceDataError` (one line naming the available boundaries) when
        ``min_age`` falls inside an age group of ``source``."""
        lo, hi = self._age_groups(source)
        m = float(min_age)
        if m in set(lo.tolist()) or (len(lo) and m <= float(np.min(lo))):
            return
        inside = [c for c, a, b in zip(self.share(source).index, lo, hi, strict=True) if a < m < b]
        bounds = ", ".join(f"{b:g}" for b in sorted(set(lo.tolist())))
        raise ReferenceDataError(MSG_MIN_AGE.format(
            source=self.source, age=m, group=inside[0] if inside else "(none)",
            attribute=source, boundaries=bounds))

    def share(self, attribute: str) -> pd.Series:
        """Shares of one attribute as a Series indexed by category."""
        if attribute not in self.shares:
            raise InvalidParameterError(
                f"attribute {attribute!r} is not in reference {self.name!r}; it defines: "
                f"{', '.join(map(repr, self.shares))}")
        return pd.Series(self.shares[attribute], name=attribute, dtype=float)

    def to_frame(self) -> pd.DataFrame:
        """Long table: attribute, category, share."""
        recs = [(a, c, s) for a, cats in self.shares.items() for c, s in cats.items()]
        return pd.DataFrame(recs, columns=["attribute", "category", "share"])

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "metadata": dict(self.metadata),
                "shares": {a: dict(c) for a, c in self.shares.items()},
                "has_rows": self.has_rows}

    def _repr_html_(self) -> str:
        return self.to_frame().to_html(index=False)

    # ------------------------------------------------------------------ transforms
    def rename_categories(self, attribute: str, mapping: Mapping[str, str]) -> ReferencePopulation:
        """Map categories to the cohort's labels; categories mapped to the same label are summed.

        Use it when the cohort codes categories differently (e.g. ``"Female" -> "F"``) or to
        merge census categories (``"Some Other Race"`` and ``"Two or More Races"`` ->
        ``"Other"``). Record the mapping in the analysis notes.
        """
        s = self.share(attribute)
        new = s.groupby(s.index.map(lambda c: mapping.get(c, c)), sort=False).sum()
        shares = dict(self.shares) | {attribute: new.to_dict()}
        meta = dict(self.metadata)
        meta[f"mapping:{attribute}"] = "; ".join(f"{k} -> {v}" for k, v in mapping.items())
        rows = self.rows
        if rows is not None and attribute in rows.columns:
            rows = rows.assign(**{attribute: rows[attribute].map(lambda c: mapping.get(c, c))})
        return replace(self, shares=shares, metadata=meta, rows=rows)

    def with_age_bands(self, cuts: Sequence[float], *, source: str = "age",
                       name: str = "age_band", min_age: float | None = None
                       ) -> ReferencePopulation:
        """Aggregate 5-year (or finer) age groups ``"a-b"`` / ``"a+"`` into protocol age bands.

        The labels follow :func:`rwe.data.age_band_labels` (cuts ``[50, 65]`` -> ``"<50"``,
        ``"50-64"``, ``"65+"``), so they match the cohort's derived attribute.

        Parameters
        ----------
        cuts : sequence of float
            Band cut points; each must coincide with a group boundary of ``source``.
        source : str
            The reference attribute holding the fine age groups.
        name : str
            Name of the new attribute.
        min_age : float, optional
            Restrict the reference to ages >= ``min_age`` (a group boundary) and renormalise,
            e.g. to the intended-use age range of a screening device.

        Raises
        ------
        ReferenceDataError
            When a cut (or ``min_age``) falls inside a reference age group.
        """
        from rwe.data import age_band_labels

        s = self.share(source)
        lo, hi = self._age_groups(source)
        if min_age is not None:
            self.check_min_age(min_age, source)
        bounds = set(lo.tolist()) | set(hi.tolist())
        cuts = [float(c) for c in cuts]
        for c in cuts:
            if c not in bounds:
                raise ReferenceDataError(
                    f"{self.source}: age cut {c:g} falls inside an age group of attribute "
                    f"{source!r}; group boundaries: "
                    f"{', '.join(f'{b:g}' for b in sorted(b for b in bounds if np.isfinite(b)))}")
        keep = np.ones(len(s), dtype=bool) if min_age is None else lo >= float(min_age)
        labels = age_band_labels(cuts)
        codes = np.searchsorted(np.asarray(cuts), lo, side="right")
        agg = pd.Series(s.to_numpy()[keep], index=np.asarray(labels, dtype=object)[codes[keep]])
        agg = agg.groupby(level=0, sort=False).sum()
        agg = agg.reindex([lab for lab in labels if lab in agg.index])
        agg = agg / agg.sum()
        shares = dict(self.shares) | {name: agg.to_dict()}
        meta = dict(self.metadata)
        meta[f"derived:{name}"] = (f"from {source} with cuts {cuts}"
                                   + (f", restricted to age >= {min_age:g}" if min_age else ""))
        if f"verified:{source}" in meta:
            meta[f"verified:{name}"] = meta[f"verified:{source}"]
        src_ages = self.ages(source)
        if min_age is not None:
            top = parse_ages(src_ages)[1] if src_ages is not None else math.inf
            meta[f"ages:{name}"] = ages_label(max(float(min_age), float(np.min(lo))), top)
        elif src_ages is not None:
            meta[f"ages:{name}"] = src_ages
        return replace(self, shares=shares, metadata=meta)

    def restrict(self, attributes: Iterable[str]) -> ReferencePopulation:
        """Keep only some attributes."""
        attributes = list(attributes)
        return replace(self, shares={a: self.shares[a] for a in attributes if a in self.shares})


def _one_per_attribute(df: pd.DataFrame, column: str, source: Any, message: str
                       ) -> dict[str, str]:
    """The one value of ``column`` each attribute gives (attributes without one left out);
    an attribute with two different values raises :class:`ReferenceDataError` (``message``
    with ``source``, ``attribute`` and ``found``)."""
    out = {}
    for attr, g in df.groupby("attribute", sort=False):
        found = list(dict.fromkeys(str(v).strip() for v in g[column].dropna()))
        if len(found) > 1:
            raise ReferenceDataError(message.format(
                source=source, attribute=attr, found=", ".join(map(repr, found))))
        if found:
            out[str(attr)] = found[0]
    return out


def _per_attribute_verified(df: pd.DataFrame, meta: dict[str, str], source: str) -> None:
    """Read the ``verified`` column (one value per attribute) into ``meta["verified:<attr>"]``
    and check it against the ``verified`` header; raises :class:`ReferenceDataError`."""
    status: dict[str, bool] = {}
    for attr, value in _one_per_attribute(df, "verified", source, MSG_MIXED_VERIFIED).items():
        status[attr] = parse_verified(value, source=source, what=f"attribute {attr!r}")
        meta[f"verified:{attr}"] = "true" if status[attr] else "false"
    if "verified" not in meta:
        return
    header = parse_verified(meta["verified"], source=source, what="the verified header")
    false = [a for a, v in status.items() if not v]
    every = set(status) == set(map(str, df["attribute"].unique()))
    if header and false:
        raise ReferenceDataError(MSG_VERIFIED_CONFLICT.format(
            source=source, header=meta["verified"],
            detail=f"false for {', '.join(map(repr, false))}"))
    if not header and every and not false:
        raise ReferenceDataError(MSG_VERIFIED_CONFLICT.format(
            source=source, header=meta["verified"], detail="true for every attribute"))


def load_reference(name_or_path: str | Path | ReferencePopulation) -> ReferencePopulation:
    """Load a reference population by name (a file in ``datasets/reference``) or path.

    Parameters
    ----------
    name_or_path : str, path or ReferencePopulation
        ``"us_census_2020"`` (see :func:`available_references`), a CSV path, or an existing
        :class:`ReferencePopulation` (returned unchanged).

    Examples
    --------
    >>> ref = load_reference("us_census_2020")
    >>> round(ref.shares["ethnicity"]["Hispanic or Latino"], 4)
    0.1873
    """
    if isinstance(name_or_path, ReferencePopulation):
        return name_or_path
    p = Path(name_or_path)
    if p.is_file():
        return ReferencePopulation.from_csv(p)
    bundled = bundled_reference(str(name_or_path))
    if bundled is not None:
        return ReferencePopulation.from_csv(bundled)
    raise ReferenceDataError(MSG_UNKNOWN.format(name=str(name_or_path), directory=reference_dir(),
                                                available=", ".join(available_references())
                                                or "none"))
