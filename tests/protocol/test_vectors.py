"""The test vectors: the generator reproduces them, and each opens or fails as it states."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tomllib
from importlib import resources
from pathlib import Path
from types import ModuleType

import pytest

from protocol.errors import error_codes

VECTORS = Path(__file__).resolve().parents[2] / "protocol" / "vectors"
FILES = sorted(VECTORS.glob("*.json"))


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"kok_vectors_{name}", VECTORS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RUN = _load("run")


def test_generator_reproduces_the_files_byte_for_byte() -> None:
    result = subprocess.run([sys.executable, str(VECTORS / "generate.py"), "--check"],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_vector_behaves_as_stated(path: Path) -> None:
    vec = json.loads(path.read_text(encoding="utf-8"))
    assert list(vec)[:2] == ["expect", "description"]
    assert vec["expect"] == "success" or vec["expect"] in error_codes()
    assert RUN.outcome(path.stem, vec) == vec["expect"]


def test_a_wrong_expectation_is_noticed() -> None:
    vec = json.loads((VECTORS / "message_forwarded.json").read_text(encoding="utf-8"))
    assert RUN.outcome("message_forwarded", vec) != "success"
    vec["epoch"] = 1
    vec["sealed"] = json.loads((VECTORS / "message_valid.json").read_text())["sealed"]
    vec["to_org"], vec["epoch_secret"] = "org-b", json.loads(
        (VECTORS / "message_valid.json").read_text())["epoch_secret"]
    assert RUN.outcome("message_forwarded", vec) == "success"


def test_required_scenarios_are_covered() -> None:
    names = {p.stem for p in FILES}
    required = {
        "keys_fingerprint", "encoding_canonical", "encoding_whitespace", "encoding_not_nfc",
        "record_org_admit_valid", "record_org_revoke_valid", "record_org_rekey_valid",
        "record_staff_add_valid", "record_staff_remove_valid", "record_epoch_valid",
        "keylog_chain", "keylog_head_tampered", "message_valid", "message_tampered",
        "message_swapped_recipient", "message_swapped_epoch", "message_forwarded",
        "message_signer_not_staff", "message_removed_signer", "message_removed_signer_backdated",
        "message_backdated", "grant_valid", "grant_key_mismatch", "auth_valid",
        "stream_small_valid", "stream_two_chunks_valid", "stream_truncated_mid_chunk",
        "stream_truncated_final_chunk_missing", "stream_extended", "stream_reordered",
        "stream_bit_flipped",
    }
    assert required <= names
    expectations = {json.loads(p.read_text())["expect"] for p in FILES}
    for area in ("record", "message", "stream", "grant", "encoding"):
        assert any(p.stem.startswith(area) and json.loads(p.read_text())["expect"] == "success"
                   for p in FILES)
    assert len(expectations) > 25  # most error codes are exercised


def test_vectors_ship_as_package_data() -> None:
    pyproject = tomllib.loads((VECTORS.parents[1] / "pyproject.toml").read_text())
    assert "vectors/*.json" in pyproject["tool"]["setuptools"]["package-data"]["protocol"]
    shipped = {p.name for p in (resources.files("protocol") / "vectors").iterdir()
               if p.name.endswith(".json")}
    assert shipped == {p.name for p in FILES}
