"""Start a real relay process on a free loopback port, in a temporary directory.

    relay = RelayProcess.start(tmp_path)        # init + serve, waits for /healthz
    relay.url, relay.dir, relay.pid, relay.network_anchor, relay.network_key
    relay.stop()      # SIGTERM, wait; then checks the relay's log holds no IP address
    relay.kill()      # SIGKILL by PID (crash test)
    relay.restart()   # same directory, same port

Layout under the base directory::

    network.json        the network anchor (public)
    relay/              the relay directory (relay.toml, relay.key, relay.db, ...)
    relay.log           everything the relay process wrote (stdout and stderr)
    home/network/       a network-office profile (only with ``network_profile=True``)

The network key is also kept *in memory* (``network_key``) so tests can admit orgs.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protocol import SigningKeyPair
from relay.devnetwork import network_anchor
from relay.initdir import init_relay
from tests.support.ports import free_port

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
FORBIDDEN_IN_LOG = ("127.0.0.1", "::1")
PASSPHRASE = "test passphrase"


def _test_env(extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("KOK_ARGON2_MEMORY_KIB", "1024")
    env.setdefault("KOK_ARGON2_TIME", "1")
    env["KOK_RELAY_LOGGING_FORMAT"] = "json"
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


@dataclass
class RelayProcess:
    """A relay running as a child process (never in-process)."""

    base: Path
    port: int
    network_key: SigningKeyPair
    network_anchor: dict[str, Any]
    env: dict[str, str] = field(default_factory=dict)
    home: Path | None = None
    passphrase: str = PASSPHRASE
    proc: subprocess.Popen[bytes] | None = None
    ca_file: Path | None = None
    workers: int = 1
    log_name: str = "relay.log"
    module: str = "relay"
    """What ``python -m`` runs (``serve --dir ...`` follows): a benchmark may run a variant."""

    @property
    def url(self) -> str:
        scheme = "https" if self.ca_file else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def dir(self) -> Path:
        """The relay directory (relay.toml, relay.key, relay.db)."""
        return self.base / "relay"

    @property
    def anchor_path(self) -> Path:
        return self.base / "network.json"

    @property
    def log_path(self) -> Path:
        return self.base / self.log_name

    @property
    def db_path(self) -> Path:
        return self.dir / "relay.db"

    def raw_database(self) -> bytes:
        """The raw bytes of the database file and its WAL (as someone seizing the disk sees)."""
        data = b""
        for suffix in ("", "-wal", "-journal"):
            path = self.db_path.with_name(self.db_path.name + suffix)
            if path.exists():
                data += path.read_bytes()
        return data

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise RuntimeError("the relay is not running")
        return self.proc.pid

    @classmethod
    def start(cls, base: Path, *, env: dict[str, str] | None = None, network_profile: bool = False,
              name: str = "Test Network", tls: tuple[Path, Path] | None = None,
              also_urls: tuple[str, ...] = (), store_url: str = "",
              workers: int = 1, module: str = "relay") -> RelayProcess:
        """Create a network and a relay directory under ``base`` and start serving.

        ``tls`` = (certificate, key) PEM files: the relay terminates TLS itself.
        ``also_urls``: further URLs logins may be bound to (e.g. a proxy's, in tests that
        put a lying relay in front).
        ``store_url``: a postgresql:// store instead of SQLite; ``workers``: processes
        sharing the port (``serve --workers``); ``module``: run instead of ``relay``
        (a benchmark's variant of it).
        """
        base.mkdir(parents=True, exist_ok=True)
        home = base / "home" if network_profile else None
        port = free_port()
        url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
        env = dict(env or {})
        if also_urls:
            env["KOK_RELAY_SERVER_ALSO_PUBLIC_URLS"] = ",".join(also_urls)
        if store_url:
            env["KOK_RELAY_STORE_URL"] = store_url
        if tls:
            env["KOK_RELAY_SERVER_TLS_CERT"] = str(tls[0].resolve())
            env["KOK_RELAY_SERVER_TLS_KEY"] = str(tls[1].resolve())
        key = SigningKeyPair.from_seed(os.urandom(32))
        anchor = network_anchor(name, key)
        if home is not None:
            from client.onboarding import init_network  # only tests that need the office

            init_network(home, "network", PASSPHRASE, name, network_key=key, relay=url)
        (base / "network.json").write_text(json.dumps(anchor))
        init_relay(base / "relay", base / "network.json", port=port, public_url=url)
        relay = cls(base=base, port=port, network_key=key, network_anchor=anchor,
                    env=env, home=home, ca_file=tls[0] if tls else None, workers=workers,
                    module=module)
        relay._spawn()
        return relay

    def sibling(self) -> RelayProcess:
        """Another relay process on the same (shared) store, on its own port, as a second host
        behind one name would be: a copy of the relay directory (same relay.key and
        relay.toml), the same blob folder; logins may be bound to either URL."""
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        base = self.base / f"sibling-{port}"
        (base / "relay").mkdir(parents=True)
        for name in ("relay.toml", "relay.key", "network.json"):
            shutil.copy2(self.dir / name, base / "relay" / name)
        env = {**self.env, "KOK_RELAY_SERVER_PORT": str(port),
               "KOK_RELAY_SERVER_ALSO_PUBLIC_URLS": url,
               "KOK_RELAY_STORAGE_BLOBS": str(self.dir / "blobs")}
        other = RelayProcess(base=base, port=port, network_key=self.network_key,
                             network_anchor=self.network_anchor, env=env, home=self.home)
        other._spawn()
        return other

    def _spawn(self) -> None:
        log = self.log_path.open("ab")
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", self.module, "serve", "--dir", str(self.dir),
                 *(["--workers", str(self.workers)] if self.workers > 1 else [])],
                stdout=log, stderr=subprocess.STDOUT, env=_test_env(self.env), cwd=self.base,
            )
        finally:
            log.close()
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"the relay exited with {self.proc.returncode}:\n"
                                   + self.log_text()[-3000:])
            context = ssl.create_default_context(cafile=self.ca_file) if self.ca_file else None
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1,  # noqa: S310
                                            context=context) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError, ssl.SSLError):
                time.sleep(0.05)
        self.kill()
        raise RuntimeError("the relay did not answer /healthz in time:\n" + self.log_text()[-3000:])

    def log_text(self) -> str:
        """Everything the relay process has written so far."""
        try:
            return self.log_path.read_text("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_events(self) -> list[dict[str, Any]]:
        """The relay's JSON log lines, parsed."""
        events = []
        for line in self.log_text().splitlines():
            if line.startswith("{"):
                events.append(json.loads(line))
        return events

    def assert_log_clean(self, *secrets: str) -> None:
        """The log holds no loopback address (nor any of ``secrets``)."""
        text = self.log_text()
        for needle in (*FORBIDDEN_IN_LOG, *secrets):
            if needle and needle in text:
                raise AssertionError(f"the relay log contains {needle!r}")

    def stop(self, *, check_log: bool = True) -> None:
        """Stop with SIGTERM (graceful), then check the log."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(STOP_TIMEOUT)
        self.proc = None
        if check_log:
            self.assert_log_clean()

    def kill(self) -> None:
        """SIGKILL the relay process by its PID: no shutdown code runs."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(STOP_TIMEOUT)
        self.proc = None

    def restart(self) -> None:
        """Stop (if running) and start again on the same directory and port."""
        self.stop(check_log=False)
        self._spawn()

    def __enter__(self) -> RelayProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
