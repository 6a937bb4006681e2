"""The dossier of a federated merge (issue 20, item 2): ``rwe merge`` on the demo split by site
builds one dossier with the verdicts first, the pooled sections, per-site results, the
meta-analysis, the disclosure rule of each site, provenance and limitations; its numbers are
the merged summaries' analyses and the FederatedResult's; no small cell reaches a reviewer."""

from __future__ import annotations

import hashlib
import json
import re
from html import unescape
from html.parser import HTMLParser

import pandas as pd
import pytest
from fed_helpers import SITES
from numpy.testing import assert_allclose
from privacy_checks import check_rule, derived_cells

from rwe.dossier import RESULTS_SCHEMA, find_chromium
from rwe.dossier._format import fmt_ci, fmt_pct
from rwe.federation import FederatedResult, load_site_summary, merge_sites
from rwe.stats.summaries import Summary

PAGES = ["index.html", "representativeness.html", "subgroups.html", "federation.html",
         "drift.html"]


class _Tables(HTMLParser):
    """Every ``<table>`` of a page: its caption, header labels and rows of cell texts."""

    def __init__(self):
        super().__init__()
        self.tables: list[dict] = []
        self._cell: list[str] | None = None
        self._row: list[str] | None = None
        self._where = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append({"caption": "", "head": [], "rows": []})
        elif not self.tables:
            return
        elif tag in ("thead", "tbody"):
            self._where = tag
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "caption":
            self._cell = []
        elif tag == "br" and self._cell is not None:
            self._cell.append(" ")

    def handle_endtag(self, tag):
        if not self.tables:
            return
        t = self.tables[-1]
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "caption" and self._cell is not None:
            t["caption"] = " ".join("".join(self._cell).split())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            (t["head"] if self._where == "thead" else t["rows"]).append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _tables(html: str) -> list[dict]:
    p = _Tables()
    p.feed(html)
    return p.tables


def _text(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


@pytest.fixture(scope="module")
def exact(fed):
    p, files, res, out = fed["exact"]
    return p, files, res, out, json.loads((out / "results.json").read_text())


def test_the_dossier_holds_its_pages_and_aggregates_only(fed):
    p, files, res, out = fed["exact"]
    ev = p.load_data()
    assert "<a href='merged/'><code>merged/</code></a>" in (out / "index.html").read_text()
    names = sorted(x.name for x in out.iterdir())
    assert names == sorted(["drift.html", "federation.html", "figures", "index.html",
                            "manifest.json", "merged", "notebooks", "representativeness.html",
                            "results.json", "subgroups.html"])
    assert sorted(x.name for x in (out / "notebooks").iterdir()) == [
        "01_representativeness.ipynb", "02_subgroups.ipynb", "03_drift.ipynb",
        "07_federation.ipynb"]
    # provenance: the protocol and every site file, hashed from their bytes, with the
    # checksum each file states
    man = json.loads((out / "manifest.json").read_text())
    assert man["schema"] == "rwe.dossier.manifest/2"
    assert man["protocol"]["sha256"] == p.sha256
    sites = [i for i in man["inputs"] if i["role"] == "site summary"]
    assert [i["site"] for i in sites] == list(SITES)
    for i, f in zip(sites, files, strict=True):
        assert i["sha256"] == hashlib.sha256(f.read_bytes()).hexdigest()
        assert i["checksum"] == load_site_summary(f).checksum
    assert {i["role"] for i in man["inputs"]} == {"protocol", "site summary",
                                                  "reference population",
                                                  "drift reference rows"}
    # the merged summaries are in the dossier and are the pooled data (counts exact)
    merged = Summary.load(out / "merged" / "cohort.summary")
    assert merged.n_rows == 100_000 and merged.n_events == int(ev.y_true.sum())
    # no identifier and no time stamp of a row anywhere in the dossier
    ev = ev.frame
    ids = [str(x) for x in ev["scan_id"].iloc[[0, 1, 500, 99_999]]] + [
        str(x) for x in ev["patient_id"].iloc[[0, 4321]]] + [
        str(t) for t in ev["scan_date"].iloc[[0, 77, 99_999]]]
    for f in out.rglob("*"):
        if f.is_file() and f.suffix in (".html", ".json", ".ipynb", ".summary"):
            raw = f.read_text(encoding="utf-8")
            for ident in ids:
                assert ident not in raw, (f.name, ident)


def test_results_json_is_a_valid_dossier_and_its_federation_the_merge(exact):
    import jsonschema

    from rwe.dossier._schema import results_schema

    p, files, res, out, blob = exact
    assert blob["schema"] == RESULTS_SCHEMA
    assert blob["protocol"]["sections"] == ["representativeness", "subgroups", "federation",
                                            "drift"]
    jsonschema.validate(blob, results_schema())
    fed = blob["sections"]["federation"]
    assert set(fed["per_site"]) == set(SITES)
    assert fed["counts"] == {"rows": 100_000, "events": res.settings["events"], "sites": 4}
    # the same files merged through the library: the same meta-analysis and site estimates
    again = merge_sites(p, files)
    pd.testing.assert_frame_equal(res.meta, again.meta)
    pd.testing.assert_frame_equal(res.site_estimates, again.site_estimates)
    assert res.limitations == again.limitations
    back = FederatedResult.from_results(blob)
    assert set(back.sections) == {"representativeness", "subgroups", "drift"}
    assert [v.id for v in back.verdicts] == [v.id for v in again.verdicts]
    # each site's interval and weight are the meta-analysis' own (its study rows)
    for m, r in again.meta_results.items():
        study = r.to_frame().set_index("study")
        est = res.site_estimates[res.site_estimates["metric"] == m].set_index("site")
        assert_allclose(est["weight"], study.loc[est.index, "weight"], rtol=1e-12)
        if m == "auroc":
            assert_allclose(est["ci_low"], study.loc[est.index, "ci_low"], rtol=1e-12)


def test_the_pooled_numbers_shown_are_the_merged_summaries_analysis(exact):
    from rwe.subgroups import subgroup_performance_from_protocol

    p, files, res, out, blob = exact
    merged = Summary.load(out / "merged" / "cohort.summary")
    want = subgroup_performance_from_protocol(p, merged).table
    got = pd.DataFrame(blob["sections"]["subgroups"]["table"])
    key = ["metric", "group", "level"]
    a = want.set_index(key).sort_index()
    b = got.set_index(key).sort_index()
    assert (a.index == b.index).all()
    for col in ("n", "events", "estimate", "ci_low", "ci_high", "binning_bound"):
        assert_allclose(b[col].to_numpy(float), a[col].to_numpy(float), rtol=1e-12,
                        equal_nan=True, err_msg=col)
    overall = a.xs(("overall", "all"), level=("group", "level"))
    sub = (out / "subgroups.html").read_text()
    fed = (out / "federation.html").read_text()
    meta = {t["caption"]: t for t in _tables(fed)}[
        "Between-site heterogeneity: random-effects meta-analysis of the site estimates"]
    for m, r in overall.iterrows():
        shown = _text(fmt_ci(r["estimate"], r["ci_low"], r["ci_high"]))
        assert shown in _text(sub), m  # the subgroup page's overall table
    # the meta-analysis table's pooled column is that analysis, AUROC with its DeLong
    # interval from the merged histograms
    for row in meta["rows"]:
        m = {"Sensitivity": "sensitivity", "Specificity": "specificity", "PPV": "ppv",
             "NPV": "npv", "AUROC": "auroc"}[row[0]]
        r = overall.loc[m]
        assert row[2] == _text(fmt_ci(r["estimate"], r["ci_low"], r["ci_high"]))
    assert overall.loc["auroc", "ci_method"] == "delong-logit-t-binned"


def test_the_meta_analysis_shown_is_the_federated_result(exact):
    p, files, res, out, blob = exact
    fed = (out / "federation.html").read_text()
    tables = {t["caption"]: t for t in _tables(fed)}
    meta = tables["Between-site heterogeneity: random-effects meta-analysis of the site "
                  "estimates"]
    assert [r[0] for r in meta["rows"]] == ["Sensitivity", "Specificity", "PPV", "NPV",
                                            "AUROC"]
    for row, r in zip(meta["rows"], res.meta.to_dict("records"), strict=True):
        assert row[1] == str(r["k"]) == "4"
        assert row[3] == _text(fmt_ci(r["re_estimate"], r["re_ci_low"], r["re_ci_high"]))
        assert row[4] == f"{r['prediction_low']:.3f}\u2013{r['prediction_high']:.3f}"
        assert row[5] == f"{r['tau2']:.3g}"
        assert row[6] == f"{r['q']:.2f} ({int(r['df'])})"
        assert row[8] == fmt_pct(r["i2"])
    # one forest plot per meta-analysed metric, drawn and linked
    for m in res.meta["metric"]:
        png = out / "figures" / f"federation-forest-{m}.png"
        assert png.is_file() and png.stat().st_size > 10_000
        assert f"figures/{png.name}" in fed
    # each site's estimate as meta-analysed
    est = tables["Site estimates as meta-analysed, with each site's weight"]
    assert [r[0] for r in est["rows"]] == list(SITES)
    s1 = res.site_estimates[(res.site_estimates["site"] == "S1")
                            & (res.site_estimates["metric"] == "sensitivity")].iloc[0]
    assert est["rows"][0][3] == (_text(fmt_ci(s1["estimate"], s1["ci_low"], s1["ci_high"]))
                                 + f" weight {fmt_pct(s1['weight'])}")
    # the demo's heterogeneity, in words: specificity differs between sites, AUROC does not
    text = _text(fed)
    assert "specificity differs between sites (Cochran Q = " in text
    assert "auroc differs between sites" not in text


def test_verdicts_first_and_the_headline_counts_the_tables(exact):
    from rwe.dossier._page import verdict_counts

    p, files, res, out, blob = exact
    index = (out / "index.html").read_text()
    assert index.index("id='verdicts'") < index.index("id='findings'")
    chips = {s: int(n) for s, n in re.findall(
        r"<div class='chip [a-z]+' data-status='([a-z_]+)'><b>(\d+)</b>", index)}
    verdict_rows = [r for t in _tables(index) for r in t["rows"]
                    if t["caption"].startswith(("Acceptance goals", "Pre-specified checks"))]
    shown = {s: 0 for s in chips}
    words = {"pass": "pass", "fail": "fail", "not evaluable": "not_evaluable",
             "not evaluated": "not_evaluated"}
    for r in verdict_rows:
        shown[words[r[2]]] += 1
    assert chips == shown == verdict_counts(blob["verdicts"])
    # the pooled sections' typed verdicts, each in its section (the federation judges none)
    assert [v["id"] for v in blob["verdicts"]] == [v.id for v in res.verdicts]
    assert len(verdict_rows) == len(res.verdicts) >= 20
    assert sum(chips.values()) == len(blob["verdicts"])
    goals = [v for v in blob["verdicts"] if v["kind"] == "goal"]
    assert [v["id"] for v in goals] == [g.id for g in res.sections["subgroups"].verdicts]
    # what needs rows is never a pass
    by = {v["id"]: v for v in blob["verdicts"]}
    clf = [v for v in by.values() if ".classifier." in v["id"]]
    assert [v["status"] for v in clf] == ["not_evaluable"]
    assert "needs rows" in clf[0]["reason"]
    # the limitations are on the index, after the verdicts
    lim = index.index("Not evaluable from site summaries")
    assert index.index("id='verdicts'") < lim < index.index("id='findings'")
    for x in res.limitations:
        assert x["analysis"] in _text(index)
    assert {x["analysis"].split(" (")[0] for x in res.limitations} >= {
        "patient-clustered intervals", "Tipton's generalizability index",
        "domain-classifier drift test", "Table 1", "change control"}


def test_per_site_goals_are_the_pooled_verdicts_site_cells(exact):
    """With site a subgroup attribute, a goal whose scope includes subgroups judges each
    site's overall cell among the pooled verdicts (the cell ``site = S``): the per-site table
    shows that verdict and bound; a goal on the overall cell only shows the sites' bounds
    without a verdict."""
    p, files, res, out, blob = exact
    fed = (out / "federation.html").read_text()
    table = {t["caption"]: t for t in _tables(fed)}[
        "Pre-specified goals on each site's overall cell (the confidence bound judged, and the "
        "verdict where the protocol asks for one)"]
    goals = res.sections["subgroups"].goals
    words = ("pass", "fail", "not evaluable", "not evaluated")
    ids = list(dict.fromkeys(goals["goal_id"]))
    assert len(table["rows"]) == len(ids) == 3
    for row, g in zip(table["rows"], ids, strict=True):
        scope = goals.loc[goals["goal_id"] == g, "scope"].iloc[0]
        for site, cell in zip(SITES, row[1:-1], strict=True):
            own = res.per_site[site]["subgroups"].goals
            own = own[(own["goal_id"] == g) & (own["group"] == "overall")].iloc[0]
            if scope == "overall":
                assert row[-1] == "no (for information)"
                assert not cell.startswith(words) and cell == f"{own['bound']:.3f}"
                continue
            pooled = goals[(goals["goal_id"] == g) & (goals["group"] == "site")
                           & (goals["level"] == site)].iloc[0]
            assert pooled["bound"] == own["bound"] and pooled["status"] == own["status"]
            word = {"pass": "pass", "fail": "fail"}.get(pooled["status"], "not evaluable")
            assert cell == f"{word} {pooled['bound']:.3f}", (g, site, cell)
            assert row[-1] == "yes, among the pooled verdicts"


def test_no_small_cell_reaches_a_reviewer(exact):
    """Without disclosure control at the sites (minimum count 1), the sites' files hold small
    cells: the dossier's plan hides them (and enough others) in the pooled and the per-site
    tables, and no page shows a count from 1 to k-1."""
    from rwe.dossier._analyses import load_result
    from rwe.dossier._privacy import plan_from_results, site_cell

    p, files, res, out, blob = exact
    k = p.report.small_cell_k
    secs = blob["sections"]
    typed = {n: load_result(n, secs[n]) for n in ("subgroups", "representativeness",
                                                  "federation")}
    plan = plan_from_results(p, typed)
    cells = derived_cells(secs["subgroups"])
    per_site_small = 0
    for site, r in secs["federation"]["per_site"].items():
        site_cells = derived_cells(
            r["subgroups"], key_of=lambda g, lv, s=site: site_cell("site", s, g, lv),
            keep=lambda row: row["n_attributes"] <= 1 and row["group"] != "site")
        per_site_small += sum(1 for c in site_cells.values()
                              if any(1 <= v < k for v in c.values()))
        cells.update(site_cells)
    assert per_site_small > 0  # the records (for analysts) hold small counts of the sites
    assert check_rule(cells, plan, k) == []
    hidden = [(g, lv) for g, lv in plan.hidden_levels() if g.startswith("site x ")]
    assert hidden
    # no count of 1..k-1 in a count column of any reviewer table
    counts = {"n", "events", "rows", "patients", "positives", "missing"}
    for name in PAGES:
        for t in _tables((out / name).read_text()):
            head = [h.lower() for h in (t["head"][0] if t["head"] else [])]
            cols = [i for i, h in enumerate(head) if h in counts]
            for r in t["rows"]:
                for i in cols:
                    if i < len(r) and re.fullmatch(r"[\d,]+", r[i]):
                        v = int(r[i].replace(",", ""))
                        assert v == 0 or v >= k, (name, t["caption"], r)
    # a hidden cell of a site shows no estimate in that site's subgroup table
    fed = (out / "federation.html").read_text()
    blocks = dict(re.findall(r"<details><summary>(S\d): performance by subgroup.*?</summary>"
                             r"(.*?)</details>", fed, re.S))
    assert sorted(blocks) == list(SITES)
    for g, lv in hidden:
        site, level = lv.split(" & ", 1)
        for t in _tables(blocks[site]):
            for r in t["rows"]:
                if r and r[0] == level:
                    assert not any(re.search(r"\d\.\d{3}", c) for c in r[1:]), (g, lv, r)


@pytest.mark.browser
@pytest.mark.skipif(find_chromium() is None, reason="headless Chromium not installed "
                    "(Debian: apt-get install chromium)")
@pytest.mark.parametrize("name", PAGES)
def test_the_guarded_dossier_renders_in_chromium(fed, name, tmp_path):
    import shutil

    from browser_checks import check_page

    out = fed["guarded"][3]
    site = tmp_path / "dossier"
    shutil.copytree(out, site)
    images = check_page(site, name, tmp_path)
    if name == "federation.html":
        assert images == len(fed["guarded"][2].meta)  # a forest plot per metric


@pytest.mark.browser
@pytest.mark.skipif(find_chromium() is None, reason="headless Chromium not installed "
                    "(Debian: apt-get install chromium)")
def test_the_guarded_dossier_pdf_holds_the_sites_section(fed):
    from pypdf import PdfReader

    out = fed["guarded"][3]
    pdf = PdfReader(str(out / "dossier.pdf"))
    assert "/print-federation" in pdf.named_destinations
    text = "\n".join(pg.extract_text() for pg in pdf.pages)
    assert "Sites and heterogeneity" in text and "Disclosure control at the sites" in text
    assert str(out.parent) not in text
