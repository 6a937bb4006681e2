"""Evidence dossiers: papermill orchestration of ``notebooks/``, reviewer HTML and PDF,
``results.json``, ``manifest.json`` and atomic output (DESIGN.md: rwe/dossier).

>>> from rwe.dossier import build_dossier
>>> result = build_dossier("protocols/demo.yaml", "reports/demo")      # doctest: +SKIP
>>> result.path / "index.html"                                         # doctest: +SKIP

A dossier directory holds ``index.html`` (what was evaluated, verdicts first, findings, table
of contents), one page per section, ``notebooks/`` (the executed notebooks, code kept),
``figures/`` (PNG), ``results.json``, ``model-card.xml``, ``manifest.json`` and, when headless
Chromium is installed, ``dossier.pdf``.

``results.json`` (``"schema": "rwe.dossier.results/3"``) is ``{schema, protocol, sections,
verdicts, findings}``: ``sections`` maps each section to its typed result's ``to_dict()``,
``verdicts`` and ``findings`` are the results' typed verdicts and findings; its JSON Schema is
``rwe/dossier/results.schema.json`` (generated from the types by :mod:`rwe.dossier._schema`;
reports/README.md documents it). Keys are sorted, floats are written as their shortest
round-trip repr, NaN/inf as null; no times, paths or versions, so the same protocol, data and
seed give the same bytes.
"""

from __future__ import annotations

from rwe._lazy import lazy_exports

# Names are imported on first use: a section's kernel needs only start_section and its own
# helpers, not the build machinery (papermill, nbconvert, threads) or Chromium.
_EXPORTS = {
    # building
    "build_dossier": "_build", "DossierResult": "_build", "NotebookTemplateError": "_build",
    "check_template": "_build", "default_notebooks_dir": "_build", "dump_results": "_build",
    "RESULTS_SCHEMA": "_build", "MANIFEST_SCHEMA": "_build", "FAILED_SUFFIX": "_build",
    "BuildTerminated": "_build", "remove_stale_builds": "_build",
    "results_schema": "_schema", "SCHEMA_PATH": "_schema",
    # analyses and notebooks
    "compute_section": "_analyses", "load_result": "_analyses", "ANALYSES": "_analyses",
    "start_section": "_notebook", "SectionContext": "_notebook",
    "absent_plan": "_plans", "recorded_comparison": "_plans", "PlanResult": "_plans",
    "model_card": "_modelcard", "ModelCardResult": "_modelcard", "chai_xml": "_modelcard",
    # sections
    "SECTION_SPECS": "_sections", "SectionSpec": "_sections", "section_spec": "_sections",
    "ALL_SECTION_SPECS": "_sections", "FEDERATION_SPEC": "_sections",
    "ComputedSections": "_computed",
    # rendering
    "suppress_small_cells": "_suppress", "scrub_text": "_suppress", "SUPPRESSED": "_suppress",
    # chromium
    "find_chromium": "_chromium", "print_pdf": "_chromium", "screenshot": "_chromium",
}

__all__ = list(_EXPORTS)


__getattr__, __dir__ = lazy_exports("rwe.dossier", _EXPORTS)
