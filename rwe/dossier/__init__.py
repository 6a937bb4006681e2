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
    (columns of :class:`rwe.subgroups.SubgroupReport`; ``goals`` adds ``n`` and ``events``),
    ``goal_specs`` (the protocol's goals)
  - ``drift``: ``status`` ("not evaluated"), ``statement``, ``plan`` (protocol ``drift``)
  - ``change_control``: ``status``, ``statement``, ``plan`` (protocol ``change_control``),
    ``criteria`` (``step, metric, margin, alpha, candidate_version, comparator_role,
    comparator_version, subgroups, status``)
  - ``provenance``: ``protocol``, ``files`` (``role, file, protocol_path, format, sha256,
    bytes``), ``source``, ``counts``, ``period``, ``by_site_quarter``, ``missingness`` (per
    column role), ``missingness_threshold``, ``validation``, ``reference_standard``,
    ``not_provided``
  - ``model_card``: ``card`` (the Appendix E fields; ``null`` = not provided)

``results.json`` keeps unsuppressed aggregates (for analysts); the reviewer pages apply the
small-cell rule of :mod:`rwe.dossier._suppress`. No table holds patient rows.
"""

from rwe.dossier._build import (
    FAILED_SUFFIX,
    MANIFEST_SCHEMA,
    RESULTS_SCHEMA,
    DossierResult,
    NotebookTemplateError,
    build_dossier,
    check_template,
    default_notebooks_dir,
    dump_results,
)
from rwe.dossier._chromium import find_chromium, print_pdf, screenshot
from rwe.dossier._modelcard import chai_xml, model_card
from rwe.dossier._notebook import SectionContext, load_section, save_section, start_section
from rwe.dossier._payload import change_control_plan, data_provenance, drift_plan, section_payload
from rwe.dossier._sections import SECTION_SPECS, SectionSpec, section_spec
from rwe.dossier._suppress import SUPPRESSED, scrub_text, suppress_small_cells

__all__ = [
    # building
    "build_dossier", "DossierResult", "NotebookTemplateError", "check_template",
    "default_notebooks_dir", "dump_results", "RESULTS_SCHEMA", "MANIFEST_SCHEMA",
    "FAILED_SUFFIX",
    # notebooks
    "start_section", "SectionContext", "save_section", "load_section", "section_payload",
    "data_provenance", "drift_plan", "change_control_plan", "model_card", "chai_xml",
    # sections
    "SECTION_SPECS", "SectionSpec", "section_spec",
    # rendering
    "suppress_small_cells", "scrub_text", "SUPPRESSED",
    # chromium
    "find_chromium", "print_pdf", "screenshot",
]
