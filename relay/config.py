"""Relay configuration: ``relay.toml`` in the relay directory, then environment overrides.

Every setting lives in one section of ``relay.toml`` and may be overridden by the
environment variable ``KOK_RELAY_<SECTION>_<KEY>`` (upper case), e.g.
``KOK_RELAY_LIMITS_MAX_TTL=86400`` or ``KOK_RELAY_SERVER_PORT=9000``. Values from the
environment are parsed as the type of the setting's default. Unknown keys in the file
are an error, so a typo never silently leaves a safe default in place.

The relay directory also holds ``relay.key`` (the log-key and token-key seeds, mode 0600)
and ``network.json`` (the network's public trust anchor).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protocol.auth import MAX_CHALLENGE_TTL
from protocol.auth import origin_of as protocol_origin_of
from protocol.encoding import b64decode, parse_json
from protocol.errors import EncodingError, ProtocolError
from protocol.keys import fingerprint
from protocol.message import MAX_TTL

CONFIG_FILE = "relay.toml"
KEY_FILE = "relay.key"
NETWORK_FILE = "network.json"
ENV_PREFIX = "KOK_RELAY_"

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
DAY = 86400


class ConfigError(Exception):
    """The relay's configuration or directory is unusable; the message says how to fix it."""


@dataclass(frozen=True)
class ServerConfig:
    """Where the relay listens and how clients reach it."""

    host: str = "127.0.0.1"
    port: int = 8787
    public_url: str = ""
    also_public_urls: str = ""  # comma-separated further URLs clients may use (other names)
    tls_cert: str = ""
    tls_key: str = ""
    header_timeout: int = 10
    """Seconds a connection may take to send a request's headers, or stay idle between
    requests, before it is closed (so slow senders cannot hold connections open)."""


@dataclass(frozen=True)
class StorageConfig:
    """Where the relay keeps its database and blobs (relative to the relay directory)."""

    database: str = "relay.db"
    blobs: str = "blobs"
    readers: int = 2


@dataclass(frozen=True)
class StoreConfig:
    """Which database holds the relay's rows.

    ``url`` empty (the default): SQLite in ``[storage] database`` under the relay
    directory, one relay process. ``postgresql://user@host/db``: a PostgreSQL database that
    several relay processes (``serve --workers N``) or hosts may share. Put the password in
    ``~/.pgpass`` or ``PGPASSWORD`` rather than in the URL.
    """

    url: str = ""
    pool_size: int = 10

    @property
    def is_postgresql(self) -> bool:
        return self.url.startswith(("postgresql://", "postgres://"))


@dataclass(frozen=True)
class LimitsConfig:
    """Safe defaults (deploy/OPERATOR.md section 4); each refusal is a specific 4xx."""

    max_envelope_bytes: int = 1 * MIB
    max_envelopes_per_send: int = 64
    max_send_bytes: int = 8 * MIB
    max_control_body_bytes: int = 64 * KIB
    default_ttl: int = 7 * DAY
    max_ttl: int = MAX_TTL
    max_drop_bytes: int = 4 * GIB
    max_open_uploads_per_org: int = 16
    org_drop_bytes: int = 16 * GIB
    drop_idle_ttl: int = 1 * DAY
    min_free_disk_bytes: int = 1 * GIB
    org_storage_bytes: int = 2 * GIB
    staff_requests_per_minute: int = 600
    org_requests_per_minute: int = 3000
    public_requests_per_minute: int = 6000
    max_event_streams_per_staff: int = 8
    challenge_ttl: int = 60
    session_ttl: int = 3600
    status_grace: int = 1 * DAY
    max_log_page: int = 5000
    write_batch: int = 256

    def public(self) -> dict[str, int]:
        """The limits a client may want to know (``GET /v1/info``)."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ExpiryConfig:
    """How often the background task deletes what has expired."""

    interval: int = 60


@dataclass(frozen=True)
class MetricsConfig:
    """The Prometheus listener (``GET /metrics``): off while ``port`` is 0; loopback only."""

    host: str = "127.0.0.1"
    port: int = 0


@dataclass(frozen=True)
class LoggingConfig:
    """Log level and format (``auto``: JSON unless stderr is a terminal)."""

    level: str = "info"
    format: str = "auto"


@dataclass(frozen=True)
class NetworkAnchor:
    """The network's public trust anchor (``network.json``)."""

    name: str
    network_key: bytes
    fingerprint: str

    def to_json(self) -> dict[str, Any]:
        from protocol.encoding import b64encode

        return {"v": 1, "name": self.name, "network_key": b64encode(self.network_key),
                "fingerprint": self.fingerprint}


@dataclass(frozen=True)
class RelayConfig:
    """Everything the relay needs to run, read once at start-up."""

    directory: Path
    network: NetworkAnchor
    log_seed: bytes = field(repr=False)
    token_key: bytes = field(repr=False)
    server: ServerConfig = ServerConfig()
    storage: StorageConfig = StorageConfig()
    store: StoreConfig = StoreConfig()
    limits: LimitsConfig = LimitsConfig()
    expiry: ExpiryConfig = ExpiryConfig()
    logging: LoggingConfig = LoggingConfig()
    metrics: MetricsConfig = MetricsConfig()

    @property
    def database_path(self) -> Path:
        return self.directory / self.storage.database

    @property
    def blob_path(self) -> Path:
        return self.directory / self.storage.blobs

    @property
    def origin(self) -> str:
        """``scheme://host[:port]`` that staff sign into their login answer."""
        return origin_of(self.server.public_url or self.default_url)

    @property
    def origins(self) -> tuple[str, ...]:
        """Every origin a login may be bound to: the public URL's first, then the others."""
        extra = [u.strip() for u in self.server.also_public_urls.split(",") if u.strip()]
        return tuple(dict.fromkeys([self.origin, *(origin_of(u) for u in extra)]))

    @property
    def default_url(self) -> str:
        scheme = "https" if self.server.tls_cert else "http"
        return f"{scheme}://{self.server.host}:{self.server.port}"


_SECTIONS: dict[str, type] = {
    "server": ServerConfig,
    "storage": StorageConfig,
    "store": StoreConfig,
    "limits": LimitsConfig,
    "expiry": ExpiryConfig,
    "logging": LoggingConfig,
    "metrics": MetricsConfig,
}


def sections() -> dict[str, type]:
    """Every ``relay.toml`` section and the dataclass of its settings (for ``relay init``)."""
    return dict(_SECTIONS)


def origin_of(url: str) -> str:
    """The origin of a URL: scheme, host and port only, lower case, no default port."""
    try:
        return protocol_origin_of(url)
    except ProtocolError as exc:
        raise ConfigError(exc.message) from None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _coerce(value: Any, default: Any, name: str) -> Any:
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "0", "false", "no"):
            return value.lower() in ("1", "true", "yes")
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value.replace("_", ""))
            except ValueError:
                pass
    elif isinstance(default, str) and isinstance(value, str):
        return value
    raise ConfigError(f"setting {name} must be of type {type(default).__name__}, not {value!r}")


def _section(name: str, cls: type, raw: Any, env: dict[str, str]) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"[{name}] must be a table of settings, not {raw!r}")
    defaults = cls()
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(raw) - known
    if unknown:
        raise ConfigError(f"unknown setting(s) in [{name}]: {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    for key in known:
        default = getattr(defaults, key)
        env_name = f"{ENV_PREFIX}{name}_{key}".upper()
        if env_name in env:
            values[key] = _coerce(env[env_name], default, env_name)
        elif key in raw:
            values[key] = _coerce(raw[key], default, f"[{name}] {key}")
    section = cls(**values)
    for key in known:
        value = getattr(section, key)
        if isinstance(value, int) and not isinstance(value, bool) and value < 0:
            raise ConfigError(f"setting [{name}] {key} must not be negative")
    return section


def _check_protocol_bounds(limits: LimitsConfig) -> None:
    """Refuse settings that would break what the protocol promises clients (SPEC 11, 19)."""
    if not 1 <= limits.challenge_ttl <= MAX_CHALLENGE_TTL:
        raise ConfigError(f"[limits] challenge_ttl must be 1 to {MAX_CHALLENGE_TTL} seconds "
                          f"(the protocol's maximum), not {limits.challenge_ttl}")
    if not 1 <= limits.max_ttl <= MAX_TTL:
        raise ConfigError(f"[limits] max_ttl must be 1 to {MAX_TTL} seconds (the protocol's "
                          f"maximum, 30 days), not {limits.max_ttl}")


def read_anchor(path: Path) -> NetworkAnchor:
    """Parse and check a network anchor file (its fingerprint must match its key)."""
    try:
        obj = parse_json(path.read_bytes())
    except FileNotFoundError:
        raise ConfigError(f"there is no network anchor file at {path}") from None
    except EncodingError as exc:
        raise ConfigError(f"the network anchor {path} is not valid JSON: {exc.message}") from exc
    if not isinstance(obj, dict) or obj.get("v") != 1:
        raise ConfigError(f"the network anchor {path} has an unknown format (expected v 1)")
    try:
        key = b64decode(obj.get("network_key", ""), size=32, field="network_key")
    except EncodingError as exc:
        raise ConfigError(f"the network anchor {path}: {exc.message}") from exc
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"the network anchor {path} has no name")
    stated = str(obj.get("fingerprint", "")).replace(" ", "").upper()
    if stated != fingerprint(key):
        raise ConfigError(f"the network anchor {path}: the fingerprint does not match the key")
    return NetworkAnchor(name=name, network_key=key, fingerprint=fingerprint(key))


def read_keys(path: Path) -> tuple[bytes, bytes]:
    """The relay's log-key seed and token key from ``relay.key``."""
    try:
        obj = parse_json(path.read_bytes())
        return (b64decode(obj["log_key"], size=32, field="log_key"),
                b64decode(obj["token_key"], size=32, field="token_key"))
    except FileNotFoundError:
        raise ConfigError(f"there is no {path.name} in {path.parent}: run `relay init`") from None
    except (EncodingError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path} is damaged") from exc


def load_config(directory: Path, env: dict[str, str] | None = None) -> RelayConfig:
    """Read ``relay.toml``, ``relay.key`` and ``network.json`` from ``directory``."""
    env = dict(os.environ if env is None else env)
    directory = directory.resolve()
    path = directory / CONFIG_FILE
    try:
        raw = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"there is no {CONFIG_FILE} in {directory}: run `relay init`") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    unknown = set(raw) - set(_SECTIONS)
    if unknown:
        raise ConfigError(f"unknown section(s) in {path}: {', '.join(sorted(unknown))}")
    sections = {
        name: _section(name, cls, raw.get(name, {}), env) for name, cls in _SECTIONS.items()
    }
    server: ServerConfig = sections["server"]
    if bool(server.tls_cert) != bool(server.tls_key):
        raise ConfigError("[server] tls_cert and tls_key must be given together")
    for url in [server.public_url, *server.also_public_urls.split(",")]:
        if url.strip():
            origin_of(url.strip())
    metrics: MetricsConfig = sections["metrics"]
    if metrics.port and not _is_loopback(metrics.host):
        raise ConfigError("[metrics] host must be a loopback address (127.0.0.1 or ::1): "
                          "let a local Prometheus agent or an authenticated proxy reach it")
    store: StoreConfig = sections["store"]
    if store.url and not store.is_postgresql:
        raise ConfigError("[store] url must be empty (SQLite in the relay directory) or "
                          "postgresql://user@host[:port]/database")
    if store.is_postgresql and store.pool_size < 2:
        raise ConfigError("[store] pool_size must be at least 2")
    if sections["logging"].format not in ("auto", "json", "console"):
        raise ConfigError("[logging] format must be auto, json or console")
    _check_protocol_bounds(sections["limits"])
    log_seed, token_key = read_keys(directory / KEY_FILE)
    return RelayConfig(
        directory=directory,
        network=read_anchor(directory / NETWORK_FILE),
        log_seed=log_seed,
        token_key=token_key,
        **sections,
    )
