"""One column-roles model for the Python API and the protocol (issue 13, part 5)."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from pydantic import BaseModel

from rwe.data import ColumnRoles, EvaluationSet
from rwe.exceptions import InvalidParameterError
from rwe.protocol import ColumnsSpec, DataSpec

ROOT = Path(__file__).resolve().parents[2]
VALID = ("id, patient_id, scores, label, time, event, timestamp, site, equipment, attributes, "
         "features")


def test_the_protocol_uses_the_same_class():
    assert DataSpec.model_fields["columns"].annotation is ColumnRoles
    assert ColumnsSpec is ColumnRoles
    assert issubclass(ColumnRoles, BaseModel)
    assert ColumnRoles.model_config["extra"] == "forbid" and ColumnRoles.model_config["frozen"]


def test_attribute_api_lists_become_tuples_hash_and_equality():
    r = ColumnRoles(id="i", scores={"1.0": "s", "1.1": "t"}, label="y", site="site",
                    attributes=["sex", "race"], features=["age"])
    assert r.attributes == ("sex", "race") and r.features == ("age",)
    assert r.required_columns() == ["i", "s", "t", "y", "site", "sex", "race", "age"]
    assert r.grouping_columns() == ["sex", "race", "site"]
    d = r.to_dict()
    assert d["attributes"] == ["sex", "race"] and d["scores"] == {"1.0": "s", "1.1": "t"}
    again = ColumnRoles(**d)
    assert again == r and hash(again) == hash(r) and len({r, again}) == 1
    assert ColumnRoles(label="y") == ColumnRoles(label="y", id=None)  # unset == default
    assert ColumnRoles(label="y") != ColumnRoles(label="z")
    assert pickle.loads(pickle.dumps(r)) == r
    with pytest.raises(Exception, match="frozen"):
        r.label = "z"  # type: ignore[misc]


@pytest.mark.parametrize("call", [
    lambda: ColumnRoles(scores={"1": "s"}, foo="x"),
    lambda: EvaluationSet.from_frame(pd.DataFrame({"s": [0.5], "y": [1]}),
                                     {"scores": {"1": "s"}, "label": "y", "foo": "x"}),
])
def test_unknown_role_is_one_line_naming_it(call):
    with pytest.raises(InvalidParameterError) as info:
        call()
    assert str(info.value) == f"unknown column role 'foo'; valid roles: {VALID}"


def test_typo_suggests_and_wrong_types_are_one_line():
    with pytest.raises(InvalidParameterError, match=r"^unknown column role 'lable' \(did you "
                                                    r"mean 'label'\?\); valid roles: id, "):
        ColumnRoles(scores={"1.0": "s"}, lable="y")
    with pytest.raises(InvalidParameterError) as info:
        ColumnRoles(scores="score")
    assert str(info.value) == ("column roles: scores: Input should be a valid dictionary "
                               "(got 'score')")
    with pytest.raises(InvalidParameterError, match=r"attributes: Input should be a valid tuple "
                                                    r"\(got 'sex'\)"):
        ColumnRoles(attributes="sex")  # a string is not a list of attributes
    with pytest.raises(InvalidParameterError, match="keyword arguments only"):
        ColumnRoles("scan_id")  # type: ignore[misc]


def test_python_api_keeps_its_own_rules():
    # no label/outcome rule in the Python API: roles the table satisfies are enough
    df = pd.DataFrame({"s": [0.1, 0.9]})
    assert EvaluationSet.from_frame(df, {"scores": {"v": "s"}}).n == 2
    with pytest.raises(Exception, match="the column roles name no score, label or survival"):
        EvaluationSet.from_frame(df, {"site": "s"})


def test_reading_a_protocol_and_its_roles_loads_no_pandas():
    code = ("import sys, rwe.data, rwe.protocol\n"
            "from rwe.data import ColumnRoles, VALIDATION_RULES\n"
            f"p = rwe.protocol.load_protocol({str(ROOT / 'protocols' / 'demo.yaml')!r})\n"
            "r = p.roles(); p.derived_spec(); p.data_source().describe()\n"
            "print(sorted(m for m in ('pandas', 'scipy', 'pyarrow', 'duckdb', 'matplotlib') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
