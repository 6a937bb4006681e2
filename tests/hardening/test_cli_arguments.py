"""Bad command lines and a closed pipe: one ``rwe: error:`` line naming the argument, exit 2
(141, quietly, when the reader of stdout has gone, as grep and git), nothing left behind."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest
from hardening_corpus import ROOT, Case, assert_refused, run_cli

from rwe.cli import EXIT_PIPE

DOSSIER = ("dossier", "{p}", "--quiet", "--no-pdf")

CLI_CASES = [
    Case("jobs_negative", argv=(*DOSSIER, "--jobs", "-3"),
         expect=["rwe: error: rwe dossier: argument --jobs: must be a positive integer, got '-3' "
                 "(see rwe dossier --help)"]),
    Case("jobs_zero", argv=(*DOSSIER, "--jobs", "0"),
         expect=["argument --jobs: must be a positive integer, got '0'"]),
    Case("jobs_not_a_number", argv=(*DOSSIER, "--jobs", "many"),
         expect=["argument --jobs: must be a positive integer, got 'many'"]),
    Case("jobs_fraction", argv=("demo", "--summary-only", "--jobs", "1.5"),
         expect=["rwe demo: argument --jobs: must be a positive integer, got '1.5'"]),
    Case("unknown_option", argv=("validate", "{p}", "--nope"),
         expect=["rwe: error: unrecognized arguments: --nope"]),
    Case("unknown_command", argv=("validat", "{p}"),
         expect=["argument COMMAND: invalid choice: 'validat'", "did you mean 'validate'?"]),
    Case("unknown_command_merge", argv=("merg", "{p}"),
         expect=["invalid choice: 'merg'", "did you mean 'merge'?"]),
    Case("missing_protocol_argument", argv=("validate",),
         expect=["rwe validate: the following arguments are required: protocol"]),
    Case("out_is_a_file", files={"out.txt": "keep me"}, argv=(*DOSSIER, "--out", "{d}/out.txt"),
         expect=["{d}/out.txt: exists and is a file, not a dossier directory"]),
    Case("out_is_not_a_dossier_even_with_force", files={"thesis/chapter1.md": "keep me"},
         argv=(*DOSSIER, "--out", "{d}/thesis", "--force"),
         expect=["{d}/thesis: exists and is not an rwe dossier"]),
    Case("out_holds_a_dossier_without_force", files={"old/index.html": "<html></html>"},
         argv=(*DOSSIER, "--out", "{d}/old"),
         expect=["{d}/old: a dossier already exists there; pass --force to replace it"]),
    Case("summarize_without_site", argv=("summarize", "{p}"),
         expect=["rwe summarize: the following arguments are required: --site, --out"]),
]


@pytest.mark.parametrize("case", CLI_CASES, ids=[c.id for c in CLI_CASES])
def test_bad_command_line_is_refused(case, ws, capsys):
    assert_refused(case, ws, capsys)


def test_closed_pipe_is_quiet_exit_141(ws):
    """``rwe validate p.yaml | head -0``: the reader is gone before rwe writes. rwe stops
    quietly with 141, the status a shell gives grep or git killed by SIGPIPE; never a
    "Broken pipe" error with exit 2."""
    p = ws.protocol()
    read, write = os.pipe()
    os.close(read)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    try:
        r = subprocess.run([sys.executable, "-m", "rwe.cli", "validate", "--no-data", str(p)],
                           stdout=write, stderr=subprocess.PIPE, text=True, cwd=ws.dir,
                           env=env, timeout=60)
    finally:
        os.close(write)
    assert (r.returncode, r.stderr) == (EXIT_PIPE, "")
    assert EXIT_PIPE == 141


def test_validate_output_still_reaches_an_open_pipe(ws):
    p = ws.protocol()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run(f"{sys.executable} -m rwe.cli validate --no-data {p} | head -1",
                       shell=True, capture_output=True, text=True, cwd=ws.dir, env=env,
                       timeout=60)
    assert (r.returncode, r.stdout, r.stderr) == (0, f"OK  {p}: protocol valid\n", "")


def test_full_disk_while_generating_the_demo_names_the_data(ws, capsys, monkeypatch):
    from rwe.datasets import demo_path

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("rwe.datasets.ensure_demo", full)
    code, out, err = run_cli(["demo", "--summary-only"], capsys)
    assert (code, out) == (2, "")
    assert err.splitlines() == [f"rwe: error: {demo_path()}: could not write the demo data: "
                                "No space left on device"]
