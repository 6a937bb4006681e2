"""Misuse of the Python API: an rwe exception (an :class:`RWEError` subclass) with a one-line
message naming the argument, what was expected and what was given; never a bare TypeError."""

from __future__ import annotations

import pandas as pd
import pytest

from rwe.data import ColumnRoles, EvaluationSet
from rwe.exceptions import InvalidParameterError, ProtocolError, RWEError
from rwe.protocol import load_protocol, protocol_from_dict

FRAME = pd.DataFrame({"id": ["a", "b", "c", "d"], "s": [0.1, 0.9, 0.2, 0.8], "y": [0, 1, 0, 1]})
ROLE_NAMES = ", ".join(ColumnRoles.model_fields)

CASES = [
    ("unknown_role_did_you_mean",
     lambda: EvaluationSet.from_frame(FRAME, {"scores": {"1": "s"}, "lable": "y"}),
     InvalidParameterError,
     f"unknown column role 'lable' (did you mean 'label'?); valid roles: {ROLE_NAMES}"),
    ("two_unknown_roles",
     lambda: EvaluationSet.from_frame(FRAME, {"scores": {"1": "s"}, "label": "y", "foo": 1,
                                              "bar": 2}),
     InvalidParameterError, f"unknown column role 'foo'; valid roles: {ROLE_NAMES}"),
    ("roles_as_a_list", lambda: EvaluationSet.from_frame(FRAME, ["s", "y"]),
     InvalidParameterError, "roles must be a ColumnRoles or a dict of roles, got list"),
    ("roles_missing", lambda: EvaluationSet.from_frame(FRAME, None),
     InvalidParameterError, "roles must be a ColumnRoles or a dict of roles, got NoneType"),
    ("frame_not_a_dataframe", lambda: EvaluationSet.from_frame([1, 2], {"label": "y"}),
     InvalidParameterError, "df must be a pandas DataFrame, got list"),
    ("column_roles_of_an_unknown_keyword", lambda: ColumnRoles(scores={"1": "s"}, lable="y"),
     InvalidParameterError,
     f"unknown column role 'lable' (did you mean 'label'?); valid roles: {ROLE_NAMES}"),
    ("repeated_attribute_in_a_grouping", lambda: __import__("rwe").subgroup_performance(
        EvaluationSet.from_frame(FRAME.assign(sex=["F", "M", "F", "M"]),
                                 {"scores": {"1": "s"}, "label": "y", "attributes": ["sex"]}),
        by=[("sex", "sex")]),
     InvalidParameterError, "grouping ('sex', 'sex') names an attribute twice; an intersection "
                            "needs distinct attributes"),
    ("load_protocol_of_none", lambda: load_protocol(None),
     InvalidParameterError, "path must be a file path (str or os.PathLike), got NoneType"),
    ("load_protocol_of_a_number", lambda: load_protocol(3),
     InvalidParameterError, "path must be a file path (str or os.PathLike), got int"),
    ("protocol_from_a_list", lambda: protocol_from_dict(["name"]),
     ProtocolError, "<protocol>: a protocol is a mapping of sections (name, device, data, ...), "
                    "got list"),
]


@pytest.mark.parametrize("call, error, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_api_misuse_raises_an_rwe_error(call, error, message):
    with pytest.raises(error) as info:
        call()
    assert isinstance(info.value, RWEError)
    assert str(info.value) == message


def test_known_roles_still_build_an_evaluation_set():
    ev = EvaluationSet.from_frame(FRAME, {"id": "id", "scores": {"1": "s"}, "label": "y"})
    assert ev.n == 4 and ev.y_true.tolist() == [False, True, False, True]
