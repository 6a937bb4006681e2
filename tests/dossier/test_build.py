"""A whole dossier of the small demo: layout, results.json, manifest, reviewer pages."""

from __future__ import annotations

import json
import os
import re
from html import escape as html_escape

import pytest

from rwe.dossier import RESULTS_SCHEMA, SECTION_SPECS, build_dossier

PAGES = ["index.html"] + [s.page for s in SECTION_SPECS]


def _html(dossier, name: str) -> str:
    return (dossier.path / name).read_text(encoding="utf-8")


def test_layout(dossier):
    d = dossier.path
    for name in PAGES + ["results.json", "manifest.json", "model-card.xml"]:
        assert (d / name).is_file(), name
    for s in SECTION_SPECS:
        assert (d / "notebooks" / s.notebook).is_file()
    pngs = sorted((d / "figures").glob("*.png"))
    assert len(pngs) >= 6 and all(p.stat().st_size > 5000 for p in pngs)
    top = {p.name for p in d.iterdir()}
    assert top == set(PAGES) | {"results.json", "manifest.json", "model-card.xml",
                                "notebooks", "figures", "dossier.pdf"} - (
        set() if dossier.pdf else {"dossier.pdf"})
    assert not list(d.parent.glob(".small.building-*"))  # no temporary directory left


def test_index_puts_verdicts_first(dossier):
    html = _html(dossier, "index.html")
    pos = [html.index(f"id='{a}'") for a in ("evaluated", "verdicts", "findings", "contents")]
    assert pos == sorted(pos)
    for s in SECTION_SPECS:
        assert f"href='{s.page}'" in html
    # every pre-specified goal and criterion is listed, with its verdict (core statuses)
    for v in dossier.results["verdicts"]:
        assert v["status"] in ("pass", "fail", "not_evaluable", "not_evaluated")
    assert html.count("class='badge ") >= len(dossier.results["verdicts"])


def test_headline_counts_equal_the_verdict_tables(dossier):
    """The chips on the index page count the same verdicts the tables below them list."""
    from rwe.dossier._sections import STATUS_LABELS

    html = _html(dossier, "index.html")
    verdicts_part = html[html.index("id='verdicts'"):html.index("id='findings'")]
    chips = {s: int(n) for s, n in re.findall(r"data-status='(\w+)'><b>(\d+)</b>",
                                              verdicts_part)}
    badges = re.findall(r"<span class='badge \w+'>([^<]+)</span>", verdicts_part)
    from_tables = {s: badges.count(label) for s, label in STATUS_LABELS.items()}
    assert chips == from_tables == dossier.verdict_counts
    assert sum(chips.values()) == len(dossier.results["verdicts"])


def test_results_schema(dossier):
    r = json.loads((dossier.path / "results.json").read_text())
    assert r == dossier.results
    assert sorted(r) == ["findings", "protocol", "schema", "sections", "verdicts"]
    assert r["schema"] == RESULTS_SCHEMA
    assert r["protocol"]["sections"] == [s.name for s in SECTION_SPECS]
    assert sorted(r["sections"]) == sorted(r["protocol"]["sections"])
    kinds = {v["kind"] for v in r["verdicts"]}
    assert kinds == {"goal", "check", "criterion"}
    goals = [v for v in r["verdicts"] if v["kind"] == "goal"]
    assert len(goals) == 3  # the demo protocol's three performance goals
    # drift and change control are listed honestly as not evaluated, never as passed
    for v in r["verdicts"]:
        if v["section"] in ("drift", "change_control"):
            assert v["status"] == "not_evaluated" and v["reason"]
    assert r["sections"]["drift"]["status"] == "not_evaluated"
    cc = r["sections"]["change_control"]["criteria"]
    assert {c["metric"] for c in cc} == {"auroc", "sensitivity"}
    # the drift plan's input tests and alert rules, and the change-control criteria
    n_plan = 1 + len(r["sections"]["drift"]["plan"]["alerts"]) + len(cc)
    assert sum(v["status"] == "not_evaluated" for v in r["verdicts"]) == n_plan
    text = (dossier.path / "results.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    # no times, durations or absolute paths of this run
    assert str(dossier.path) not in text and "duration" not in text
    assert str(dossier.path.parent) not in text


def test_results_come_from_the_typed_results(dossier):
    """Each section's record is its result's to_dict() (it round-trips through from_dict);
    the top-level verdicts and findings are the sections' own, in section order."""
    from rwe.dossier._analyses import load_result, result_findings, result_verdicts

    r = dossier.results
    verdicts, findings = [], []
    for name in r["protocol"]["sections"]:
        record = r["sections"][name]
        result = load_result(name, record)
        from rwe.dossier._analyses import analysis

        a = analysis(name)
        again = json.loads(json.dumps(a.to_dict(result), allow_nan=False, default=str))
        own = {x: v for x, v in record.items() if x not in a.extras}
        assert again == own, name
        from rwe.dossier._analyses import load_extras

        for key, extra in load_extras(name, record).items():  # Table 1 with its section
            assert json.loads(json.dumps(a.extras[key][1](extra))) == record[key]
        verdicts += [v.to_dict() for v in result_verdicts(name, result)]
        findings += [{"section": name, **f.to_dict()} for f in result_findings(name, result)]
    # reviewer versions: the same verdicts and findings, numbers of hidden cells removed
    assert [v["id"] for v in r["verdicts"]] == [v["id"] for v in verdicts]
    for top, full in zip(r["verdicts"], verdicts, strict=True):
        same = [x for x in full if x not in ("cells", "estimate", "interval")]
        assert {x: top[x] for x in same} == {x: full[x] for x in same}
        for tc, fc in zip(top["cells"], full["cells"], strict=True):
            assert tc == fc or (tc.pop("suppressed") and tc == {
                x: fc[x] for x in ("group", "level", "status")})
    assert [(f["section"], f["code"], f["subject"]) for f in r["findings"]] == [
        (f["section"], f["code"], f["subject"]) for f in findings]
    assert all(f["text"] for f in r["findings"])
    ids = [v["id"] for v in r["verdicts"]]
    assert len(set(ids)) == len(ids)


def test_results_json_matches_its_schema(dossier):
    """rwe/dossier/results.schema.json is what the generator writes from the types today,
    and the dossier's results.json is valid against it."""
    import jsonschema

    from rwe.dossier._schema import SCHEMA_PATH, schema_text

    assert SCHEMA_PATH.read_text(encoding="utf-8") == schema_text(), (
        "regenerate: python -m rwe.dossier._schema > rwe/dossier/results.schema.json")
    schema = json.loads(schema_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(dossier.results)]
    assert errors == []
    # the schema is not vacuous: a dossier word for a status, a missing key, a stray key fail
    bad = json.loads(json.dumps(dossier.results))
    bad["verdicts"][0]["status"] = "insufficient data"
    del bad["sections"]["subgroups"]["goals"][0]["bound"]
    bad["sections"]["provenance"]["counts"] = "many"
    bad["extra"] = 1
    paths = sorted({tuple(e.path)[:2] for e in validator.iter_errors(bad)})
    assert paths == [(), ("sections", "provenance"), ("sections", "subgroups"),
                     ("verdicts", 0)]


def test_manifest(dossier):
    m = dossier.manifest
    assert m["seed"] == 20261123
    assert m["protocol"]["sha256"] == dossier.results["protocol"]["sha256"]
    assert m["started_at"] <= m["finished_at"]
    assert m["dependencies"]["papermill"] and m["dependencies"]["pandas"]
    roles = {i["role"] for i in m["inputs"]}
    assert {"protocol", "evaluation data", "reference population"} <= roles
    assert all(len(i["sha256"]) == 64 for i in m["inputs"])
    outs = {o["path"]: o["sha256"] for o in m["outputs"]}
    assert "results.json" in outs and "index.html" in outs and "manifest.json" not in outs
    assert all(len(n["template_sha256"]) == 64 for n in m["notebooks"])
    assert m["git"].get("commit") or m["git"]["note"].startswith("not a git checkout")
    assert set(m["analysis_seconds"]) >= {"subgroups", "representativeness", "provenance"}
    import hashlib

    assert outs["results.json"] == hashlib.sha256(
        (dossier.path / "results.json").read_bytes()).hexdigest()


def test_results_json_is_reproducible(dossier, small_demo_protocol, tmp_path, monkeypatch):
    """Same protocol, data and seed: the same results.json, byte for byte (here without the
    PDF, into another directory, one notebook at a time). The build never changes the
    process's working directory: notebooks run on threads, and a chdir() in one moves them
    all."""
    cwd = os.getcwd()
    chdirs = []
    real_chdir = os.chdir
    monkeypatch.setattr(os, "chdir", lambda path: (chdirs.append(path), real_chdir(path)))
    again = build_dossier(small_demo_protocol, tmp_path / "again", jobs=1, pdf=False,
                          progress=False)
    assert (again.path / "results.json").read_bytes() == (
        dossier.path / "results.json").read_bytes()
    assert set(map(str, chdirs)) <= {cwd} and os.getcwd() == cwd  # papermill re-enters cwd


def test_no_patient_rows_in_html(dossier):
    ids = re.compile(r"\b(?:CT|P)\d{6}\b")
    for name in PAGES:
        html = _html(dossier, name)
        assert not ids.search(html), name
        assert "Traceback" not in html
    assert not ids.search((dossier.path / "model-card.xml").read_text())


def _cells(html: str, level: str) -> list[str]:
    """The cells of the performance-table row whose first cell is ``level``."""
    row = re.search(r"<tr><td class=[\"']txt[\"']>" + re.escape(html_escape(level, quote=False))
                    + r"</td>(.*?)</tr>", html)
    assert row, level
    return re.findall(r"<td class=[\"']num[\"']>(.*?)</td>", row.group(1))


def test_small_cells_suppressed_on_reviewer_pages(dossier):
    k = dossier.results["protocol"]["small_cell_k"]
    table = dossier.results["sections"]["subgroups"]["table"]
    small = [r for r in table if r["group"] != "overall" and 1 <= r["n"] < k]
    assert small, "the small demo has subgroup cells below k"
    html = _html(dossier, "subgroups.html")
    for r in small[:10]:
        cells = _cells(html, r["level"])
        assert "&lt;11" in cells[0]  # n shown as <11
        assert all("suppressed" in c for c in cells[2:])  # every estimate suppressed
    # a large cell is shown in full
    big = next(r for r in table if r["group"] == "sex")
    assert re.sub(r"\D", "", _cells(html, big["level"])[0]) == str(big["n"])
    # findings and figure labels never spell a small n
    for name in PAGES:
        for m in re.finditer(r"\bn\s*=\s*(\d[\d,]*)", _html(dossier, name)):
            assert not 1 <= int(m.group(1).replace(",", "")) < k, (name, m.group(0))


def test_summary_lines(dossier):
    lines = dossier.summary_lines()
    assert any(line.startswith("goals:") for line in lines)
    assert any("index.html" in line for line in lines)
    assert any("not evaluated" in line for line in lines)


@pytest.mark.parametrize("name", [s.page for s in SECTION_SPECS])
def test_section_pages_have_no_code(dossier, name):
    html = _html(dossier, name)
    assert "start_section" not in html and "ctx.show" not in html
    assert "<figure" in html or name in ("drift.html", "change_control.html",
                                         "provenance.html", "model_card.html")
    for img in re.findall(r"<img [^>]*>", html):
        assert re.search(r"""alt=["'][^"']{20,}["']""", img), img[:200]


def test_pages_escape_their_text(dossier):
    """"<0.001" and "<11" are text: written as &lt; (a raw "<" before a digit is invalid)."""
    import re

    for page in dossier.path.glob("*.html"):
        text = page.read_text()
        assert not re.search(r"<[0-9 =]", text), page.name
    assert "&lt;11" in (dossier.path / "subgroups.html").read_text()
