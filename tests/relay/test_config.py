"""relay.toml, environment overrides, the anchor check, and what ``relay init`` writes."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from protocol import SigningKeyPair
from protocol.message import MAX_TTL
from relay.config import ConfigError, load_config, origin_of
from relay.devnetwork import network_anchor
from relay.initdir import init_relay
from tests.support.actors import rand


@pytest.fixture
def relay_dir(tmp_path: Path) -> Path:
    anchor = tmp_path / "network.json"
    anchor.write_text(json.dumps(network_anchor("Net", SigningKeyPair.from_seed(rand()))))
    return init_relay(tmp_path / "relay", anchor, port=9999,
                      public_url="https://relay.example.org")


def test_init_writes_config_secrets_0600_and_anchor(relay_dir: Path) -> None:
    config = load_config(relay_dir, env={})
    assert config.server.port == 9999
    assert config.origin == "https://relay.example.org"
    assert config.limits.max_ttl == 30 * 86400
    assert len(config.log_seed) == 32 and config.log_seed != config.token_key
    for name in ("relay.key", "relay.toml", "network.json"):
        assert stat.S_IMODE((relay_dir / name).stat().st_mode) == 0o600
    assert stat.S_IMODE(relay_dir.stat().st_mode) == 0o700
    assert config.log_seed.hex() not in repr(config)


def test_init_refuses_to_overwrite_a_relay(relay_dir: Path, tmp_path: Path) -> None:
    key_before = (relay_dir / "relay.key").read_bytes()
    with pytest.raises(ConfigError, match="refusing to overwrite"):
        init_relay(relay_dir, tmp_path / "network.json")
    assert (relay_dir / "relay.key").read_bytes() == key_before


def test_environment_overrides_the_file(relay_dir: Path) -> None:
    config = load_config(relay_dir, env={"KOK_RELAY_LIMITS_MAX_TTL": "3600",
                                         "KOK_RELAY_SERVER_PORT": "1234",
                                         "KOK_RELAY_LOGGING_FORMAT": "json"})
    assert (config.limits.max_ttl, config.server.port, config.logging.format) == (
        3600, 1234, "json")
    with pytest.raises(ConfigError, match="KOK_RELAY_LIMITS_MAX_TTL"):
        load_config(relay_dir, env={"KOK_RELAY_LIMITS_MAX_TTL": "a week"})
    with pytest.raises(ConfigError, match="must not be negative"):
        load_config(relay_dir, env={"KOK_RELAY_LIMITS_MAX_TTL": "-1"})


def test_typos_and_bad_values_in_the_file_are_errors(relay_dir: Path) -> None:
    path = relay_dir / "relay.toml"
    original = path.read_text()
    for text, message in (
        (original.replace("max_ttl =", "max_tll ="), "unknown setting"),
        (original + "\n[extra]\n", "unknown section"),
        (original.replace('tls_cert = ""', 'tls_cert = "cert.pem"'), "together"),
        (original.replace('format = "auto"', 'format = "xml"'), "format"),
        (original.replace("port = 9999", "port = 'x'"), "port"),
        ("[server", "not valid TOML"),
        ("limits = 5\n", "must be a table"),
    ):
        path.write_text(text)
        with pytest.raises(ConfigError, match=message):
            load_config(relay_dir, env={})


def test_settings_beyond_the_protocols_promises_are_refused(relay_dir: Path) -> None:
    for env, message in (
        ({"KOK_RELAY_LIMITS_CHALLENGE_TTL": "61"}, "challenge_ttl must be 1 to 60"),
        ({"KOK_RELAY_LIMITS_CHALLENGE_TTL": "0"}, "challenge_ttl"),
        ({"KOK_RELAY_LIMITS_MAX_TTL": str(MAX_TTL + 1)}, "max_ttl must be 1 to 2592000"),
    ):
        with pytest.raises(ConfigError, match=message):
            load_config(relay_dir, env=env)
    edge = load_config(relay_dir, env={"KOK_RELAY_LIMITS_CHALLENGE_TTL": "60",
                                       "KOK_RELAY_LIMITS_MAX_TTL": str(MAX_TTL)})
    assert (edge.limits.challenge_ttl, edge.limits.max_ttl) == (60, MAX_TTL)


def test_a_forged_anchor_is_refused(tmp_path: Path) -> None:
    anchor = network_anchor("Net", SigningKeyPair.from_seed(rand()))
    anchor["fingerprint"] = SigningKeyPair.from_seed(rand()).fingerprint
    path = tmp_path / "network.json"
    path.write_text(json.dumps(anchor))
    with pytest.raises(ConfigError, match="fingerprint does not match"):
        init_relay(tmp_path / "relay", path)
    assert not (tmp_path / "relay" / "relay.key").exists()


def test_origin_is_scheme_host_and_port_only() -> None:
    assert origin_of("https://Relay.Example.org:443/path?q") == "https://relay.example.org"
    assert origin_of("http://127.0.0.1:8787/") == "http://127.0.0.1:8787"
    with pytest.raises(ConfigError):
        origin_of("ftp://x")
