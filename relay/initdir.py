"""``relay init``: create a relay directory with its config, secrets and trust anchor.

The relay's two secrets (the log-key seed that signs key-log heads, and the token key
from which message ids and status tokens are derived) are written to ``relay.key`` with
file mode 0600 inside a 0700 directory, not encrypted: the relay must start unattended,
and an encryption key would have to sit on the same disk. Neither secret opens any
message; see deploy/OPERATOR.md.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from protocol import b64encode

from .config import CONFIG_FILE, KEY_FILE, NETWORK_FILE, ConfigError, origin_of, read_anchor

CONFIG_TEMPLATE = """\
# kok relay configuration. Every setting can be overridden by the environment variable
# KOK_RELAY_<SECTION>_<KEY>, e.g. KOK_RELAY_LIMITS_MAX_TTL=86400. See deploy/OPERATOR.md.

[server]
host = "{host}"
port = {port}
# The URL clients use to reach this relay (its origin is signed into every login).
public_url = "{public_url}"
# Further URLs clients may use for this relay (another name, an internal address), comma-
# separated. A login signed for any other origin is refused.
also_public_urls = ""
# Terminate TLS here by naming a PEM certificate chain and key (relative to this directory).
tls_cert = ""
tls_key = ""

[storage]
database = "relay.db"
blobs = "blobs"
readers = 2

[limits]
max_envelope_bytes = 1_048_576      # one sealed message
max_envelopes_per_send = 64         # recipient organisations per send
max_send_bytes = 8_388_608          # all envelopes of one send together
max_control_body_bytes = 65_536     # any other JSON body
default_ttl = 604_800               # 7 days
max_ttl = 2_592_000                 # 30 days
max_drop_bytes = 4_294_967_296      # 4 GiB per file drop
max_open_uploads_per_org = 16       # unfinished file uploads per uploading organisation
org_drop_bytes = 17_179_869_184     # 16 GiB of files waiting per recipient organisation
drop_idle_ttl = 86_400              # an upload that gets no bytes for a day is deleted
min_free_disk_bytes = 1_073_741_824 # refuse new files when the blob disk would drop below
org_storage_bytes = 2_147_483_648   # mailbox quota per recipient organisation
staff_requests_per_minute = 600
org_requests_per_minute = 3000
public_requests_per_minute = 6000   # unauthenticated requests, all clients together
max_event_streams_per_staff = 8
challenge_ttl = 60
session_ttl = 3600
status_grace = 86_400               # how long a status token still answers after expiry

[expiry]
interval = 60                       # seconds between purges

[logging]
level = "info"
format = "auto"                     # auto: JSON unless stderr is a terminal
"""


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` atomically with mode 0600 (temp file, fsync, rename, fsync dir)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def init_relay(directory: Path, network_json: Path, *, public_url: str | None = None,
               port: int = 8787, host: str = "127.0.0.1") -> Path:
    """Create ``directory`` as a new relay directory; refuse to touch an existing one."""
    anchor = read_anchor(network_json)
    if not 0 < port < 65536:
        raise ConfigError(f"port {port} is not a TCP port")
    url = public_url or f"http://{host}:{port}"
    origin_of(url)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    directory.chmod(0o700)
    if (directory / CONFIG_FILE).exists() or (directory / KEY_FILE).exists():
        raise ConfigError(f"{directory} already holds a relay; refusing to overwrite it")
    keys = {"v": 1, "log_key": b64encode(secrets.token_bytes(32)),
            "token_key": b64encode(secrets.token_bytes(32))}
    _write_private(directory / KEY_FILE, json.dumps(keys) + "\n")
    _write_private(directory / NETWORK_FILE, json.dumps(anchor.to_json(), indent=2) + "\n")
    _write_private(directory / CONFIG_FILE,
                   CONFIG_TEMPLATE.format(host=host, port=port, public_url=url))
    return directory
