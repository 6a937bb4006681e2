"""Federated evaluation: site summaries that leave a site only as protected aggregates, and
their pooled analysis at a coordinator (DESIGN.md: Scale, "across institutions").

A site runs :func:`summarize_site` (``rwe summarize PROTOCOL --site NAME --out FILE``): its
rows are validated, protected by the disclosure rule of :mod:`rwe.federation._disclosure`
(stated in the file) and summarized at the protocol's declared resolution
(``federation.score_bins``); a release log at the site refuses a second, different release of
an overlapping period. The coordinator runs :func:`merge_sites` (``rwe merge *.summary
--protocol PROTOCOL --out DIR``): every file is checked (protocol hash, schema, resolution,
checksum, sites) before anything is merged, then the pooled analyses run on the merged
summary and per site, with the pooled AUROC's DeLong interval from the merged histograms and a
random-effects meta-analysis of the site estimates (:func:`rwe.stats.random_effects_meta`);
:func:`build_federated_dossier` turns the result into one evidence dossier (the pooled
sections, and a federation section with the sites, per-site results, the meta-analysis, the
disclosure rule of each site and what summaries cannot evaluate).
"""

from __future__ import annotations

from rwe._lazy import lazy_exports

_EXPORTS = {
    "RULE": "_disclosure", "REFERENCES": "_disclosure", "DisclosureRecord": "_disclosure",
    "protect_arrays": "_disclosure",
    "SITE_SCHEMA": "_site", "SiteSummary": "_site", "SiteView": "_site", "site_views": "_site",
    "summarize_site": "_site", "load_site_summary": "_site", "FederationError": "_site",
    "RELEASE_LOG": "_releases", "check_release": "_releases", "record_release": "_releases",
    "read_release_log": "_releases",
    "merge_sites": "_merge", "check_sites": "_merge", "META_METRICS": "_merge",
    "FederatedResult": "_result", "META_COLUMNS": "_result", "SITE_COLUMNS": "_result",
    "release_site_summary": "_commands", "merge_site_files": "_commands",
    "build_federated_dossier": "_dossier", "federated_sections": "_dossier",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports("rwe.federation", _EXPORTS)
