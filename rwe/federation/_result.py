"""The result of a federated merge and its results directory (no rows: aggregates only)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from rwe._evidence import Finding
from rwe._results import ResultMixin, json_safe
from rwe.exceptions import DossierExistsError

__all__ = ["FederatedResult", "FEDERATED_SCHEMA", "META_COLUMNS", "SITE_COLUMNS",
           "write_results", "SECTION_TYPES"]

FEDERATED_SCHEMA = "rwe.federated.results/1"
MANIFEST_SCHEMA = "rwe.federated.manifest/1"
META_COLUMNS = ["metric", "scale", "k", "pooled_estimate", "pooled_ci_low", "pooled_ci_high",
                "pooled_ci_method", "re_estimate", "re_ci_low", "re_ci_high", "fe_estimate",
                "tau2", "q", "df", "pvalue", "i2", "prediction_low", "prediction_high",
                "ci_level", "method", "sites_excluded"]
SITE_COLUMNS = ["site", "metric", "n", "events", "estimate", "scale", "scale_estimate",
                "scale_variance"]


def _section_type(name: str):
    if name == "subgroups":
        from rwe.subgroups import SubgroupPerformanceResult

        return SubgroupPerformanceResult
    if name == "representativeness":
        from rwe.representativeness import RepresentativenessResult

        return RepresentativenessResult
    if name == "drift":
        from rwe.drift import DriftResult

        return DriftResult
    raise KeyError(name)


#: The typed result of each section a federated merge computes.
SECTION_TYPES = ("representativeness", "subgroups", "drift")


@dataclass(frozen=True, eq=False)
class FederatedResult(ResultMixin):
    """Per-site and pooled results of site summaries (:func:`rwe.federation.merge_sites`).

    Attributes
    ----------
    settings : dict
        Protocol name and sha256, declared resolution, minimum count, sites, views, sections
        not evaluated (with the reason), pooled rows and events.
    sites : tuple of dict
        Per file: site, source, file name, checksum, rows, events, patients, period released and
        the disclosure record of each view.
    sections : dict of str to result
        The pooled analyses (typed results of :mod:`rwe.subgroups`,
        :mod:`rwe.representativeness`, :mod:`rwe.drift`).
    per_site : dict of str to dict of str to result
        The same analyses on each site's own summary.
    meta : pandas.DataFrame
        Per metric: the pooled estimate from the merged histograms with its interval, the
        random-effects (DerSimonian-Laird) estimate of the site estimates with its interval,
        the fixed-effect estimate, tau^2, Cochran's Q, df, p-value, I^2 and the prediction
        interval (columns :data:`META_COLUMNS`).
    site_estimates : pandas.DataFrame
        The site estimates that were meta-analysed (:data:`SITE_COLUMNS`).
    meta_results : dict of str to MetaAnalysisResult
    findings : tuple of Finding
        The federation's own findings (heterogeneity between sites, disclosure control,
        missing sites); each section's are in its result.
    """

    settings: dict[str, Any]
    sites: tuple[dict[str, Any], ...]
    sections: dict[str, Any]
    per_site: dict[str, dict[str, Any]]
    meta: pd.DataFrame
    site_estimates: pd.DataFrame
    meta_results: dict[str, Any] = field(default_factory=dict)
    findings: tuple[Finding, ...] = ()
    merged: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def verdicts(self) -> tuple:
        """Every section's verdicts, in section order."""
        return tuple(v for name in SECTION_TYPES if name in self.sections
                     for v in getattr(self.sections[name], "verdicts", ()))

    def to_frame(self) -> pd.DataFrame:
        return self.meta

    def finding_texts(self, k: int | None = None) -> list[str]:
        return [f.text(k) for f in self.findings]

    def to_dict(self) -> dict[str, Any]:
        """``results.json``: ``{schema, protocol, settings, sites, sections, per_site,
        federation: {meta, site_estimates, meta_results}, verdicts, findings}``; ``sections``
        holds each typed result's ``to_dict()`` (the shape a dossier's ``sections`` has)."""
        return json_safe({
            "schema": FEDERATED_SCHEMA,
            "protocol": {"name": self.settings.get("protocol"),
                         "sha256": self.settings.get("protocol_sha256")},
            "settings": self.settings,
            "sites": list(self.sites),
            "sections": {k: v.to_dict() for k, v in self.sections.items()},
            "per_site": {s: {k: v.to_dict() for k, v in r.items()}
                         for s, r in self.per_site.items()},
            "federation": {"meta": self.meta, "site_estimates": self.site_estimates,
                           "meta_results": {k: v.to_dict() for k, v in
                                            self.meta_results.items()},
                           "findings": [f.to_dict() for f in self.findings]},
            "verdicts": [v.to_dict() for v in self.verdicts],
            "findings": [f.to_dict() for f in self.findings] + [
                f.to_dict() for name in SECTION_TYPES if name in self.sections
                for f in getattr(self.sections[name], "findings", ())],
        })

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FederatedResult:
        from rwe.stats import MetaAnalysisResult

        fed = d["federation"]
        return cls(
            settings=dict(d["settings"]), sites=tuple(d["sites"]),
            sections={k: _section_type(k).from_dict(v) for k, v in d["sections"].items()},
            per_site={s: {k: _section_type(k).from_dict(v) for k, v in r.items()}
                      for s, r in d["per_site"].items()},
            meta=pd.DataFrame(fed["meta"], columns=META_COLUMNS),
            site_estimates=pd.DataFrame(fed["site_estimates"], columns=SITE_COLUMNS),
            meta_results={k: MetaAnalysisResult.from_dict(v)
                          for k, v in fed["meta_results"].items()},
            findings=tuple(Finding.from_dict(f) for f in fed["findings"]))

    def summary_lines(self) -> list[str]:
        """A few lines for a terminal: sites, pooled numbers, heterogeneity."""
        s = self.settings
        out = [f"merged {s['files']} site summar{'y' if s['files'] == 1 else 'ies'} "
               f"({', '.join(s['sites'])}): {s['n']:,} rows, {s['events']:,} events"]
        for _, r in self.meta.iterrows():
            out.append(f"  {r['metric']}: pooled {r['pooled_estimate']:.3f} "
                       f"[{r['pooled_ci_low']:.3f}, {r['pooled_ci_high']:.3f}]; random effects "
                       f"{r['re_estimate']:.3f}, I^2 {r['i2']:.0%}, Q p = {r['pvalue']:.3g}")
        for k, why in s.get("not_evaluated", {}).items():
            out.append(f"  {k}: not evaluated ({why})")
        return out


def check_results_out(out: Path, force: bool) -> None:
    """Refuse to write over a file, over a directory that is not federated results (even with
    ``force``), or over earlier results without ``force``."""
    if out.is_file():
        raise DossierExistsError(f"{out}: exists and is a file, not a results directory")
    if out.is_dir():
        # the manifest is small and names its schema (results.json has sorted keys: its
        # schema is not at its start)
        try:
            man = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
            ours = isinstance(man, dict) and man.get("schema") == MANIFEST_SCHEMA and (
                out / "results.json").is_file()
        except (OSError, ValueError):
            ours = False
        if not ours and any(out.iterdir()):
            raise DossierExistsError(f"{out}: exists and is not an rwe federated results "
                                     "directory; nothing was replaced")
        if ours and not force:
            raise DossierExistsError(f"{out}: federated results already exist there; pass "
                                     "--force to replace them")


def write_results(result: FederatedResult, out: str | Path, *, force: bool = False,
                  inputs: Mapping[str, Any] | None = None) -> Path:
    """Write the results directory: ``results.json`` (:meth:`FederatedResult.to_dict`,
    canonical JSON), ``merged/<view>.summary`` (the merged summaries: aggregates, no row) and
    ``manifest.json`` (the inputs: protocol, files and their checksums). Built in a temporary
    directory and renamed into place; an existing directory is replaced only with ``force``."""
    out = Path(out)
    check_results_out(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        # to_dict is JSON-safe already (string keys, no NaN): dumps is its canonical JSON
        text = json.dumps(result.to_dict(), sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False, allow_nan=False)
        (tmp / "results.json").write_text(text + "\n", encoding="utf-8")
        (tmp / "merged").mkdir()
        for name, s in result.merged.items():
            s.save(tmp / "merged" / f"{name}.summary")
        manifest = {"schema": MANIFEST_SCHEMA, **json_safe(dict(inputs or {})),
                    "sites": [{k: site[k] for k in ("site", "file", "checksum", "rows", "period")}
                              for site in result.sites]}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n",
                                           encoding="utf-8")
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            if old.exists():
                shutil.rmtree(old)
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
