"""The bad-input corpus (issue 16): workspace, runner and the invariants every case holds.

Every case is a row of a table (see the ``test_*.py`` files): a protocol edit or a set of files,
the command line, and what the one-line error must name. :func:`assert_refused` checks the
contract of rwe's command line for bad input: exit code 2, exactly one ``rwe: error:`` line per
problem on stderr, no traceback, nothing on stdout, the culprit (file, field, column) named,
and nothing left behind: the workspace and the temporary directory hold the same files before
and after. The inputs are tiny files written per test; no case reads the 100,000-row demo.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from rwe.cli import main

ROOT = Path(__file__).resolve().parents[2]
N_ROWS = 60

#: A complete, valid protocol over :func:`tiny_csv` and :data:`TINY_REFERENCE`.
BASE_PROTOCOL = """\
name: tiny
device:
  name: Tiny CADx
  version: "1"
  intended_use: triage
  intended_use_population: adults
data:
  path: data.csv
  columns:
    id: id
    scores: {"1": score}
    label: label
    site: site
    attributes: [sex, race]
    features: [age]
population:
  reference: ref.csv
  attributes: [sex, race]
subgroups:
  attributes: [sex, race]
  min_n: 5
performance:
  metrics: [sensitivity, specificity]
  threshold: 0.5
  goals:
    - {metric: sensitivity, goal: 0.5}
drift:
  reference_period: {start: 2024-01-01, end: 2024-06-30}
report:
  title: Tiny dossier
"""

TINY_REFERENCE = """\
# name: tiny_ref
# source: made up for the tests
attribute,category,share
sex,F,0.5
sex,M,0.5
race,White,0.6
race,Black,0.3
race,Asian,0.1
"""

_COLUMNS: dict[str, Callable[[int], object]] = {
    "id": lambda i: f"c{i}",
    "score": lambda i: round(0.7 if i % 3 == 0 else 0.3, 3) + (i % 5) / 100,
    "label": lambda i: int(i % 3 == 0),
    "sex": lambda i: "FM"[i % 2],
    "race": lambda i: ("White", "Black", "Asian")[i % 3],
    "age": lambda i: 40 + i,
    "site": lambda i: "AB"[i % 2],
}


def tiny_csv(n: int = N_ROWS, **columns: Callable[[int], object]) -> str:
    """The tiny evaluation table as CSV text; ``columns`` replace a column's generator."""
    gens = _COLUMNS | columns
    lines = [",".join(gens)]
    lines += [",".join(str(g(i)) for g in gens.values()) for i in range(n)]
    return "\n".join(lines) + "\n"


@dataclass
class Workspace:
    """A directory holding the protocol, data and reference of one case (the cwd)."""

    dir: Path
    tmp: Path

    def write(self, name: str, content: str | bytes) -> Path:
        p = self.dir / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content, encoding="utf-8")
        return p

    def protocol(self, edit: Callable[[str], str] | str | bytes | None = None,
                 name: str = "p.yaml") -> Path:
        if callable(edit):
            content: str | bytes = edit(BASE_PROTOCOL)
        else:
            content = BASE_PROTOCOL if edit is None else edit
        return self.write(name, content)

    def snapshot(self) -> set[str]:
        """Every path under the workspace and the temporary directory."""
        return {str(p.relative_to(root.parent)) for root in (self.dir, self.tmp)
                for p in root.rglob("*")}


def make_workspace(tmp_path: Path, monkeypatch) -> Workspace:
    """The tiny protocol's data and reference in ``tmp_path/ws`` (made the cwd), with a
    private temporary directory, so that any stray temporary file shows in the snapshot."""
    d = tmp_path / "ws"
    d.mkdir()
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.chdir(d)
    w = Workspace(d, tmp)
    w.write("data.csv", tiny_csv())
    w.write("ref.csv", TINY_REFERENCE)
    return w


@dataclass(frozen=True)
class Case:
    """One bad input.

    ``protocol`` edits :data:`BASE_PROTOCOL` (a function of its text) or replaces it (text or
    bytes); ``files`` are written next to it (name -> text, bytes, or a function of the
    workspace returning either); ``argv`` is the command line, ``{p}`` standing for the
    protocol's path and ``{d}`` for the workspace; ``expect`` are substrings the error lines
    must contain (``{p}`` and ``{d}`` as in argv); ``lines`` is the number of problems.
    """

    id: str
    protocol: Callable[[str], str] | str | bytes | None = None
    argv: Sequence[str] = ("validate", "--no-data", "{p}")
    expect: Sequence[str] = ()
    files: dict[str, object] = field(default_factory=dict)
    lines: int = 1
    absent: Sequence[str] = ()  # substrings that must not appear (file content never quoted)


def sub(text: str, ws: Workspace, p: Path) -> str:
    return text.replace("{p}", str(p)).replace("{d}", str(ws.dir))


def prepare(case: Case, ws: Workspace) -> list[str]:
    """Write the case's files; returns its command line."""
    for name, content in case.files.items():
        ws.write(name, content(ws) if callable(content) else content)  # type: ignore[arg-type]
    p = ws.protocol(case.protocol)
    return [sub(a, ws, p) for a in case.argv]


def run_cli(argv: Sequence[str], capsys) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse
        code = exc.code if isinstance(exc.code, int) else 2
    out, err = capsys.readouterr()
    return code, out, err


def check_refusal(code: int, out: str, err: str, *, lines: int, expect: Sequence[str],
                  absent: Sequence[str] = ()) -> list[str]:
    got = err.splitlines()
    assert code == 2, f"exit {code}; stderr: {err!r}"
    assert "Traceback" not in err, err
    assert out == "", f"stdout should be empty on a refusal: {out!r}"
    assert len(got) == lines, f"expected {lines} line(s), got {len(got)}: {err!r}"
    assert all(line.startswith("rwe: error: ") for line in got), err
    for e in expect:
        assert e in err, f"{e!r} not in {err!r}"
    for a in absent:
        assert a not in err, f"{a!r} quoted in {err!r}"
    return got


def assert_refused(case: Case, ws: Workspace, capsys) -> list[str]:
    """Run the case in-process and check the refusal contract."""
    argv = prepare(case, ws)
    p = ws.dir / "p.yaml"
    before = ws.snapshot()
    code, out, err = run_cli(argv, capsys)
    got = check_refusal(code, out, err, lines=case.lines,
                        expect=[sub(e, ws, p) for e in case.expect], absent=case.absent)
    assert ws.snapshot() == before, "files were left behind"
    return got


def _limit_memory() -> None:  # pragma: no cover - runs in the child
    cap = 2 * 1024**3
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))


def run_bounded(argv: Sequence[str], cwd: Path, *, timeout: float = 20.0
                ) -> tuple[int, str, str, float]:
    """The CLI in a child process under a 2 GB address-space cap and a timeout: a runaway
    input fails the test instead of exhausting the machine. Returns the exit code, stdout,
    stderr and the child's CPU seconds (user + system, interpreter start included): CPU, not
    wall time, so that a loaded machine does not fail a bound meant for runaway work."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        r = subprocess.run([sys.executable, "-m", "rwe.cli", *argv], capture_output=True,
                           text=True, cwd=cwd, timeout=timeout, env=env,
                           preexec_fn=_limit_memory)
    except subprocess.TimeoutExpired:
        pytest.fail(f"rwe {' '.join(argv)} did not return within {timeout:g} s")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return r.returncode, r.stdout, r.stderr, cpu
