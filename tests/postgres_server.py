"""A throwaway PostgreSQL server for the tests: Debian's binaries, a temporary data directory,
loopback only, password authentication, stopped and removed at the end of the session.

:func:`start_postgres` returns a running :class:`PostgresServer`, or a one-line reason why
none can run here (no binaries, no non-root user to run them as, initdb or pg_ctl failed);
the ``postgres_server`` fixture skips with that reason. PostgreSQL refuses to run as root, so
under root the server runs as the ``postgres`` user the Debian package creates.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

USER = "rwe_test"
_OPTIONS = ("-c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=30")


@dataclass
class PostgresServer:
    bindir: Path
    root: Path
    port: int
    password: str
    runas: str | None
    host: str = "127.0.0.1"
    user: str = USER

    def url(self, database: str = "postgres", *, user: str | None = None) -> str:
        """A URL without the password (the tests give it through PGPASSWORD or pgpass)."""
        return f"postgresql://{user or self.user}@{self.host}:{self.port}/{database}"

    def connect(self, database: str = "postgres", **kw):
        import psycopg

        return psycopg.connect(self.url(database), password=self.password, **kw)

    def create_database(self, name: str) -> str:
        """Create (or re-create) database ``name``; returns its URL."""
        with self.connect(autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            con.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            _run(self.runas, [str(self.bindir / "pg_ctl"), "-D", str(self.root / "data"), "-m",
                              "immediate", "-w", "stop"], timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)


def find_bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/*/bin`` holding initdb and pg_ctl (else PATH's)."""
    cands = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                   key=lambda p: [int(x) if x.isdigit() else 0 for x in Path(p).parent.name.split(".")])
    for c in reversed(cands):
        if (Path(c) / "initdb").is_file() and (Path(c) / "pg_ctl").is_file():
            return Path(c)
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(os.path.realpath(found)).parent
    return None


def _run(runas: str | None, argv: list[str], *, timeout: float = 120) -> subprocess.CompletedProcess:
    if runas is not None:
        argv = ["runuser", "-u", runas, "--", *argv]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False,
                          stdin=subprocess.DEVNULL)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_postgres() -> PostgresServer | str:
    """A running server, or the reason (one line) why none can run here."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'rwe[sql]')"
    bindir = find_bindir()
    if bindir is None:
        return ("PostgreSQL is not installed (no initdb / pg_ctl under /usr/lib/postgresql/*/bin "
                "or on PATH); `make postgres` installs Debian's package")
    runas = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and no 'postgres' user exists to run the server as"
        if shutil.which("runuser") is None:
            return "running as root and runuser is missing to run the server as 'postgres'"
        runas = "postgres"
    root = Path(tempfile.mkdtemp(prefix="rwe-pg-", dir="/tmp"))
    password = secrets.token_hex(12)
    try:
        os.chmod(root, 0o700)
        pwfile = root / "pw"
        pwfile.write_text(password + "\n")
        if runas is not None:
            ent = pwd.getpwnam(runas)
            os.chown(root, ent.pw_uid, ent.pw_gid)
            os.chown(pwfile, ent.pw_uid, ent.pw_gid)
        r = _run(runas, [str(bindir / "initdb"), "-D", str(root / "data"), "-U", USER,
                         f"--pwfile={pwfile}", "--auth-local=trust",
                         "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync"])
        pwfile.unlink()
        if r.returncode != 0:
            shutil.rmtree(root, ignore_errors=True)
            last = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["no output"]
            return f"initdb failed: {last[0]}"
        port = _free_port()
        r = _run(runas, [str(bindir / "pg_ctl"), "-D", str(root / "data"), "-l",
                         str(root / "server.log"), "-w", "-t", "60", "-o",
                         f"-p {port} -k {root} {_OPTIONS}", "start"])
        if r.returncode != 0:
            log = (root / "server.log").read_text(errors="replace") if (
                root / "server.log").exists() else r.stderr
            shutil.rmtree(root, ignore_errors=True)
            last = log.strip().splitlines()[-1:] or ["no output"]
            return f"pg_ctl could not start the server: {last[0]}"
    except (OSError, subprocess.SubprocessError) as exc:
        shutil.rmtree(root, ignore_errors=True)
        return f"could not start PostgreSQL: {exc}"
    return PostgresServer(bindir=bindir, root=root, port=port, password=password, runas=runas)
