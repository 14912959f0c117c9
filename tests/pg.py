"""A real PostgreSQL server for the tests: Debian's package (`make postgres` installs it), a
fresh cluster in a temporary folder, listening on a free 127.0.0.1 port, stopped at the end.

PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` user the
package creates and is started with `runuser`. Where the binaries are missing (or there is no
such user) the tests that need it skip with the reason.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

SUPERUSER = "kefu"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bin_dir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), reverse=True)
    return versions[0].parent if versions else None


@dataclass
class PgServer:
    """A running test cluster; `dsn(db)` names one of its databases."""

    port: int
    data: Path
    bin_dir: Path
    as_user: str | None

    def dsn(self, db: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{db}"

    def new_database(self) -> str:
        """A fresh, empty database, so every test starts from nothing."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.dsn(name)

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        if self.as_user:
            cmd = ["runuser", "-u", self.as_user, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)

    def start(self) -> None:
        res = self._run(
            "initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8"
        )
        if res.returncode != 0:
            raise RuntimeError(f"initdb failed: {res.stderr.strip()}")
        # loopback TCP only; the socket goes into the cluster's own folder
        opts = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} "
            f"-c unix_socket_directories={self.data} -c max_connections=200 -c fsync=off"
        )
        res = self._run(
            "pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.data / "log"), "-w", "start"
        )
        if res.returncode != 0:
            log = self.data / "log"
            raise RuntimeError(f"postgres did not start: {res.stderr.strip()} {_tail(log)}")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")


def _tail(path: Path) -> str:
    try:
        return path.read_text()[-2000:]
    except OSError:
        return ""


def unavailable() -> str | None:
    """Why a test server cannot be started here, or None."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'kefu[postgres]')"
    if _bin_dir() is None:
        return "PostgreSQL is not installed (make postgres, or apt-get install postgresql)"
    if os.geteuid() == 0:
        import pwd

        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no postgres user to run the server as"
        if shutil.which("runuser") is None:
            return "running as root and runuser is missing"
    return None


@contextmanager
def running_server() -> Iterator[PgServer]:
    """A fresh cluster in a temporary folder, removed when the block ends; raises
    RuntimeError with the reason when the server cannot run here (see `unavailable`)."""
    why = unavailable()
    if why:
        raise RuntimeError(why)
    bin_dir = _bin_dir()
    assert bin_dir is not None
    root = Path(tempfile.mkdtemp(prefix="kefu-pg-"))
    as_user = None
    if os.geteuid() == 0:
        as_user = "postgres"
        shutil.chown(root, user="postgres")
    server = PgServer(port=free_port(), data=root / "data", bin_dir=bin_dir, as_user=as_user)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One PostgreSQL cluster for the whole test session."""
    why = unavailable()
    if why:
        pytest.skip(why)
    with running_server() as server:
        yield server


@pytest.fixture
def pg_dsn(pg_server: PgServer) -> str:
    """The DSN of a fresh database on the session's server."""
    return pg_server.new_database()
