"""Protocols: the YAML study plan, written before the data are seen (DESIGN.md principle 5).

>>> from rwe.protocol import load_protocol
>>> protocol = load_protocol("protocols/demo.yaml")     # doctest: +SKIP
>>> evset = protocol.load_data()                        # doctest: +SKIP
"""

from rwe.exceptions import ProtocolError
from rwe.protocol._load import canonical_sha256, load_protocol, protocol_from_dict
from rwe.protocol._preflight import check_inputs
from rwe.protocol._schema import (
    SECTIONS,
    AgeBandSpec,
    AlertRule,
    ChangeControlSpec,
    ColumnsSpec,
    DaskSpec,
    DataSpec,
    DeviceSpec,
    DriftSpec,
    FederationSpec,
    Goal,
    OMOPSourceSpec,
    PerformanceSpec,
    Period,
    PopulationSpec,
    Protocol,
    ReportSpec,
    SQLSourceSpec,
    SubgroupsSpec,
    WindowSpec,
)

__all__ = [
    "SECTIONS", "AgeBandSpec", "AlertRule", "ChangeControlSpec", "ColumnsSpec", "DataSpec",
    "DeviceSpec", "DriftSpec", "FederationSpec", "Goal", "PerformanceSpec", "Period", "PopulationSpec", "Protocol",
    "ProtocolError", "ReportSpec", "SubgroupsSpec", "WindowSpec", "canonical_sha256",
    "check_inputs", "OMOPSourceSpec", "SQLSourceSpec", "DaskSpec",
    "load_protocol", "protocol_from_dict",
]
