"""The top-level API: lazy exports and the analysis names."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd

import rwe


def test_import_is_light():
    code = ("import sys, rwe; heavy = [m for m in ('matplotlib', 'statsmodels', 'papermill') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_export_resolves():
    for name in rwe.__all__:
        assert getattr(rwe, name) is not None, name


def test_assess_representativeness_is_the_top_level_name():
    """No callable-module trick: ``rwe.representativeness`` is the subpackage (importing it
    binds that name on rwe) and the analysis is ``rwe.assess_representativeness``."""
    import rwe.representativeness as mod  # binds the subpackage on rwe

    assert rwe.representativeness is mod and not callable(mod)
    assert rwe.assess_representativeness is mod.assess_representativeness
    assert mod.representativeness is mod.assess_representativeness
    assert "representativeness" not in rwe.__all__
    df = pd.DataFrame({"sex": ["F"] * 60 + ["M"] * 40})
    ref = {"sex": {"F": 0.5, "M": 0.5}}
    res = rwe.assess_representativeness(df, reference=ref, attributes=["sex"])
    assert res.shares.set_index("category")["ppr"].to_dict() == {"F": 1.2, "M": 0.8}


def test_json_safe_of_a_frame_equals_converting_row_by_row():
    """The column-at-a-time conversion of a DataFrame gives the row-by-row values: numpy
    floats (NaN and inf as None), integers, booleans, nullable and object columns, dates,
    categoricals, a non-text column label, no rows, no columns."""
    import json

    import numpy as np
    import pandas as pd

    from rwe._results import json_safe

    def by_rows(f):
        return [json_safe(r) for r in f.to_dict(orient="records")]

    f = pd.DataFrame({
        "a": [1.0, np.nan, -np.inf], "b": pd.array([1, None, 3], dtype="Int64"),
        "c": [True, False, True], "d": ["x", None, np.nan],
        "e": pd.to_datetime(["2020-01-01", None, "2021-01-01"]),
        1: np.array([1.5, 2, 3], dtype=np.float32), "g": pd.Categorical(["u", "v", None]),
        "h": np.array([1, 2, 3], dtype=np.uint8)})
    frames = [f, f.iloc[:0], pd.DataFrame(index=[0, 1])]
    for frame in frames:
        assert json.dumps(json_safe(frame), allow_nan=False) == json.dumps(by_rows(frame))
    assert json_safe(f)[1] == {"a": None, "b": None, "c": False, "d": None, "e": "NaT",
                               "1": 2.0, "g": "v", "h": 2}


def test_dumps_json_safe_equals_dumping_json_safe():
    """The C-encoder fast path writes the same text as ``json.dumps(json_safe(obj))`` for
    plain records and for every object it must hand to ``json_safe``: numpy scalars, NaN and
    inf, tuples, True/False/None and numeric keys, a string key "true", nested frames."""
    import json

    import numpy as np
    import pandas as pd

    from rwe._results import canonical_json, dumps_json_safe, json_safe

    objs = [
        {"a": 1.5, "b": [1, 2, None], "c": {"d": "x"}}, {"x": np.float64(0.1)},
        {"x": np.int64(3)}, {"x": np.bool_(True)}, {"x": float("nan")}, {"x": -np.inf},
        {True: 1, "y": 2}, {None: 2}, {False: [1]}, {1: (3, 4)}, {1.5: "v"}, {"true": 1},
        {"s": "null: x"}, [{"f": pd.DataFrame({"a": [1.0, np.nan]})}], (1, "a"),
        {"nested": [{"k": {True: np.float32(0.5)}}]}]
    for obj in objs:
        for kw in ({}, {"sort_keys": True, "ensure_ascii": False}):
            want = json.dumps(json_safe(obj), allow_nan=False, **kw)
            assert dumps_json_safe(obj, **kw) == want, obj
        # the hashes of protocols, plans, ledger entries and summaries
        assert canonical_json(obj) == json.dumps(json_safe(obj), sort_keys=True,
                                                 separators=(",", ":"), ensure_ascii=False,
                                                 allow_nan=False), obj
    # the numbers json_safe turns into None stay refused by the fast path
    assert dumps_json_safe({"x": float("inf")}) == '{"x": null}'


def test_dumps_indented_writes_what_json_dumps_writes():
    """results.json's fast indented dump is byte-identical to ``json.dumps(sort_keys=True,
    indent=2, ensure_ascii=False, allow_nan=False)``: records, lists of records and of lists,
    records mixed with scalars or empty ones, strings holding brackets, separators, control
    characters and non-ASCII text, non-string keys, subclasses, 2,000 random nested
    structures; and it refuses what json refuses."""
    import json
    import random
    from collections import OrderedDict

    import pytest

    from rwe._results import dumps_indented

    def ref(o, indent=2):
        return json.dumps(o, sort_keys=True, indent=indent, ensure_ascii=False, allow_nan=False)

    tricky = ['}\x00{', '"},{"', "]\n[", "\x00", "é ✓ \u2028", "\\", ""]
    cases = [1, 1.5, "x", None, True, [], {}, [[]], [{}], [{}, {"a": 1}], [{"a": 1}, {}],
             [[1], []], [{"a": 1}, [2]], [{"a": 1}, 3], {"a": [], "b": {}},
             [1, [2, [3, []]]], [{"k": s, "v": [s]} for s in tricky], [[s, s] for s in tricky],
             [{"x": s, "y": 1.0} for s in tricky], {s: s for s in tricky},
             {"b": 1, "a": [1.0, -0.0, 1e-300, 2 ** 70, 5e-324, None, False]},
             {2: 2, 3.5: [1], True: {}}, {None: [{"z": 1}]}, OrderedDict(b=1, a=[1, 2]),
             {"x": OrderedDict(z=[1], y=2)}, [OrderedDict(a=1)], (1, (2, 3)),
             {"k": (1, {"a": (2,)})}, [(1, 2), [3, 4]], [{"a": {"b": 1}}, {"a": {"b": 2}}]]
    for c in cases:
        assert dumps_indented(c) == ref(c), c
        assert dumps_indented(c, indent=1) == ref(c, indent=1), c
    rng = random.Random(20261201)
    scalars = [0.1, -7, 2 ** 60, "s", '"q"', "}", None, True, False, 1e16, -0.0]

    def gen(depth):
        r = rng.random()
        if depth > 4 or r < 0.3:
            return rng.choice(scalars)
        if r < 0.5:  # records
            return [{k: rng.choice(scalars) for k in rng.sample("abcde", rng.randint(1, 4))}
                    for _ in range(rng.randint(0, 4))]
        if r < 0.75:
            return [gen(depth + 1) for _ in range(rng.randint(0, 4))]
        return {rng.choice("abcdefg"): gen(depth + 1) for _ in range(rng.randint(0, 4))}
    for _ in range(2000):
        o = gen(0)
        assert dumps_indented(o) == ref(o), o
    for bad, error in [({"a": float("nan")}, ValueError), ([1, [float("inf")]], ValueError),
                       ([{"a": float("nan")}], ValueError), ({"a": object()}, TypeError),
                       ({(1, 2): 3}, TypeError), ({"a": {(1, 2): 1, "b": [1]}}, TypeError),
                       ({1: 1, "a": [1]}, TypeError), ({float("nan"): [1]}, ValueError)]:
        with pytest.raises(error):
            ref(bad)
        with pytest.raises(error):
            dumps_indented(bad)


def test_a_finding_whose_fields_its_template_lacks_still_reads():
    """A finding saved by a version whose template had other fields renders as code and
    values instead of raising (old results.json files stay readable)."""
    from rwe._evidence import Finding

    f = Finding("representativeness.reference_unverified", subject={"reference": "x"},
                values={"version_text": ""})
    assert f.text() == "representativeness.reference_unverified: reference=x, version_text="


def test_compact_members_finds_each_member_and_refuses_other_layouts():
    """The walker of compact JSON gives every member's span, so a checksum member can be cut
    out wherever it stands; text in any other layout (whitespace, a duplicate key, NaN,
    trailing data) is not walked (the reader then checks the parsed content)."""
    import json

    from rwe._results import compact_members, compact_text_without

    body = {"b": [1, {"x": "}{,"}], "a": {"k": None}, "c": "q\"uo,te"}
    for pos in range(4):
        items = list(body.items())
        items.insert(pos, ("checksum", "h"))
        text = json.dumps(dict(items), separators=(",", ":"), ensure_ascii=False)
        obj, spans, end = compact_members(text, depth=1)
        assert obj == dict(items) and end == len(text)
        cut = compact_text_without(text, 0, end, spans, "checksum")
        assert cut == json.dumps(body, separators=(",", ":"), ensure_ascii=False)
        first, last, start, sub = spans["a"]
        assert text[first:last] == '"a":{"k":null}' and text[start] == "{"
        assert sub is not None and text[sub["k"][0]:sub["k"][1]] == '"k":null'
    assert compact_members('{"a":1}') == ({"a": 1}, {"a": (1, 6, 5, None)}, 7)
    assert compact_members("{}") == ({}, {}, 2)
    for other in ['{"a": 1}', '{ "a":1}', '{"a":1,"a":2}', '{"a":NaN}', '{"a":Infinity}',
                  '{"a":1', '[1]', '{"a":1,}', '{1:2}']:
        assert compact_members(other) is None, other
    assert compact_members('{"a":1}x')[2] == 7  # the caller compares the end with the length
