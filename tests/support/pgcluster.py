"""A throw-away PostgreSQL cluster for tests: initdb into a temporary folder, a Unix socket.

    cluster = PgCluster.find_and_start()   # None (with the reason) if PostgreSQL is missing
    url = cluster.new_database()           # postgresql://postgres@/kok_3?host=/tmp/kok-pg-...
    cluster.stop()                         # pg_ctl stop -m immediate, folder removed

The server listens on a Unix socket inside its own folder only (``listen_addresses=''``),
so nothing is reachable over the network and two test runs never collide on a port. It
runs with ``fsync=on`` and ``synchronous_commit=on``: the relay's durability checks refuse
anything less, and crash tests must see the real thing.

initdb refuses to run as root; when the tests run as root the cluster is created and run
by the ``postgres`` system user (Debian's package creates it) via ``runuser``, in a folder
owned by that user.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

START_TIMEOUT = 30.0
SERVER_USER = "postgres"


def find_bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<v>/bin`` holding initdb and pg_ctl (or $PG_BIN)."""
    explicit = os.environ.get("KOK_TEST_PG_BIN")
    candidates = [explicit] if explicit else sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]),
        reverse=True)
    for candidate in candidates:
        path = Path(candidate)
        if (path / "initdb").exists() and (path / "pg_ctl").exists():
            return path
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _as_server_user() -> tuple[list[str], int | None, int | None]:
    """Command prefix and (uid, gid) to run the server as, when we are root."""
    if os.geteuid() != 0:
        return [], None, None
    try:
        user = pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise RuntimeError(
            f"running as root needs the {SERVER_USER!r} system user to run PostgreSQL "
            "(initdb refuses root): install Debian's postgresql package") from None
    return ["runuser", "-u", SERVER_USER, "--"], user.pw_uid, user.pw_gid


@dataclass
class PgCluster:
    """A running throw-away cluster."""

    bin_dir: Path
    folder: Path
    prefix: list[str]
    _names: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def socket_dir(self) -> Path:
        return self.folder

    def url(self, database: str = "postgres") -> str:
        """A connection URL for ``database`` over the cluster's Unix socket."""
        return f"postgresql://postgres@/{database}?host={self.socket_dir}"

    def _run(self, *args: str, timeout: float = 60.0) -> str:
        done = subprocess.run([*self.prefix, *args], capture_output=True, text=True,
                              timeout=timeout, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{Path(args[0]).name} failed ({done.returncode}):\n"
                               f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        return done.stdout

    @classmethod
    def start(cls, bin_dir: Path) -> PgCluster:
        prefix, uid, gid = _as_server_user()
        folder = Path(tempfile.mkdtemp(prefix="kok-pg-"))
        if uid is not None and gid is not None:
            os.chown(folder, uid, gid)
        cluster = cls(bin_dir=bin_dir, folder=folder, prefix=prefix)
        try:
            cluster._run(str(bin_dir / "initdb"), "-D", str(cluster.data), "-U", "postgres",
                         "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync")
            options = " ".join([
                "-c listen_addresses=''",
                f"-c unix_socket_directories={folder}",
                "-c fsync=on",
                "-c synchronous_commit=on",
                "-c full_page_writes=on",
                "-c max_connections=300",
                "-c shared_buffers=32MB",
                "-c autovacuum_naptime=5s",
            ])
            cluster._run(str(bin_dir / "pg_ctl"), "-D", str(cluster.data), "-w",
                         "-t", str(int(START_TIMEOUT)), "-l", str(folder / "server.log"),
                         "-o", options, "start", timeout=START_TIMEOUT + 10)
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL with psql (autocommit); returns its unaligned output."""
        return self._run(str(self.bin_dir / "psql"), "-X", "-q", "-A", "-t", "-v",
                         "ON_ERROR_STOP=1", "-h", str(self.socket_dir), "-U", "postgres",
                         "-d", database, "-c", sql)

    def new_database(self) -> str:
        """A fresh empty database; returns its URL."""
        name = f"kok_{os.getpid()}_{next(self._names)}"
        self.psql(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        """Stop the server at once and remove its folder (nothing in it is kept)."""
        if (self.data / "postmaster.pid").exists():
            subprocess.run([*self.prefix, str(self.bin_dir / "pg_ctl"), "-D", str(self.data),
                            "-m", "immediate", "-w", "stop"], capture_output=True,
                           timeout=60, check=False)
        shutil.rmtree(self.folder, ignore_errors=True)


