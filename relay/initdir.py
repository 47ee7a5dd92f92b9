"""``relay init``: create a relay directory with its config, secrets and trust anchor.

The relay's two secrets (the log-key seed that signs key-log heads, and the token key
from which message ids and status tokens are derived) are written to ``relay.key`` with
file mode 0600 inside a 0700 directory, not encrypted: the relay must start unattended,
and an encryption key would have to sit on the same disk. Neither secret opens any
message; see deploy/OPERATOR.md.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import textwrap
from pathlib import Path

from kokshared.private_files import make_private_dir, write_private_file
from protocol import b64encode

from .config import (
    CONFIG_FILE,
    KEY_FILE,
    NETWORK_FILE,
    ConfigError,
    origin_of,
    read_anchor,
    sections,
)

# Why each setting exists, written above it in the generated file. The settings themselves
# and their defaults come from relay.config's dataclasses, so a new setting can never be
# missing from a new relay.toml (tests/relay/test_initdir.py checks that, and that every
# setting has a note here).
NOTES: dict[str, str] = {
    "server.host": "Address to listen on (loopback behind a reverse proxy).",
    "server.port": "TCP port to listen on.",
    "server.public_url": "The URL clients use to reach this relay (its origin is signed into "
                         "every login).",
    "server.also_public_urls": "Further URLs clients may use for this relay (another name, an "
                               "internal address), comma-separated. A login signed for any "
                               "other origin is refused.",
    "server.tls_cert": "Terminate TLS here by naming a PEM certificate chain (relative to "
                       "this directory) ...",
    "server.tls_key": "... and its private key. Empty: plain HTTP behind a TLS proxy.",
    "server.header_timeout": "Seconds a connection may take to send a request's headers, or "
                             "stay idle between requests, before it is closed.",
    "storage.database": "The SQLite database file (relative to this directory).",
    "storage.blobs": "The folder of encrypted file drops (relative to this directory).",
    "storage.readers": "Read-only database connections beside the one writer.",
    "store.url": "Empty: SQLite (the database above), one relay process. "
                 "postgresql://user@host/db: a PostgreSQL database several relay processes or "
                 "hosts share (serve --workers N); move the data with `kok relay migrate` "
                 "(OPERATOR.md, Scaling out). Keep the password in ~/.pgpass, not here.",
    "store.pool_size": "PostgreSQL connections per relay process.",
    "limits.max_envelope_bytes": "One sealed message.",
    "limits.max_envelopes_per_send": "Recipient organisations per send.",
    "limits.max_send_bytes": "All envelopes of one send together.",
    "limits.max_control_body_bytes": "Any other JSON body.",
    "limits.default_ttl": "Message and file lifetime when the sender names none (7 days).",
    "limits.max_ttl": "Longest lifetime a sender may ask for (30 days); also how long "
                      "retired grants are kept.",
    "limits.max_drop_bytes": "One file drop (4 GiB).",
    "limits.max_open_uploads_per_org": "Unfinished file uploads per uploading organisation.",
    "limits.org_drop_bytes": "Files waiting per recipient organisation (16 GiB).",
    "limits.drop_idle_ttl": "An upload that receives no bytes for this long is deleted (1 day).",
    "limits.min_free_disk_bytes": ("Free-space watermark: below it, new messages, files and "
                                   "upload bytes get 507 storage_full (reading and "
                                   "acknowledging go on)."),
    "limits.org_storage_bytes": "Mailbox quota per recipient organisation (2 GiB).",
    "limits.staff_requests_per_minute": "Requests per staff member (and wrong login answers "
                                        "in one person's name).",
    "limits.org_requests_per_minute": "Requests per organisation, all its staff together.",
    "limits.public_requests_per_minute": "Unauthenticated requests, all clients together: "
                                         "logins, devices being linked and the rest have "
                                         "a budget each.",
    "limits.max_event_streams_per_staff": "Open event streams (WebSockets) per staff member.",
    "limits.challenge_ttl": "Seconds a login challenge stays valid.",
    "limits.session_ttl": "Seconds a login session lasts.",
    "limits.status_grace": "How long a status token still answers after its message expired.",
    "limits.max_log_page": "Key-log entries per page.",
    "limits.write_batch": "Most writes committed together (group commit).",
    "expiry.interval": "Seconds between purges of everything expired.",
    "logging.level": "debug, info, warning or error.",
    "logging.format": "auto (JSON unless stderr is a terminal), json or console.",
    "metrics.host": "Loopback address of the Prometheus listener (GET /metrics).",
    "metrics.port": "Port of the Prometheus listener; 0 keeps it off (deploy/OPERATOR.md).",
}

HEADER = """\
# kok relay configuration. Every setting is listed with its default. Each can be overridden
# by the environment variable KOK_RELAY_<SECTION>_<KEY>, e.g. KOK_RELAY_LIMITS_MAX_TTL=86400.
# See deploy/OPERATOR.md.
"""


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value:_}" if value >= 10_000 else str(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string for the plain text settings hold
    raise TypeError(f"no TOML form for a setting of type {type(value).__name__}")


def render_config(values: dict[str, object] | None = None) -> str:
    """``relay.toml`` text: every setting of every section, at its default unless in ``values``.

    ``values`` maps ``"section.key"`` to the value to write instead of the default.
    """
    values = dict(values or {})
    out = [HEADER]
    for name, cls in sections().items():
        out.append(f"\n[{name}]\n")
        defaults = cls()
        for setting in dataclasses.fields(cls):
            key = f"{name}.{setting.name}"
            note = NOTES.get(key)
            if note:
                lines = textwrap.wrap(note, 90, break_on_hyphens=False)
                out.extend(f"# {line}\n" for line in lines)
            value = values.pop(key, getattr(defaults, setting.name))
            out.append(f"{setting.name} = {_toml_value(value)}\n")
    if values:
        raise ValueError(f"unknown settings: {', '.join(sorted(values))}")
    return "".join(out)


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` atomically with mode 0600 (the shared private-file writer)."""
    write_private_file(path, text.encode("utf-8"))


def init_relay(directory: Path, network_json: Path, *, public_url: str | None = None,
               port: int = 8787, host: str = "127.0.0.1") -> Path:
    """Create ``directory`` as a new relay directory; refuse to touch an existing one."""
    anchor = read_anchor(network_json)
    if not 0 < port < 65536:
        raise ConfigError(f"port {port} is not a TCP port")
    url = public_url or f"http://{host}:{port}"
    origin_of(url)
    make_private_dir(directory)
    directory.chmod(0o700)
    if (directory / CONFIG_FILE).exists() or (directory / KEY_FILE).exists():
        raise ConfigError(f"{directory} already holds a relay; refusing to overwrite it")
    keys = {"v": 1, "log_key": b64encode(secrets.token_bytes(32)),
            "token_key": b64encode(secrets.token_bytes(32))}
    _write_private(directory / KEY_FILE, json.dumps(keys) + "\n")
    _write_private(directory / NETWORK_FILE, json.dumps(anchor.to_json(), indent=2) + "\n")
    _write_private(directory / CONFIG_FILE, render_config(
        {"server.host": host, "server.port": port, "server.public_url": url}))
    # The empty store now: from here on a missing database means lost state (startup.py).
    from .config import load_config
    from .startup import create_store_now

    create_store_now(load_config(directory))
    return directory
