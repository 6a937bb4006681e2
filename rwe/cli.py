"""The ``rwe`` command line: argument mapping only; every analysis lives in the library.

Exit codes: 0 success; 3 ``rwe monitor`` raised an alarm (``rwe compare``: 3 REJECT, 4
INCONCLUSIVE); 2 bad input (protocol, data, arguments, existing output) with one line
per problem on stderr and no traceback; 1 an unexpected internal error; 130 interrupted
(Ctrl-C); 143 terminated (SIGTERM during a dossier build, which removes its directory); 141
when the reader of the standard output went away (``rwe validate p.yaml | head -1``): rwe then
stops quietly, with the status a shell reports for ``grep`` or ``git log`` killed by SIGPIPE
(128 + 13), so that ``set -o pipefail`` scripts see the same as with those tools.
``rwe compare`` exits 0 only for APPROVE, 3 for REJECT and 4 for INCONCLUSIVE
(:data:`rwe.change_control.EXIT_CODES`), so that a CI pipeline blocks a rejected update.
"""

from __future__ import annotations

import argparse
import os
import sys
import typing
from collections.abc import Sequence
from pathlib import Path

from rwe import __version__
from rwe.exceptions import RWEError

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE = 0, 1, 2
EXIT_PIPE = 128 + 13  # SIGPIPE, as the shell reports a tool killed by it

_DEMO_PROTOCOL = "protocols/demo.yaml"


class _Usage(RWEError):
    """A command-line usage problem (reported like any other bad input)."""


class _StdoutClosed(Exception):
    """The standard output is a pipe whose reader has gone (``| head``)."""


class _Parser(argparse.ArgumentParser):
    """argparse with rwe's error format: one line, ``rwe: error: ...``, exit 2."""

    def error(self, message: str) -> typing.NoReturn:
        import difflib
        import re

        m = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if m:  # a mistyped command: name the closest one
            choices = re.findall(r"'([^']*)'", m.group(2))
            close = difflib.get_close_matches(m.group(1), choices, n=1)
            if close:
                message += f"; did you mean {close[0]!r}?"
        where = "" if self.prog == "rwe" else f"{self.prog}: "
        self.exit(EXIT_USAGE, f"rwe: error: {where}{message} (see {self.prog} --help)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


# ------------------------------------------------------------------------------- helpers
def _project_root() -> Path:
    """The source checkout rwe runs from (protocols/, datasets/ and notebooks/ live there)."""
    return Path(__file__).resolve().parent.parent


def _echo(msg: str = "") -> None:
    try:
        print(msg, flush=True)
    except BrokenPipeError:
        raise _StdoutClosed from None


def _error_lines(exc: BaseException) -> list[str]:
    messages = getattr(exc, "messages", None)
    if messages:
        return [str(m) for m in messages]
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines() or [text]


def _summary(protocol, evset) -> str:
    """A short cohort summary: protocol identity, then the data's facts table."""
    desc = evset.describe()
    width = max(len(str(f)) for f in desc["fact"])
    lines = [f"protocol  {protocol.name}  (sha256 {protocol.sha256[:16]}...)",
             f"data      {protocol.data_location()}", ""]
    lines += [f"  {str(f).ljust(width)}  {v}" for f, v in zip(desc["fact"], desc["value"],
                                                           strict=True)]
    return "\n".join(lines)


def _validate(protocol_path: str | Path, *, data: bool = True):
    """Load the protocol and (optionally) its data and reference inputs; raise on any problem.

    With ``data.engine: dask`` every row is validated on the cluster, partition by partition,
    and the checks run on the summary of all rows (the facts shown are the summary's)."""
    from rwe.protocol import load_protocol

    protocol = load_protocol(protocol_path)
    evset = None
    if data:
        from rwe.exceptions import DataValidationError
        from rwe.protocol import check_inputs

        with protocol.open_data() as evset:
            target = evset
            if protocol.data.engine == "dask":  # every grouping column, for the facts
                from dataclasses import replace

                spec = protocol.summary_spec()
                target = evset.summarize(replace(spec, attributes=tuple(dict.fromkeys(
                    [*spec.attributes, *evset.grouping_columns()]))))
                evset.describe(target)  # the facts, while the cluster runs
            protocol.load_reference_rows()
            if protocol.population.reference is not None:
                from rwe.representativeness import load_reference

                load_reference(protocol.reference_path())
            problems = check_inputs(protocol, target, source=evset.source)
        if problems:
            raise DataValidationError(problems, source=evset.source)
    return protocol, evset


# ------------------------------------------------------------------------------- commands
def _cmd_validate(args: argparse.Namespace) -> int:
    protocol, evset = _validate(args.protocol, data=not args.no_data)
    _echo(f"OK  {args.protocol}: protocol valid")
    if evset is not None:
        _echo(_summary(protocol, evset))
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    root = _project_root()
    protocol_path = root / _DEMO_PROTOCOL
    if not protocol_path.is_file():
        raise _Usage(f"{protocol_path}: demo protocol not found; run rwe demo from a source "
                     "checkout (pip install -e .)")
    from rwe.datasets import demo_path, ensure_demo

    try:
        generated = ensure_demo()
    except OSError as exc:  # a full disk names no file: say where the data were going
        if getattr(exc, "filename", None):
            raise
        raise _Usage(f"{demo_path()}: could not write the demo data: "
                     f"{exc.strerror or str(exc).splitlines()[0]}") from None
    if generated:
        _echo(f"generated the demo data (seed as in its data card) in {demo_path()}")
    protocol, evset = _validate(protocol_path)
    _echo(_summary(protocol, evset))
    if args.summary_only:
        return EXIT_OK
    _record_demo_decision(protocol, evset)
    out = Path(args.out) if args.out else root / "reports" / "demo"
    if not args.out:  # the default demo dossier is rebuilt in place (make demo, twice)
        args.force = True
    return _build(protocol_path, out, args, evset=evset)


def _record_demo_decision(protocol, evset) -> None:
    """Decide the demo's model update once, as ``rwe compare`` would, and record it in the
    demo ledger (a dossier build never appends: every entry is a look at the test set). Run
    again, the decision is already in the ledger and nothing is appended."""
    cc = protocol.change_control
    if cc is None or cc.ledger is None:
        return
    from rwe.change_control import Ledger, compare_from_protocol
    from rwe.change_control._compare import compare_plan
    from rwe.exceptions import LedgerError

    path = protocol.resolve(cc.ledger)
    try:
        entries = (Ledger(path).entries(plan_sha256=compare_plan(protocol)) if path.exists()
                   else [])
    except LedgerError as exc:  # the dossier's change-control page reports it
        _echo(f"change control: not recorded: {str(exc).splitlines()[0]}")
        return
    if any(e.get("kind") == "comparison" and str((e.get("versions") or {}).get("candidate"))
           == str(cc.candidate_version) for e in entries):
        return
    result = compare_from_protocol(protocol, evset)
    _echo(f"change control: {result.banner()} (recorded in {path.name}, entry "
          f"{result.ledger['seq']}; `rwe ledger show {path}`)")


def _build(protocol_path: Path | str, out: Path, args: argparse.Namespace, *,
           evset=None) -> int:
    from rwe.dossier import build_dossier

    result = build_dossier(protocol_path, out, force=args.force,
                           pdf=False if args.no_pdf else None, jobs=args.jobs,
                           progress=not args.quiet, evset=evset)
    _echo(f"dossier written to {result.path}")
    for line in result.summary_lines():
        _echo(line)
    return EXIT_OK


def _cmd_dossier(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else Path("reports") / Path(args.protocol).stem
    return _build(args.protocol, out, args)


def _cmd_compare(args: argparse.Namespace) -> int:
    from rwe.change_control import run_compare

    result = run_compare(args.protocol, candidate=args.candidate, ledger=args.ledger,
                         head=args.head)
    _echo(result.report())
    if not result.approved:
        print(f"rwe: {result.banner()}", file=sys.stderr)
    return result.exit_code


def _cmd_ledger(args: argparse.Namespace) -> int:
    from rwe.change_control import ledger_show_text, ledger_verify_text

    if args.action == "verify":
        lines = ledger_verify_text(args.file, head=args.head, protocol=args.protocol)
    else:
        lines = ledger_show_text(args.file, head=args.head)
    for line in lines:
        _echo(line)
    return EXIT_OK


def _cmd_monitor(args: argparse.Namespace) -> int:
    from rwe.drift._monitor import EXIT_ALARM, monitor

    run = monitor(args.protocol, args.data, args.state, alarm_log=args.alarm_log)
    for line in run.lines:
        _echo(line)
    return EXIT_ALARM if run.alarmed else EXIT_OK


def _cmd_summarize(args: argparse.Namespace) -> int:
    from rwe.federation import release_site_summary

    summary, release, new = release_site_summary(
        args.protocol, args.site, args.out, data=args.data, period=args.period,
        release_log=args.release_log, force=args.force)
    cohort = summary.views["cohort"]
    _echo(f"site summary of {args.site} written to {args.out}: {cohort.n_rows:,} rows, "
          f"{cohort.n_events:,} events, views {', '.join(summary.views)}"
          + ("" if new else " (identical to an earlier release)"))
    for view, rec in summary.disclosure.items():
        recoded = {a: c for a, c in rec["recoded_cells"].items() if c}
        _echo(f"  {view}: minimum count {rec['min_count']}; values withheld in "
              + (", ".join(f"{a} ({c} cells)" for a, c in recoded.items()) or "no cell")
              + (f"; rows withheld: {rec['withheld_rows']}" if rec["withheld_rows"] else ""))
    for view, why in summary.skipped.items():
        _echo(f"  {view}: not summarized ({why})")
    return EXIT_OK


def _cmd_merge(args: argparse.Namespace) -> int:
    from rwe.federation import merge_site_files

    result, dossier = merge_site_files(args.protocol, args.summaries, args.out,
                                       force=args.force, pdf=False if args.no_pdf else None,
                                       jobs=args.jobs, progress=not args.quiet)
    for line in result.summary_lines():
        _echo(line)
    _echo(f"dossier written to {dossier.path}")
    for line in dossier.summary_lines():
        _echo(line)
    return EXIT_OK


# ------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="rwe",
        description="Real-world evidence for AI-enabled medical devices: validate a protocol, "
                    "build an evidence dossier.",
        epilog="Exit codes: 0 ok, 2 bad input (messages on stderr), 1 internal error; rwe "
               "compare: 0 APPROVE, 3 REJECT, 4 INCONCLUSIVE; rwe monitor: 3 alarm.")
    parser.add_argument("--version", action="version", version=f"rwe {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("validate", help="check a protocol and its data; exit 0 or 2",
                       description="Check a protocol (schema and cross-references) and load and "
                                   "validate the data it names. Prints a cohort summary.")
    p.add_argument("protocol", help="YAML protocol file")
    p.add_argument("--no-data", action="store_true", help="check the protocol file only")
    p.set_defaults(func=_cmd_validate)

    def dossier_options(q: argparse.ArgumentParser) -> None:
        q.add_argument("--out", help="output directory (default reports/<protocol name>)")
        q.add_argument("--force", action="store_true",
                       help="replace an existing dossier at --out")
        q.add_argument("--no-pdf", action="store_true", help="skip the PDF rendering")
        q.add_argument("--jobs", type=_positive_int, default=None, metavar="N",
                       help="notebooks run in parallel (default: CPU count, at most 2)")
        q.add_argument("--quiet", action="store_true", help="no progress bars")

    p = sub.add_parser("demo", help="build the demo dossier (generates the demo data if needed)",
                       description="Validate protocols/demo.yaml on the bundled synthetic data, "
                                   "print a cohort summary and build the dossier "
                                   "(reports/demo by default, replaced when run again; "
                                   "with --out, an existing dossier needs --force).")
    dossier_options(p)
    p.add_argument("--summary-only", action="store_true",
                   help="validate and print the cohort summary, build nothing")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("dossier", help="build an evidence dossier from a protocol",
                       description="Run the dossier notebooks on a protocol and write the "
                                   "dossier directory (HTML, PDF, results.json, manifest.json).")
    p.add_argument("protocol", help="YAML protocol file")
    dossier_options(p)
    p.set_defaults(func=_cmd_dossier)

    p = sub.add_parser("monitor", help="add new windows to the drift charts; exit 3 on alarm",
                       description="Incremental monitoring run: the new data's windows extend "
                                   "the control charts kept in the state file (created when "
                                   "absent) without recomputing history; alarms are appended "
                                   "to the alarm log. Exit 0 no alarm, 3 alarm, 2 bad input.")
    p.add_argument("protocol", help="YAML protocol file with a drift section")
    p.add_argument("--data", required=True, help="new rows (CSV or Parquet)")
    p.add_argument("--state", required=True, help="monitor state file (JSON)")
    p.add_argument("--alarm-log", help="append-only alarm log (default STATE.alarms.jsonl)")
    p.set_defaults(func=_cmd_monitor)

    p = sub.add_parser(
        "compare", help="decide a model update under the protocol's change-control plan",
        description="Compare a candidate version with the current, the original and every "
                    "approved version on the sequestered test set, record the decision in the "
                    "ledger and print the verdict.",
        epilog="Exit codes: 0 APPROVE, 3 REJECT, 4 INCONCLUSIVE, 2 bad input (nothing "
               "appended), 1 internal error.")
    p.add_argument("protocol", help="YAML protocol file")
    p.add_argument("--candidate", metavar="VERSION",
                   help="version proposed (default change_control.candidate_version)")
    p.add_argument("--ledger", metavar="FILE", help="ledger (default change_control.ledger)")
    p.add_argument("--head", metavar="SHA256", help="head hash the ledger must contain")
    p.set_defaults(func=_cmd_compare)
    p = sub.add_parser("ledger", help="check or list a change-control ledger",
                       description="verify: check the whole hash chain and name the first bad "
                                   "entry (exit 2). show: list the updates, their verdicts and "
                                   "the error budget left.")
    p.add_argument("action", choices=("verify", "show"))
    p.add_argument("file", help="ledger file (JSON lines)")
    p.add_argument("--head", metavar="SHA256", help="head hash recorded elsewhere (dossier "
                   "manifest): detects entries removed from the end")
    p.add_argument("--protocol", metavar="PROTOCOL", help="verify: the ledger must belong to "
                   "this protocol's change-control plan")
    p.set_defaults(func=_cmd_ledger)
    p = sub.add_parser(
        "summarize", help="write a site's protected summary for a federated evaluation",
        description="At a site: validate the site's rows, apply the disclosure rule (stated in "
                    "the file: counts under the protocol's minimum withheld or coarsened, "
                    "complementary suppression, one release per period) and write the "
                    "aggregates at the protocol's declared resolution (federation.score_bins). "
                    "No row and no identifier leaves the site.")
    p.add_argument("protocol", help="YAML protocol file with a federation section")
    p.add_argument("--site", required=True, help="this site's name")
    p.add_argument("--out", required=True, help="site summary file to write (JSON)")
    p.add_argument("--data", help="the site's data file (default: the protocol's data.path)")
    p.add_argument("--period", nargs=2, metavar=("START", "END"),
                   help="release only the rows of this period (dates, both included)")
    p.add_argument("--release-log", metavar="FILE", help="the site's release log "
                   "(default: rwe-releases.jsonl next to --out)")
    p.add_argument("--force", action="store_true", help="replace an existing --out file")
    p.set_defaults(func=_cmd_summarize)
    p = sub.add_parser(
        "merge", help="merge site summaries into one dossier (per-site and pooled results)",
        description="At the coordinator: check every site summary (protocol sha256, schema, "
                    "resolution, checksum, one per site and period) before anything is "
                    "merged, then build the dossier: the verdicts on the pooled data, the "
                    "pooled subgroup, representativeness and drift sections, per-site results, "
                    "the pooled AUROC with its DeLong interval from the merged histograms, a "
                    "random-effects meta-analysis of the site estimates (Q, I^2, tau^2), the "
                    "disclosure rule each site applied and what summaries cannot evaluate.")
    p.add_argument("summaries", nargs="+", help="site summary files")
    p.add_argument("--protocol", required=True, help="the YAML protocol the sites used")
    p.add_argument("--out", required=True, help="dossier directory to write")
    p.add_argument("--force", action="store_true", help="replace an existing dossier at --out")
    p.add_argument("--no-pdf", action="store_true", help="skip the PDF rendering")
    p.add_argument("--jobs", type=_positive_int, default=None, metavar="N",
                   help="notebooks run in parallel (default: CPU count, at most 2)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_merge)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rwe`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)  # argparse exits 2 on usage errors, 0 for --help
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.func(args) or EXIT_OK)
    except _StdoutClosed:
        _silence_stdout()
        return EXIT_PIPE
    except KeyboardInterrupt as exc:
        if type(exc).__name__ == "BuildTerminated":  # SIGTERM during a dossier build
            print("rwe: terminated (SIGTERM); nothing was written", file=sys.stderr)
            return 128 + 15
        print("rwe: interrupted", file=sys.stderr)
        return 130
    except RWEError as exc:
        for line in _error_lines(exc):
            print(f"rwe: error: {line}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # unreadable file, disk full, permission: still one line
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        print(f"rwe: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE


def _silence_stdout() -> None:
    """Point the closed standard output at /dev/null, so that the interpreter's final flush
    does not print "Exception ignored ... BrokenPipeError" (Python docs, signal module notes
    on SIGPIPE)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # replaced stream (tests): nothing to do
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
