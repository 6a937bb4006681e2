"""Bad reference population files: ``rwe validate`` refuses each in one line naming the file,
without quoting its content (it may be any file a path was pointed at)."""

from __future__ import annotations

import pytest
from hardening_corpus import TINY_REFERENCE, Case, assert_refused

from rwe.exceptions import ReferenceDataError
from rwe.representativeness import load_reference
from rwe.representativeness._reference import MAX_REFERENCE_BYTES

VALIDATE = ("validate", "{p}")

def ref_case(id: str, content: str | bytes, expect: list[str], **kw) -> Case:
    return Case(id, files={"ref.csv": content}, argv=VALIDATE,
                expect=["{d}/ref.csv: ", *expect], **kw)


REFERENCE_CASES = [
    ref_case("binary", b"\x7fELF\x02\x01\x01\x00TOPSECRET\x00\x00",
             ["not a reference file: binary content (a NUL byte at byte 7)"],
             absent=["TOPSECRET", "ELF"]),
    ref_case("not_utf8", "attribute,category,share\nsex,Fémme,0.5\n".encode("latin-1"),
             ["not a reference file: not UTF-8 text (invalid continuation byte at byte 30)"]),
    ref_case("some_other_csv_header_not_echoed", "TOPSECRET,hunter2\n1,2\n",
             ["a reference file needs the columns attribute, category, share; its header has 2 "
              "column(s) and lacks attribute, category, share"],
             absent=["TOPSECRET", "hunter2"]),
    ref_case("header_typo_did_you_mean", TINY_REFERENCE.replace("category,share",
                                                                "category,shares"),
             ["lacks share; did you mean 'shares' for 'share'?"]),
    ref_case("shares_do_not_sum_to_one", TINY_REFERENCE.replace("sex,M,0.5", "sex,M,0.4"),
             ["shares of attribute 'sex' sum to 0.9, not 1"]),
    ref_case("negative_share", TINY_REFERENCE.replace("race,Asian,0.1", "race,Asian,-0.1")
             .replace("race,White,0.6", "race,White,0.8"),
             ["attribute 'race', category 'Asian' has share -0.1 < 0"]),
    ref_case("duplicate_category", TINY_REFERENCE + "sex,F,0.5\n",
             ["attribute 'sex' lists category 'F' more than once"]),
    ref_case("share_not_a_number", TINY_REFERENCE.replace("sex,M,0.5", "sex,M,half"),
             ["attribute 'sex', category 'M': share 'half' is not a number"]),
    ref_case("empty_file", "", ["the reference file has no header and no rows"]),
    ref_case("comments_only", "# name: nothing\n# year: 2020\n",
             ["the reference file has no header and no rows"]),
    ref_case("header_only", "attribute,category,share\n", ["the reference defines no attribute"]),
    ref_case("over_the_size_limit", lambda ws: "attribute,category,share\n" + "x,y,1\n" * (
        MAX_REFERENCE_BYTES // 6 + 1),
        [f"bytes; a reference population of marginal shares is limited to "
         f"{MAX_REFERENCE_BYTES:,} bytes"]),
]


@pytest.mark.parametrize("case", REFERENCE_CASES, ids=[c.id for c in REFERENCE_CASES])
def test_bad_reference_file_is_refused(case, ws, capsys):
    assert_refused(case, ws, capsys)


def test_a_binary_reference_is_a_reference_data_error(tmp_path):
    p = tmp_path / "ref.csv"
    p.write_bytes(b"\x00\x01\x02")
    with pytest.raises(ReferenceDataError, match="binary content") as info:
        load_reference(p)
    assert "\n" not in str(info.value)
