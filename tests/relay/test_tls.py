"""The relay terminates TLS itself when relay.toml names a certificate and key."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import aiohttp
import pytest

from tests.support.relayproc import RelayProcess


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
async def test_serves_https_with_the_configured_certificate(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=relay",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key),
                    "-out", str(cert)], check=True, capture_output=True, timeout=60)
    relay = RelayProcess.start(tmp_path / "r", tls=(cert, key))
    try:
        assert relay.url.startswith("https://")
        trusting = ssl.create_default_context(cafile=str(cert))
        async with aiohttp.ClientSession() as http:
            async with http.get(relay.url + "/v1/info", ssl=trusting) as answer:
                info = await answer.json()
            assert info["origin"] == relay.url
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                await http.get(relay.url + "/healthz")  # default trust store: refused
            with pytest.raises(aiohttp.ClientError):
                await http.get(relay.url.replace("https", "http") + "/healthz")
    finally:
        relay.stop()
