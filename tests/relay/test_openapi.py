"""protocol/openapi.yaml documents exactly the routes the relay serves, and every error code."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import yaml

from protocol import SigningKeyPair
from relay.app import create_app
from relay.config import load_config
from relay.devnetwork import network_anchor
from relay.errors import all_codes
from relay.initdir import init_relay
from tests.support.actors import rand

METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def _document() -> dict:
    return yaml.safe_load((resources.files("protocol") / "openapi.yaml").read_text("utf-8"))


def _app_routes(tmp_path: Path) -> set[tuple[str, str]]:
    anchor = tmp_path / "network.json"
    anchor.write_text(json.dumps(network_anchor("N", SigningKeyPair.from_seed(rand()))))
    init_relay(tmp_path / "relay", anchor)
    app = create_app(load_config(tmp_path / "relay", env={}))
    return {(route.method, route.resource.canonical) for route in app.router.routes()
            if route.resource is not None}


def test_document_routes_equal_app_routes(tmp_path: Path) -> None:
    document = _document()
    assert document["openapi"].startswith("3.1")
    documented = {(method.upper(), path) for path, item in document["paths"].items()
                  for method in item if method in METHODS}
    served = _app_routes(tmp_path)
    assert documented - served == set(), "documented but not served"
    assert served - documented == set(), "served but not documented"


def test_every_relay_error_code_is_documented() -> None:
    documented = set(_document()["components"]["schemas"]["Problem"]["properties"]["code"]["enum"])
    missing = set(all_codes()) - documented
    assert missing == set()


def test_every_operation_documents_its_answers() -> None:
    for path, item in _document()["paths"].items():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            assert operation.get("operationId"), (method, path)
            assert operation.get("responses"), (method, path)
            if operation.get("security"):
                assert "401" in operation["responses"], (method, path)
