"""The one transport (``client/api.py``): one retry policy, survives a relay restart.

Pooled keep-alive connections die when the relay restarts; an idempotent call must be sent
again on a fresh connection instead of failing with ``relay_unreachable``.
"""

from __future__ import annotations

import ast
import json
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from client import Client
from client.errors import RelayCertificateError
from protocol.encoding import b64decode, b64encode
from protocol.message import LogPosition, MessagePayload, seal_message
from tests.integration.kokcli import kok, kok_env
from tests.integration.people import PASSPHRASE, close_all, new_org, new_staff, open_office
from tests.support.relayproc import RelayProcess

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
async def pair(relay: Any, tmp_path: Path):  # type: ignore[no-untyped-def]
    office = await open_office(relay)
    nord = await new_org(relay, tmp_path, office, "nord")
    sued = await new_org(relay, tmp_path, office, "sued")
    anna = await new_staff(relay, tmp_path, nord, "anna")
    ben = await new_staff(relay, tmp_path, sued, "ben")
    yield {"relay": relay, "anna": anna, "ben": ben}
    await close_all(office, nord, sued, anna, ben)


async def test_idempotent_calls_survive_the_dead_connections_of_a_relay_restart(
        pair: dict[str, Any]) -> None:
    """Called before the client noticed the restart: the pooled connection is dead."""
    anna, ben, relay = pair["anna"], pair["ben"], pair["relay"]
    message_id = await anna.send(to=[str(ben.org_id)], subject="vorher", body="da")
    sent = await anna.store.sent(message_id)
    token = b64decode(sent["recipients"][0]["token"], size=32, field="token")
    api = await anna.api()
    assert (await api.status(token))["state"] == "pending"
    relay.restart()  # same port; nothing ran on the client's event loop since
    assert (await api.status(token))["state"] == "pending"  # a POST without side effect
    relay.restart()
    assert (await api.messages(after=0))["messages"] == []
    org_id = str(ben.org_id)
    epoch = anna.directory.log.current_epoch(org_id)
    now = anna.now()
    payload = MessagePayload(id=secrets.token_bytes(16), from_org=str(anna.org_id),
                             from_staff=str(anna.staff_id), to=(org_id,), sent=now,
                             subject="nach dem Neustart", body="direkt",
                             thread=secrets.token_bytes(16), expires=now + 3600,
                             log=LogPosition.of(anna.directory.log))
    sealed = seal_message(payload, anna.signing_key(), org_id, epoch.number, epoch.public_key,
                          secrets.token_bytes(32))
    relay.restart()
    answers = await api.send(secrets.token_bytes(16), 3600, [  # a POST with an idempotency key
        {"to_org": org_id, "epoch": epoch.number, "sealed": b64encode(sealed)}])
    assert [a["to_org"] for a in answers] == [org_id]
    assert [m.subject for m in (await ben.sync()).messages] == ["vorher", "nach dem Neustart"]


async def test_sync_right_after_a_relay_restart_succeeds(pair: dict[str, Any]) -> None:
    anna, ben, relay = pair["anna"], pair["ben"], pair["relay"]
    await ben.sync()  # the client now holds pooled keep-alive connections
    await anna.sync()
    relay.restart()  # same port: those connections are dead, the relay is up
    message_id = await anna.send(to=[str(ben.org_id)], subject="nach dem Neustart", body="da")
    report = await ben.sync()
    assert [m.id for m in report.messages] == [message_id]


async def test_a_file_moves_right_after_a_relay_restart(pair: dict[str, Any],
                                                         tmp_path: Path) -> None:
    anna, ben, relay = pair["anna"], pair["ben"], pair["relay"]
    await ben.sync()
    source = tmp_path / "bericht.txt"
    source.write_bytes(b"Bericht " * 1000)
    first = await anna.send(to=[str(ben.org_id)], subject="eins", body="a",
                            attachments=[source])
    relay.restart()
    second = await anna.send(to=[str(ben.org_id)], subject="zwei", body="b",
                             attachments=[source])
    await ben.sync()
    relay.restart()
    out = tmp_path / "out"
    out.mkdir()
    saved = await ben.save(second, out)
    assert saved[0].path.read_bytes() == source.read_bytes()
    assert first != second


def test_only_the_api_module_creates_an_http_session() -> None:
    """Every request goes through ``RelayApi``: one retry policy, one set of headers."""
    makers = []
    for path in sorted((REPO / "client").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "ClientSession":
                makers.append(str(path.relative_to(REPO)))
            elif isinstance(node, ast.ImportFrom) and any(
                    alias.name == "ClientSession" for alias in node.names):
                makers.append(str(path.relative_to(REPO)))
    assert set(makers) == {"client/api.py"}, makers


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (a private CA of its own)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=relay",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key),
                    "-out", str(cert)], check=True, capture_output=True, timeout=60)
    return cert, key


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
async def test_an_untrusted_certificate_is_a_certificate_problem_and_ca_file_trusts_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = make_certificate(tmp_path)
    relay = RelayProcess.start(tmp_path / "r", tls=(cert, key), network_profile=True)
    try:
        with pytest.raises(RelayCertificateError) as untrusted:
            async with await open_office(relay) as office:
                await office.sync()
        assert untrusted.value.code == "relay_certificate"
        assert "--ca-file" in untrusted.value.message
        assert "Cannot reach" not in untrusted.value.message
        monkeypatch.setenv("LANG", "de_DE.UTF-8")
        assert "Zertifikatsproblem" in RelayCertificateError(relay.url, "x").message
        monkeypatch.delenv("LANG")

        async with await Client.open(relay.home, "network", PASSPHRASE,
                                     ca_file=cert) as office:
            assert (await office.sync()).log_size == 0

        # the CLI: the same error code without, success with --ca-file or KOK_CA_FILE
        home = Path(str(relay.home))
        refused = kok("--json", "sync", home=home, profile="network")
        assert refused.code == 1
        assert json.loads(refused.error_line)["error"]["code"] == "relay_certificate"
        assert kok("--ca-file", str(cert), "sync", home=home, profile="network").code == 0
        assert kok("sync", home=home, profile="network",
                   env=kok_env(KOK_CA_FILE=str(cert))).code == 0

        # the app's "use this computer as a new device" page: kok --ca-file (here as
        # KOK_CA_FILE) reaches the relay, which answers that no link has this code
        page = join_through_app(relay, tmp_path / "laptop-home", {"KOK_CA_FILE": str(cert)})
        assert "no device link with this code" in page and "does not trust" not in page
        assert str(cert) in page  # the page says which CA it trusts
    finally:
        relay.stop()


def join_through_app(relay: RelayProcess, home: Path, env: dict[str, str]) -> str:
    """Post the app's join form (a made-up code) on a computer without the profile; the
    page that comes back."""
    import http.client
    import re
    from urllib.parse import urlsplit

    from protocol.link import NAMEPLATE_DIGITS, PASSWORD_DIGITS
    from tests.app.appproc import AppProcess

    home.mkdir()
    app = AppProcess.start(home, "laptop", passphrase=None, env_extra=env)
    try:
        def request(method: str, path: str, body: bytes | None = None,
                    headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
            conn = http.client.HTTPConnection("127.0.0.1", app.port, timeout=60)
            conn.request(method, path, body=body,
                         headers={"Host": f"127.0.0.1:{app.port}", **(headers or {})})
            return conn.getresponse()

        launch = request("GET", urlsplit(app.launch_url).path)
        cookie = launch.headers["Set-Cookie"].split(";", 1)[0]
        form = request("GET", "/join", headers={"Cookie": cookie}).read().decode("utf-8")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form)
        assert csrf
        boundary = "kokjoin" + secrets.token_hex(8)
        fields = [("csrf", csrf.group(1)), ("code", "1" * (NAMEPLATE_DIGITS + PASSWORD_DIGITS)),
                  ("relay", relay.url)]
        parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
                 .encode() for k, v in fields]
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="network"; '
                     f'filename="kok-network.json"\r\nContent-Type: application/json\r\n\r\n'
                     .encode() + json.dumps(relay.network_anchor).encode() + b"\r\n")
        parts += [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'
                  f'{PASSPHRASE}\r\n'.encode() for k in ("new", "again")]
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        answer = request("POST", "/join", body, {
            "Cookie": cookie, "Origin": app.origin,
            "Content-Type": f"multipart/form-data; boundary={boundary}"})
        assert answer.status == 400
        return answer.read().decode("utf-8")
    finally:
        app.stop()
