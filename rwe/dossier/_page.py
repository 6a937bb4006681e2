"""Reviewer pages: the page frame, the stylesheet, index.html and the print version."""

from __future__ import annotations

import re
from collections.abc import Sequence

from rwe._evidence import STATUSES
from rwe.dossier._format import (
    Col,
    RawHTML,
    bullet_list,
    definition_list,
    esc,
    fmt_int,
    html_table,
    verdict_detail,
)
from rwe.dossier._sections import EVIDENCE_ITEMS, SectionSpec, status_label

__all__ = ["CSS", "page", "index_body", "print_document", "FINDINGS_ON_INDEX"]

FINDINGS_ON_INDEX = 6

CSS = """
:root { --ink:#1d2330; --muted:#5b6475; --line:#d9dee7; --soft:#f4f6f9; --accent:#1f4e8c;
        --pass:#1b7f3b; --fail:#b42318; --warn:#a15c00; --grey:#667085; }
* { box-sizing: border-box; }
html { font-size: 15px; }
body { margin: 0; color: var(--ink); background: #fff;
       font-family: "Source Sans 3", "Segoe UI", Helvetica, Arial, sans-serif; line-height: 1.45; }
header.top { background: var(--accent); color: #fff; padding: .55rem 1.5rem; }
header.top .brand { font-weight: 600; font-size: 1.05rem; }
header.top nav { margin-top: .3rem; font-size: .9rem; }
header.top nav a { color: #dbe7ff; margin-right: 1rem; text-decoration: none; }
header.top nav a.here { color: #fff; font-weight: 600; border-bottom: 2px solid #fff; }
main { max-width: 1120px; margin: 0 auto; padding: 1rem 1.5rem 3rem; }
h1 { font-size: 1.7rem; margin: .6rem 0 .2rem; }
h2 { font-size: 1.3rem; margin: 2rem 0 .6rem; padding-bottom: .2rem;
     border-bottom: 1px solid var(--line); }
h3 { font-size: 1.1rem; margin: 1.4rem 0 .5rem; }
h4 { font-size: 1rem; margin: 1.1rem 0 .4rem; color: var(--accent); }
a.anchor-link { display: none; }
p.lede { color: var(--muted); margin-top: 0; }
.muted { color: var(--muted); }
code { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: .85em;
       background: var(--soft); padding: 0 .2em; border-radius: 3px; word-break: break-all; }
table.rwe, table.facts { border-collapse: collapse; margin: .5rem 0 .3rem; font-size: .9rem;
       max-width: 100%; }
table.rwe caption { caption-side: top; text-align: left; font-weight: 600; padding: .3rem 0;
       color: var(--ink); }
table.rwe th, table.rwe td { padding: .25rem .6rem; border-bottom: 1px solid var(--line);
       vertical-align: top; }
table.rwe thead th { background: var(--soft); border-bottom: 2px solid #b8c0cc;
       font-weight: 600; white-space: nowrap; }
table.rwe td.num, table.rwe th.num { text-align: right; font-variant-numeric: tabular-nums;
       white-space: nowrap; }
table.rwe td.txt, table.rwe th.txt { text-align: left; }
table.rwe tr.grp th { text-align: left; background: #eef2f8; color: var(--accent);
       font-weight: 600; padding-top: .35rem; }
table.rwe tr.total td, table.rwe tr.total th { border-top: 2px solid #b8c0cc; }
table.rwe td.low { background: #fdecea; }
table.rwe tbody tr:hover { background: #fafbfd; }
table.matrix th.txt { font-weight: 600; white-space: nowrap; }
table.verdicts td:nth-child(3) { color: var(--muted); font-size: .85rem; }
table.verdicts .desc { color: var(--muted); font-size: .82rem; margin-top: .15rem; }
table.facts th { text-align: left; font-weight: 600; padding: .2rem 1rem .2rem 0;
       vertical-align: top; white-space: nowrap; color: var(--muted); }
table.facts td { padding: .2rem 0; vertical-align: top; }
span.ci { color: var(--muted); }
span.sup { color: var(--grey); font-style: italic; }
span.flag { color: var(--warn); margin-left: .15rem; font-weight: 600; }
p.tnote { font-size: .82rem; color: var(--muted); margin: .2rem 0 1rem; max-width: 60rem; }
.badge { display: inline-block; padding: .05rem .5rem; border-radius: 999px; font-size: .8rem;
         font-weight: 600; white-space: nowrap; border: 1px solid transparent; }
.badge.pass { background: #e6f4ea; color: var(--pass); border-color: #a6d8b5; }
.badge.fail { background: #fdecea; color: var(--fail); border-color: #f2b8b5; }
.badge.insufficient { background: #fff4e0; color: var(--warn); border-color: #f5d08a; }
.badge.noteval, .badge.other { background: #eef0f3; color: var(--grey); border-color: #d0d5dd; }
.chips { display: flex; gap: .6rem; flex-wrap: wrap; margin: .6rem 0 1rem; }
.chip { border: 1px solid var(--line); border-radius: 8px; padding: .45rem .8rem;
        min-width: 8.5rem; background: var(--soft); }
.chip b { display: block; font-size: 1.4rem; line-height: 1.1; }
.chip.fail b { color: var(--fail); } .chip.pass b { color: var(--pass); }
.chip.insufficient b { color: var(--warn); } .chip.noteval b { color: var(--grey); }
.callout { border-left: 4px solid var(--grey); background: var(--soft); padding: .6rem .9rem;
           margin: .6rem 0 1rem; }
.callout.noteval { border-color: var(--grey); }
.callout.fail { border-color: var(--fail); background: #fdecea; color: var(--fail); font-size: 1.1rem; }
.callout.warn { border-color: var(--warn); background: #fdf3e6; color: var(--warn); font-size: 1.1rem; }
.callout.pass { border-color: var(--pass); background: #e9f5ec; color: var(--pass); font-size: 1.1rem; }
.notes { font-size: .85rem; color: var(--muted); }
ul.findings li, ul.plain li { margin: .2rem 0; }
ul.toc { list-style: none; padding: 0; }
ul.toc li { margin: .5rem 0; }
ul.toc .ev { color: var(--muted); font-size: .8rem; }
figure.rwe-fig { margin: 1rem 0 1.5rem; }
figure.rwe-fig img { max-width: 100%; height: auto; border: 1px solid var(--line); }
figure.rwe-fig figcaption { font-size: .85rem; color: var(--muted); max-width: 60rem;
       margin-top: .3rem; }
a.figlink { font-size: .75rem; }
details summary { cursor: pointer; color: var(--accent); font-size: .9rem; margin: .3rem 0; }
footer { max-width: 1120px; margin: 0 auto; padding: 1rem 1.5rem 2rem; color: var(--muted);
         font-size: .8rem; border-top: 1px solid var(--line); }
.jp-Cell, .cell { margin: 0; }
.jp-OutputArea-output pre, .output_text pre { white-space: pre-wrap; font-size: .8rem; }
@page { size: A4; margin: 14mm 12mm 16mm;
  @bottom-right { content: "Page " counter(page) " of " counter(pages); font-size: 8pt;
                  color: #5b6475; font-family: Helvetica, Arial, sans-serif; } }
@media print {
  html { font-size: 11px; }
  header.top { background: none; color: var(--ink); border-bottom: 2px solid var(--accent); }
  header.top nav, a.figlink, footer .nav { display: none; }
  section.print-page { break-before: page; }
  section.print-page:first-of-type { break-before: auto; }
  h1, h2, h3, h4, caption, .section-head { break-after: avoid-page; break-inside: avoid; }
  p.tnote { break-before: avoid-page; }
  table.rwe { page-break-inside: auto; } tr { page-break-inside: avoid; }
  thead { display: table-header-group; }
  figure.rwe-fig { break-inside: avoid; }
  figure.rwe-fig img { max-width: 100%; }
  details > summary { list-style: none; color: var(--ink); font-weight: 600; cursor: auto; }
  span.file { font-family: "DejaVu Sans Mono", Menlo, monospace; font-size: .85em; }
  main { max-width: none; padding: 0; }
}
"""
#: Width of the printed page's text block (A4, 12 mm margins): the width figures are
#: printed at when they are wider (rwe.dossier._notebook checks their text stays >= 7 pt).
PRINT_WIDTH_IN = (210 - 24) / 25.4


def _nav(specs: Sequence[SectionSpec], here: str | None) -> str:
    links = [("index.html", "Overview", here is None)]
    links += [(s.page, s.title, here == s.name) for s in specs]
    return "".join(f"<a href='{esc(h)}'{' class=here' if cur else ''}>{esc(t)}</a>"
                   for h, t, cur in links)


def page(*, title: str, dossier_title: str, body: str, specs: Sequence[SectionSpec],
         here: str | None, footer: str) -> str:
    """A complete, self-contained HTML page (inline stylesheet, no scripts, no network)."""
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{esc(title)} — {esc(dossier_title)}</title><style>{CSS}</style></head>\n"
        f"<body><header class='top'><div class='brand'>{esc(dossier_title)}</div>"
        f"<nav>{_nav(specs, here)}</nav></header>\n<main>\n{body}\n</main>\n"
        f"<footer>{footer}</footer></body></html>\n")


def verdict_counts(verdicts: Sequence[dict]) -> dict[str, int]:
    """Verdicts per core status (every status present, zero when none)."""
    out = dict.fromkeys(STATUSES, 0)
    for v in verdicts:
        out[v["status"]] += 1
    return out


_KIND_TITLES = {
    "goal": "Acceptance goals (pre-specified in performance.goals, judged on the confidence "
            "bound)",
    "check": "Pre-specified checks (protocol thresholds: {sections})",
    "criterion": "Pre-specified criteria ({sections})",
}


def index_body(results: dict, specs: Sequence[SectionSpec], *, k: int, built: str,
               rwe_version: str, files: dict[str, bool], pdf_note: str | None) -> str:
    """index.html: what was evaluated, verdicts first, findings, table of contents."""
    p = results["protocol"]
    dev = p["device"]
    order = p["sections"]
    # the evaluation data: the provenance section's counts, or a federated merge's (its sites)
    fed = results["sections"].get("federation")
    prov = results["sections"].get("provenance") or fed or {}
    counts = prov.get("counts") or {}
    period = prov.get("period") or {}
    by_name = {s.name: s for s in specs}
    verdicts = results["verdicts"]
    parts = [f"<h1>{esc(p['title'])}</h1>",
             f"<p class='lede'>{esc(dev['name'])} version {esc(p['version'])}"
             + (f" — {esc(dev.get('manufacturer'))}" if dev.get("manufacturer") else "")
             + f". Built {esc(built)} with rwe {esc(rwe_version)}.</p>"]

    parts.append("<h2 id='evaluated'>What was evaluated</h2>")
    parts.append(definition_list([
        ("Device", f"{dev['name']} version {p['version']}"),
        ("Intended use", dev.get("intended_use")),
        ("Intended-use population", dev.get("intended_use_population")),
        ("Evaluation data",
         (f"{fmt_int(counts.get('rows'))} rows"
          + (f", {fmt_int(counts['patients'])} patients" if "patients" in counts else "")
          + (f", {fmt_int(counts['events'])} events" if "events" in counts else "")
          + (f", {counts['sites']} sites" if "sites" in counts else "")
          + (f"; {str(period.get('first'))[:10]} to {str(period.get('last'))[:10]}"
             if period else ""))
         if counts else None),
        ("Federated evaluation", None if fed is None else RawHTML(
            f"{len(fed['sites'])} site summary file(s) of {esc(', '.join(fed['settings']['sites']))}"
            f" merged at the coordinator (aggregates only: no patient row left a site); "
            f"pooled results from the merged summaries, per-site results and between-site "
            f"heterogeneity on <a href='federation.html'>Sites and heterogeneity</a>")),
        ("Reference standard", dev.get("reference_standard")),
        ("Protocol", RawHTML(f"{esc(p['name'])} (<code>{esc(p.get('file') or '')}</code>, "
                             f"sha256 <code>{esc(p['sha256'])}</code>)")),
        ("Seed", p.get("seed")),
        ("Sections", [by_name[n].title for n in order if n in by_name]),
    ]))

    c = verdict_counts(verdicts)
    parts.append("<h2 id='verdicts'>Verdicts</h2>")
    parts.append("<div class='chips'>" + "".join(
        f"<div class='chip {cls}' data-status='{s}'><b>{c[s]}</b>{esc(status_label(s))}</div>"
        for s, cls in (("pass", "pass"), ("fail", "fail"), ("not_evaluable", "insufficient"),
                       ("not_evaluated", "noteval"))) + "</div>")
    for kind in ("goal", "check", "criterion"):
        rows = [v for v in verdicts if v["kind"] == kind]
        if not rows:
            continue
        tab = []
        for v in rows:
            spec = by_name.get(v["section"])
            link = (f"<a href='{esc(spec.page)}'>{esc(spec.title)}</a>" if spec
                    else esc(v["section"]))
            crit = esc(v["criterion"]) + (f"<div class='desc'>{esc(v['description'])}</div>"
                                          if v.get("description") else "")
            tab.append({"section": RawHTML(link), "criterion": RawHTML(crit),
                        "status": v["status"], "detail": verdict_detail(v, k)})
        parts.append(html_table(tab, [Col("Section", "section", "html"),
                                      Col("Goal or criterion", "criterion", "html"),
                                      Col("Verdict", "status", "status"),
                                      Col("Detail", "detail")],
                                caption=esc(_KIND_TITLES[kind].format(sections=", ".join(
                                    dict.fromkeys((by_name[v["section"]].title.lower()
                                                   if v["section"] in by_name
                                                   else v["section"]) for v in rows)))),
                                css="verdicts"))

    if fed is not None and fed.get("limitations"):
        parts.append("<h3 id='limitations'>Not evaluable from site summaries</h3>"
                     + bullet_list(f"{x['analysis']} ({x['source']}): {x['reason']}"
                                   for x in fed["limitations"])
                     + "<p class='tnote'>These analyses need individual rows, which stay at "
                       "the sites; a pre-specified criterion that needs them is not evaluable, "
                       "never passed.</p>")

    parts.append("<h2 id='findings'>Findings</h2>")
    for name in order:
        spec = by_name.get(name)
        items = [f for f in results["findings"] if f["section"] == name]
        if not spec or not items:
            continue
        more = len(items) - FINDINGS_ON_INDEX
        parts.append(f"<h3><a href='{esc(spec.page)}'>{esc(spec.title)}</a></h3>"
                     + bullet_list(f["text"] for f in items[:FINDINGS_ON_INDEX])
                     + (f"<p class='tnote'><a href='{esc(spec.page)}'>{more} more finding(s) "
                        "on the section page</a></p>" if more > 0 else ""))

    parts.append("<h2 id='contents'>Contents</h2><ul class='toc'>")
    for name in order:
        spec = by_name.get(name)
        if spec:
            ev = []
            if spec.evidence:
                ev.append("delivers " + ", ".join(spec.evidence))
            if spec.planned:
                ev.append("plan only: " + ", ".join(spec.planned))
            parts.append(f"<li><a href='{esc(spec.page)}'><b>{esc(spec.title)}</b></a> — "
                         f"{esc(spec.summary)} <span class='ev'>"
                         f"({esc('; '.join(ev + ['notebook']))} "
                         f"<a href='notebooks/{esc(spec.notebook)}'>{esc(spec.notebook)}</a>)"
                         "</span></li>")
    parts.append("</ul>")
    codes = [c for n in order if n in by_name for c in by_name[n].evidence + by_name[n].planned]
    if codes:
        parts.append("<h3 id='evidence'>Evidence items</h3><p class='tnote'>Codes of the "
                     "evidence checklist (REP representativeness, SUB subgroup performance, "
                     "MON monitoring, CHG change control, PRV provenance). An item marked "
                     "\"plan only\" is pre-specified in the protocol and not evaluated in this "
                     "release.</p>" + definition_list(
                         [(c, EVIDENCE_ITEMS.get(c, c)) for c in dict.fromkeys(codes)]))
    file_items = [
        ("results.json", "every number in this dossier, machine-readable"),
        ("manifest.json", "sha256 of data, protocol, notebooks and outputs; versions; seed; "
                          "start and end time"),
        ("model-card.xml", "CHAI applied model card (schema v0.2)"),
        ("dossier.pdf", "the whole dossier as one PDF"),
        ("figures/", "the figures as PNG files"),
        ("notebooks/", "the executed notebooks, with their code"),
        ("merged/", "the merged site summaries (aggregates, no rows)"),
    ]
    lis = []
    for name, what in file_items:
        if files.get(name, False):
            lis.append(f"<li><a href='{esc(name)}'><code>{esc(name)}</code></a> — {esc(what)}</li>")
        elif name == "dossier.pdf" and pdf_note:
            lis.append(f"<li><code>dossier.pdf</code> — <span class='muted'>{esc(pdf_note)}"
                       "</span></li>")
    parts.append("<h3>Files</h3><ul class='toc'>" + "".join(lis) + "</ul>")
    parts.append(f"<p class='tnote'>Reviewer pages show aggregates only. Counts from 1 to "
                 f"{k - 1} are shown as &lt;{k} and the estimates depending on them are "
                 "suppressed; results.json keeps the unsuppressed aggregates. Guidance cited as "
                 "draft (FDA AI-enabled device software functions, Jan 2025) is labelled "
                 "draft.</p>")
    return "\n".join(parts)


_HREF = re.compile(r"<a ([^>]*?)href=(['\"])([^'\"]*)\2([^>]*)>(.*?)</a>", re.S)


def _print_links(html: str, specs: Sequence[SectionSpec]) -> str:
    """Links of the print version: a page of the dossier becomes a link to its section in the
    same document (``#print-<name>``, anchors kept); a file of the dossier (results.json,
    notebooks, figures) becomes plain text naming it (a PDF filed on its own has no files next
    to it, and a link would point at the machine that built it)."""
    pages = {s.page: s.name for s in specs}
    pages["index.html"] = "index"

    def sub(m: re.Match) -> str:
        href, text = m.group(3), m.group(5)
        if href.startswith(("#", "http://", "https://", "mailto:")):
            return m.group(0)
        page, _, anchor = href.partition("#")
        if page in pages:
            target = anchor if anchor else f"print-{pages[page]}"
            return f"<a {m.group(1)}href='#{target}'{m.group(4)}>{text}</a>"
        return f"<span class='file'>{text}</span>"

    return _HREF.sub(sub, html)


def print_document(*, dossier_title: str, bodies: list[tuple[str, str]], footer: str,
                   specs: Sequence[SectionSpec] = ()) -> str:
    """All pages in one document for the PDF, one section per printed page run, with links
    between sections inside the document, no link to a file, and every collapsed list
    (``<details>``) printed open."""
    sections = "\n".join(f"<section class='print-page' id='print-{esc(name)}'>"
                         f"{_print_links(body, specs)}</section>" for name, body in bodies)
    sections = sections.replace("<details>", "<details open>")
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>{esc(dossier_title)}</title><style>{CSS}</style></head>\n"
            f"<body><header class='top'><div class='brand'>{esc(dossier_title)}</div></header>"
            f"\n<main>\n{sections}\n</main>\n<footer>{_print_links(footer, specs)}</footer>"
            "</body></html>\n")
