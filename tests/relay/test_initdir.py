"""The relay.toml that ``relay init`` writes lists every setting with its default."""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
from pathlib import Path

import pytest

from protocol import SigningKeyPair
from relay.config import load_config, sections
from relay.devnetwork import network_anchor
from relay.initdir import NOTES, init_relay, render_config
from tests.support.actors import rand

OPERATOR = Path(__file__).resolve().parents[2] / "deploy" / "OPERATOR.md"


def all_settings() -> dict[str, object]:
    """``section.key`` -> default, straight from relay.config's dataclasses."""
    return {f"{name}.{f.name}": getattr(cls(), f.name)
            for name, cls in sections().items() for f in dataclasses.fields(cls)}


def test_every_setting_is_written_with_its_default() -> None:
    written = tomllib.loads(render_config())
    flat = {f"{section}.{key}": value for section, table in written.items()
            for key, value in table.items()}
    assert flat == all_settings()


def test_every_setting_has_a_note_and_no_note_is_stale() -> None:
    assert set(NOTES) == set(all_settings())


def test_given_values_replace_defaults_and_unknown_ones_are_refused() -> None:
    written = tomllib.loads(render_config({"server.port": 9000, "limits.max_ttl": 86400}))
    assert written["server"]["port"] == 9000 and written["limits"]["max_ttl"] == 86400
    with pytest.raises(ValueError, match=r"server\.prot"):
        render_config({"server.prot": 1})


def test_init_writes_a_file_the_relay_reads_back(tmp_path: Path) -> None:
    anchor = tmp_path / "network.json"
    anchor.write_text(json.dumps(network_anchor("Net", SigningKeyPair.from_seed(rand()))))
    relay_dir = init_relay(tmp_path / "relay", anchor, port=9999)
    config = load_config(relay_dir, env={})
    for key, default in all_settings().items():
        section, name = key.split(".")
        if section != "server":  # init sets host, port and public_url
            assert getattr(getattr(config, section), name) == default, key
    text = (relay_dir / "relay.toml").read_text("utf-8")
    for key in all_settings():
        assert re.search(rf"^{key.split('.')[1]} = ", text, re.MULTILINE), key


def test_the_operator_guide_lists_every_setting() -> None:
    guide = OPERATOR.read_text("utf-8")
    missing = [key for key in all_settings() if f"`{key.split('.')[1]}`" not in guide]
    assert not missing, f"deploy/OPERATOR.md's configuration table lacks {missing}"
