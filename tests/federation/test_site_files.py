"""Site summary files at the command line (issue 20, item 3): what a merge refuses, one line
and exit 2, nothing written; the differencing guard of ``rwe summarize``."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from fed_helpers import SITES, federated_protocol

from rwe.cli import main
from rwe.federation import SiteSummary, load_site_summary, merge_sites
from rwe.federation._site import SITE_SCHEMA
from rwe.protocol import load_protocol


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A 6,000-scan demo, its federated protocol and one summary per site."""
    from rwe.datasets import write_demo

    d = tmp_path_factory.mktemp("sites")
    paths = write_demo(d, n_scans=6000, n_training=1500)
    proto = federated_protocol(d, data=paths["scans"], training=paths["training"],
                               score_bins=50)
    files = {}
    for s in SITES:
        files[s] = d / f"{s}.summary"
        assert main(["summarize", str(proto), "--site", s, "--out", str(files[s])]) == 0
    return d, proto, files


def _refused(capsys, argv, out: Path | None = None) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rwe: error: "), err
    if out is not None:
        assert not out.exists()  # nothing merged partially, nothing written
    return err[0][len("rwe: error: "):]


def _merge(proto, files, out):
    return ["merge", *map(str, files), "--protocol", str(proto), "--out", str(out), "--quiet",
            "--no-pdf"]


def _rewrite(src: Path, dst: Path, **changes) -> Path:
    """A well-formed file (valid checksums) that differs in ``changes`` (SiteSummary fields or
    a function of the views)."""
    s = load_site_summary(src)
    views = changes.pop("views", None)
    if views is not None:
        s = replace(s, views={k: views(v) for k, v in s.views.items()})
    s = replace(s, **changes)
    s.save(dst)
    return dst


def test_the_four_sites_merge(small, tmp_path, capsys):
    d, proto, files = small
    out = tmp_path / "res"
    assert main(_merge(proto, files.values(), out)) == 0
    said = capsys.readouterr().out
    assert "merged 4 site summaries (S1, S2, S3, S4): 6,000 rows" in said
    assert f"dossier written to {out}" in said and f"open    {out / 'index.html'}" in said
    assert (out / "index.html").is_file() and (out / "federation.html").is_file()
    first = (out / "results.json").read_bytes()
    # an existing dossier is kept without --force (refused before anything is merged),
    # replaced with it: the same files give the same results.json, byte for byte
    msg = _refused(capsys, _merge(proto, files.values(), out))
    assert msg == f"{out}: a dossier already exists there; pass --force to replace it"
    assert (out / "results.json").read_bytes() == first
    assert main([*_merge(proto, files.values(), out), "--force"]) == 0
    assert (out / "results.json").read_bytes() == first
    other = tmp_path / "thesis"
    other.mkdir()
    (other / "chapter1.md").write_text("keep me")
    msg = _refused(capsys, [*_merge(proto, files.values(), other), "--force"])
    assert msg == (f"{other}: exists and is not an rwe dossier (no manifest.json or "
                   "index.html); refusing to replace it, even with --force")
    assert (other / "chapter1.md").read_text() == "keep me"
    # nothing of a build is left next to the outputs
    assert sorted(x.name for x in tmp_path.iterdir()) == ["res", "thesis"]


def test_a_truncated_file_is_refused(small, tmp_path, capsys):
    d, proto, files = small
    bad = tmp_path / "S4.summary"
    bad.write_bytes(files["S4"].read_bytes()[:20_000])
    msg = _refused(capsys, _merge(proto, [files["S1"], bad], tmp_path / "o"), tmp_path / "o")
    assert msg == (f"{bad}: not a readable site summary (JSONDecodeError: the file is truncated "
                   "or is not JSON)")


@pytest.mark.parametrize("layout", ["compact", "indented"])
@pytest.mark.parametrize("edit", ["a count", "the disclosure record", "the checksum"])
def test_an_edited_file_is_refused(small, tmp_path, capsys, edit, layout):
    """Edited in the layout ``save`` writes (whose views are checked on the text) or
    rewritten in another (checked on the parsed content): refused the same way."""
    d, proto, files = small
    blob = json.loads(files["S2"].read_text())
    if edit == "a count":
        blob["views"]["cohort"]["n"][0] += 1
        want = "view 'cohort': summary checksum mismatch: the file is truncated or was edited"
    elif edit == "the disclosure record":
        blob["disclosure"]["cohort"]["min_count"] = 1
        want = "site summary checksum mismatch: the file is truncated or was edited"
    else:
        blob["checksum"] = "0" * 64
        want = "site summary checksum mismatch: the file is truncated or was edited"
    bad = tmp_path / "S2.summary"
    bad.write_text(json.dumps(blob, separators=(",", ":"), ensure_ascii=False)
                   if layout == "compact" else json.dumps(blob, indent=1))
    msg = _refused(capsys, _merge(proto, [files["S1"], bad], tmp_path / "o"), tmp_path / "o")
    assert msg == f"{bad}: {want}"


def test_another_protocol_is_refused(small, tmp_path, capsys):
    d, proto, files = small
    other = federated_protocol(tmp_path, data=d / "demo.parquet",
                               training=d / "training_snapshot.parquet", score_bins=50,
                               extra="# a comment does not change the protocol\n")
    assert load_protocol(other).sha256 == load_protocol(proto).sha256
    text = other.read_text().replace("min_n: 30", "min_n: 40")
    other.write_text(text)
    p2 = load_protocol(other)
    msg = _refused(capsys, _merge(other, files.values(), tmp_path / "o"), tmp_path / "o")
    assert msg.startswith(f"{files['S1']}: made for another protocol (sha256 ")
    assert p2.sha256[:16] in msg


def test_another_resolution_is_refused(small, tmp_path, capsys):
    d, proto, files = small
    bad = _rewrite(files["S3"], tmp_path / "S3.summary",
                   views=lambda v: v.coarsen(25, thresholds=[0.15]))
    msg = _refused(capsys, _merge(proto, [files["S1"], bad], tmp_path / "o"), tmp_path / "o")
    assert msg == (f"{bad}: view 'cohort', version '1.0': score bins differ from the protocol's "
                   "declared resolution (26 bins vs 51 from federation.score_bins and the "
                   "threshold)")


def test_other_schema_versions_are_refused(small, tmp_path, capsys):
    d, proto, files = small
    bad = _rewrite(files["S3"], tmp_path / "S3.summary",
                   views=lambda v: replace(v, schema="rwe.summary/3"))
    msg = _refused(capsys, _merge(proto, [files["S1"], bad], tmp_path / "o"), tmp_path / "o")
    assert msg == (f"{bad}: view 'cohort': not an rwe summary (schema 'rwe.summary/3', "
                   "expected 'rwe.summary/2')")
    blob = json.loads(files["S3"].read_text())
    blob["schema"] = "rwe.site-summary/3"
    bad.write_text(json.dumps(blob))
    msg = _refused(capsys, _merge(proto, [files["S1"], bad], tmp_path / "o"), tmp_path / "o")
    assert msg == (f"{bad}: not an rwe site summary (schema 'rwe.site-summary/3', expected "
                   f"{SITE_SCHEMA!r})")


def test_a_site_given_twice_is_refused(small, tmp_path, capsys):
    d, proto, files = small
    copy = tmp_path / "S1-again.summary"
    copy.write_bytes(files["S1"].read_bytes())
    msg = _refused(capsys, _merge(proto, [files["S1"], files["S2"], copy], tmp_path / "o"),
                   tmp_path / "o")
    assert msg == (f"{copy}: site 'S1' is given twice ({files['S1']} covers an overlapping "
                   "period): a site may be merged only once per period")
    msg = _refused(capsys, _merge(proto, [files["S1"], files["S1"]], tmp_path / "o"))
    assert msg == f"{files['S1']}: the same file is given twice"
    renamed = _rewrite(files["S2"], tmp_path / "S9.summary", site="S9")
    msg = _refused(capsys, _merge(proto, [files["S1"], renamed], tmp_path / "o"))
    assert msg == (f"{renamed}: site 'S9' is not listed in federation.sites (S1, S2, S3, S4)")


def test_the_differencing_guard(small, tmp_path, capsys):
    d, proto, files = small
    log = tmp_path / "releases.jsonl"
    a, b, c = (tmp_path / f"{x}.summary" for x in "abc")
    base = ["summarize", str(proto), "--site", "S1", "--release-log", str(log)]
    assert main([*base, "--out", str(a), "--period", "2024-01-01", "2024-12-31"]) == 0
    # re-sending the identical release is allowed (and not logged twice)
    assert main([*base, "--out", str(a), "--period", "2024-01-01", "2024-12-31", "--force"]) == 0
    assert "identical to an earlier release" in capsys.readouterr().out
    assert len(log.read_text().splitlines()) == 1
    # an overlapping, different period is refused; nothing is written
    msg = _refused(capsys, [*base, "--out", str(b), "--period", "2024-06-01", "2025-06-30"], b)
    assert msg.startswith(f"{b}: differencing guard: site 'S1' already released ")
    assert "overlapping period" in msg
    # the next period is a new release, and the two periods of a site merge
    assert main([*base, "--out", str(c), "--period", "2025-01-01", "2025-12-31"]) == 0
    res = merge_sites(proto, [a, c, files["S2"]])
    assert res.settings["sites"] == ["S1", "S2"]
    assert sorted(s["source"] for s in res.sites) == [
        "S1 2024-01-01..2024-12-31", "S1 2025-01-01..2025-12-31", "S2"]
    n_s1 = sum(s["rows"] for s in res.sites if s["site"] == "S1")
    assert res.per_site["S1"]["subgroups"].settings["n"] == n_s1
    assert res.period == {"first": "2024-01", "last": "2025-12-31"}
    # and a release of the whole period now overlaps both
    whole = tmp_path / "whole.summary"
    _refused(capsys, [*base, "--out", str(whole)], whole)


def _earlier_version_file(src: Path, dst: Path) -> Path:
    """``src`` as rwe wrote it before 2026-12-02: schemas /1, each view's checksum over its
    sorted-key JSON, the file in member order with ASCII escapes."""
    import hashlib

    from rwe._results import canonical_json
    from rwe.federation._site import _site_checksum

    blob = json.loads(src.read_text())
    blob["schema"] = "rwe.site-summary/1"
    for v in blob["views"].values():
        v["schema"] = "rwe.summary/1"
        body = {x: y for x, y in v.items() if x != "checksum"}
        v["checksum"] = hashlib.sha256(canonical_json(body).encode()).hexdigest()
    blob["checksum"] = _site_checksum(blob)
    dst.write_text(json.dumps(blob, separators=(",", ":")))
    return dst


def test_a_file_of_an_earlier_version_merges(small, tmp_path, capsys):
    """Site files of schema rwe.site-summary/1 (written before 2026-12-02) are read, checked
    on their content, and merge with files of this version into the same results."""
    d, proto, files = small
    old = _earlier_version_file(files["S2"], tmp_path / "S2.summary")
    a, b = load_site_summary(old), load_site_summary(files["S2"])
    assert a.to_dict()["views"] == b.to_dict()["views"]
    assert a.checksum == json.loads(old.read_text())["checksum"] != b.checksum
    res_old = merge_sites(proto, [files["S1"], old])
    res_new = merge_sites(proto, [files["S1"], files["S2"]])
    for name in res_new.merged:
        assert res_old.merged[name].to_dict() == res_new.merged[name].to_dict()
    # rwe summarize --force recognizes it as a site summary it may replace
    assert main(["summarize", str(proto), "--site", "S2", "--out", str(old), "--force",
                 "--release-log", str(tmp_path / "log.jsonl")]) == 0
    assert json.loads(old.read_text())["schema"] == SITE_SCHEMA


def test_a_release_logged_by_an_earlier_version_is_recognized(small, tmp_path, capsys):
    """Versions before 2026-12-02 stated view checksums over sorted-key JSON: re-sending the
    identical release against such a log entry is recognized as identical, and a different
    release of an overlapping period is still refused."""
    d, proto, files = small
    s = load_site_summary(files["S1"])
    old = json.loads(_earlier_version_file(files["S1"], tmp_path / "old.summary")
                     .read_text())["checksum"]
    assert old != s.checksum and old == s.earlier_checksum()
    log = tmp_path / "releases.jsonl"
    log.write_text(json.dumps({"site": "S1", "period": None, "checksum": old,
                               "protocol_sha256": s.protocol_sha256, "file": "S1.summary"})
                   + "\n")
    base = ["summarize", str(proto), "--site", "S1", "--release-log", str(log)]
    assert main([*base, "--out", str(tmp_path / "again.summary")]) == 0
    assert "identical to an earlier release" in capsys.readouterr().out
    assert len(log.read_text().splitlines()) == 1
    msg = _refused(capsys, [*base, "--out", str(tmp_path / "part.summary"), "--period",
                            "2024-06-01", "2025-06-30"], tmp_path / "part.summary")
    assert "differencing guard" in msg


def test_summarize_refuses_what_it_cannot_release(small, tmp_path, capsys):
    d, proto, files = small
    out = tmp_path / "x.summary"
    msg = _refused(capsys, ["summarize", str(proto), "--site", "S7", "--out", str(out)], out)
    assert msg.endswith("federation.sites: site 'S7' is not listed (sites: S1, S2, S3, S4)")
    (tmp_path / "notes.txt").write_text("keep me")
    msg = _refused(capsys, ["summarize", str(proto), "--site", "S1", "--out",
                            str(tmp_path / "notes.txt"), "--force"])
    assert msg == f"{tmp_path / 'notes.txt'}: exists and is not an rwe site summary; nothing was " \
                  "replaced"
    msg = _refused(capsys, ["summarize", str(proto), "--site", "S1", "--out", str(out),
                            "--period", "2030-01-01", "2030-12-31"], out)
    assert msg == "demo.parquet: no row of site 'S1' in the period 2030-01-01 to 2030-12-31"


def test_a_site_file_round_trips_and_states_its_rule(small):
    d, proto, files = small
    s = load_site_summary(files["S1"])
    assert isinstance(s, SiteSummary) and s.site == "S1" and sorted(s.views) == ["cohort",
                                                                                  "drift"]
    assert s.period == ["2024-01", "2025-12"]
    rec = s.disclosure["cohort"]
    assert rec["min_count"] == 11 and "complementary" in rec["rule"]
    assert s.views["cohort"].sources[0]["disclosure"] == rec
    again = s.to_dict()
    assert again == json.loads(files["S1"].read_text())


def test_a_site_file_is_checked_on_its_text(small, tmp_path, monkeypatch):
    """``rwe summarize`` writes compact text, so a merge checks each view's checksum on the
    file's text instead of writing the view's numbers again; the same content in another
    layout is checked on the parsed views, and reads the same."""
    import rwe.stats.summaries as summaries
    from rwe.federation._site import _checked_views

    d, proto, files = small
    text = files["S3"].read_text()
    content, checked = _checked_views(text)
    assert content == json.loads(text) and checked == {"cohort", "drift"}
    calls = []
    real = summaries._checksum
    monkeypatch.setattr(summaries, "_checksum", lambda b: calls.append(1) or real(b))
    fast = load_site_summary(files["S3"])
    assert calls == [] and fast.checksum == content["checksum"]
    other = tmp_path / "S3.summary"
    other.write_text(json.dumps(content, indent=1))
    assert _checked_views(other.read_text())[1] == set()
    slow = load_site_summary(other)
    assert len(calls) == 2  # one per view
    assert slow.to_dict() == fast.to_dict() == content
    # the checksum a loaded file stated is not carried to a changed copy
    changed = replace(fast, site="S9")
    assert changed.checksum != fast.checksum == content["checksum"]
