"""Fixtures of the federation tests: the demo split by site through ``rwe summarize`` and
``rwe merge`` (one dossier per protocol), and the pooled-data runs they are compared with."""

from __future__ import annotations

import json

import pytest
from fed_helpers import SITES, federated_protocol

from rwe.cli import main
from rwe.federation import FederatedResult
from rwe.protocol import load_protocol
from rwe.stats.summaries import summarize


def _run_federation(d, protocol, *, pdf: bool):
    """Each protocol's sites in their own directory: a site's release log refuses a second,
    different release of the same period, whatever the protocol."""
    d = d / protocol.stem
    d.mkdir()
    files = []
    for s in SITES:
        out = d / f"{protocol.stem}-{s}.summary"
        assert main(["summarize", str(protocol), "--site", s, "--out", str(out)]) == 0
        files.append(out)
    res = d / f"{protocol.stem}-dossier"
    assert main(["merge", *map(str, files), "--protocol", str(protocol), "--out", str(res),
                 "--quiet", *([] if pdf else ["--no-pdf"])]) == 0
    return files, res


@pytest.fixture(scope="session")
def fed(tmp_path_factory):
    """Per protocol: (protocol, site files, FederatedResult read back from the dossier, the
    dossier directory). ``exact``: no disclosure control at the sites (minimum count 1), so
    the pooled results equal the pooled-data run and the dossier itself must suppress the
    small cells the sites released; ``guarded``: the protocol's minimum count (11), with the
    PDF."""
    d = tmp_path_factory.mktemp("fed")
    exact = federated_protocol(d, min_count=1, name="exact.yaml")
    guarded = federated_protocol(d, name="guarded.yaml")
    out = {}
    for proto, pdf in ((exact, False), (guarded, True)):
        files, res = _run_federation(d, proto, pdf=pdf)
        blob = json.loads((res / "results.json").read_text())
        out[proto.stem] = (load_protocol(proto), files, FederatedResult.from_results(blob), res)
    return out


@pytest.fixture(scope="session")
def rows(fed):
    """The pooled-data runs: rows (full resolution) and one summary of all rows at the
    declared resolution."""
    from rwe.drift import drift_from_protocol
    from rwe.representativeness import representativeness_from_protocol
    from rwe.subgroups import subgroup_performance_from_protocol

    p = fed["exact"][0]
    ev = p.load_data()
    declared = summarize(ev, p.summary_spec(resolution="declared"))
    return {
        "ev": ev,
        "subgroups": subgroup_performance_from_protocol(p, ev, cluster_intervals=False),
        "subgroups_declared": subgroup_performance_from_protocol(p, declared),
        "representativeness": representativeness_from_protocol(p, ev),
        "drift": drift_from_protocol(p, ev, tests=[t for t in p.drift.tests
                                                   if t != "classifier"]),
    }
