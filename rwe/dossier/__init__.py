"""Evidence dossiers: papermill orchestration of ``notebooks/``, reviewer HTML and PDF,
``results.json``, ``manifest.json`` and atomic output (DESIGN.md: rwe/dossier).

>>> from rwe.dossier import build_dossier
>>> result = build_dossier("protocols/demo.yaml", "reports/demo")      # doctest: +SKIP
>>> result.path / "index.html"                                         # doctest: +SKIP

A dossier directory holds ``index.html`` (what was evaluated, verdicts first, findings, table
of contents), one page per section, ``notebooks/`` (the executed notebooks, code kept),
``figures/`` (PNG), ``results.json``, ``model-card.xml``, ``manifest.json`` and, when headless
Chromium is installed, ``dossier.pdf``.

``results.json`` schema (``"schema": "rwe.dossier.results/1"``; keys sorted, floats as their
shortest round-trip repr, NaN/inf as null; no times, paths or versions, so the same protocol,
data and seed give the same bytes):

- ``schema``, ``model_version``, ``seed``, ``small_cell_k``
- ``section_order``: the sections in reading order (``report.sections``; ``sections`` itself
  is keyed, and keys are sorted)
- ``protocol``: ``name``, ``title``, ``file`` (base name), ``sha256`` (canonical form),
  ``file_sha256`` (bytes)
- ``device``: the protocol's ``device`` block
- ``verdicts``: list, in section order, of ``{id, section, kind, criterion, status, detail,
  source}`` (+ ``description`` and ``counts`` for goals); ``kind`` is ``goal`` (acceptance,
  judged on the confidence bound), ``check`` (a protocol threshold) or ``plan``
  (pre-specified, not evaluated in this release); ``status`` is ``pass``, ``fail``,
  ``insufficient data`` or ``not evaluated``; ``source`` is the protocol field
- ``verdict_counts``: ``{status: count}``
- ``findings``: list of ``{section, text}``, plain language
- ``sections``: one object per section in ``report.sections``:

  - ``representativeness``: ``n``, ``attributes``, ``intersections``, ``parameters``,
    ``reference`` (name, title, version, year, universe, source, verification, card, derived),
    tables ``shares``, ``tests``, ``smd``, ``coverage``, ``adequacy``, ``sites``,
    ``missingness`` (records with the columns of
    :class:`rwe.representativeness.RepresentativenessResult`), ``tipton`` (or null),
    ``tipton_reason``, ``notes``
  - ``subgroups``: ``settings``, tables ``table``, ``heterogeneity``, ``fairness``, ``goals``
    (columns of :class:`rwe.subgroups.SubgroupPerformanceResult`),
    ``goal_specs`` (the protocol's goals)
  - ``drift``: ``status`` ("not evaluated"), ``statement``, ``plan`` (protocol ``drift``)
  - ``change_control``: ``status``, ``statement``, ``plan`` (protocol ``change_control``),
    ``criteria`` (``step, metric, margin, alpha, candidate_version, comparator_role,
    comparator_version, subgroups, status``)
  - ``provenance``: ``protocol``, ``files`` (``role, file, protocol_path, format, sha256,
    bytes``), ``source``, ``counts``, ``period``, ``by_site_quarter`` (quarters ``2024-Q1``),
    ``missingness`` (per column role), ``missingness_threshold``, ``validation``,
    ``reference_standard``, ``not_provided`` (counts from :func:`rwe.data.provenance`)
  - ``model_card``: ``card`` (the Appendix E fields; ``null`` = not provided)

``results.json`` keeps unsuppressed aggregates (for analysts); the reviewer pages apply the
small-cell rule of :mod:`rwe.dossier._suppress`. No table holds patient rows.
"""

from __future__ import annotations

import importlib
from typing import Any

# Names are imported on first use: a section's kernel needs only start_section and its own
# helpers, not the build machinery (papermill, nbconvert, threads) or Chromium.
_EXPORTS = {
    # building
    "build_dossier": "_build", "DossierResult": "_build", "NotebookTemplateError": "_build",
    "check_template": "_build", "default_notebooks_dir": "_build", "dump_results": "_build",
    "RESULTS_SCHEMA": "_build", "MANIFEST_SCHEMA": "_build", "FAILED_SUFFIX": "_build",
    # notebooks
    "start_section": "_notebook", "SectionContext": "_notebook", "save_section": "_notebook",
    "load_section": "_notebook", "section_payload": "_payload", "data_provenance": "_payload",
    "drift_plan": "_payload", "change_control_plan": "_payload", "model_card": "_modelcard",
    "chai_xml": "_modelcard",
    # sections
    "SECTION_SPECS": "_sections", "SectionSpec": "_sections", "section_spec": "_sections",
    # rendering
    "suppress_small_cells": "_suppress", "scrub_text": "_suppress", "SUPPRESSED": "_suppress",
    # chromium
    "find_chromium": "_chromium", "print_pdf": "_chromium", "screenshot": "_chromium",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rwe.dossier' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"rwe.dossier.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
