"""The shipped deploy/nginx.conf and deploy/Caddyfile, served by the real nginx and Caddy.

Each test derives a configuration from the shipped file by replacing only what must differ
on a test machine (ports on loopback, the certificate made by the test, paths for logs and
temporary files; each replacement must find its text, so a reshaped file fails here rather
than going untested), starts the proxy in front of a real relay process and runs a send, a
receive over the WebSocket event stream and a file drop through it over TLS, trusting the
test certificate as a private CA. Skipped with a reason where the proxy is not installed;
under ``CI=true`` a missing proxy is a failure.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from client import Client
from tests.integration.kokcli import kok, kok_env
from tests.integration.people import PASSPHRASE, anchor_of, close_all, unique
from tests.ops.opsworld import ci_requires, make_certificate, make_pair
from tests.support.actors import Api
from tests.support.relayproc import RelayProcess, free_port

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
NGINX = Path("/usr/sbin/nginx")
CADDY = Path("/usr/bin/caddy")
READY_TIMEOUT = 15.0


def replace(text: str, old: str, new: str) -> str:
    """Replace ``old`` (which the shipped file must contain) by ``new``."""
    assert old in text, f"the shipped file no longer contains {old!r}"
    return text.replace(old, new)


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


def wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the proxy exited with {proc.returncode}:\n"
                                 + log.read_text(errors="replace")[-3000:])
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("the proxy did not listen in time:\n" + log.read_text()[-3000:])


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)


def nginx_config(work: Path, cert: Path, key: Path, relay_port: int, tls_port: int,
                 http_port: int) -> Path:
    """deploy/nginx.conf with test ports, certificate and paths, inside a minimal main file."""
    site = (DEPLOY / "nginx.conf").read_text()
    v6 = ipv6_loopback()
    site = replace(site, "listen 443 ssl http2;", f"listen 127.0.0.1:{tls_port} ssl http2;")
    site = replace(site, "listen [::]:443 ssl http2;",
                   f"listen [::1]:{tls_port} ssl http2;" if v6 else "")
    site = replace(site, "listen 80;", f"listen 127.0.0.1:{http_port};")
    site = replace(site, "listen [::]:80;", f"listen [::1]:{http_port};" if v6 else "")
    site = replace(site, "/etc/letsencrypt/live/relay.example.org/fullchain.pem", str(cert))
    site = replace(site, "/etc/letsencrypt/live/relay.example.org/privkey.pem", str(key))
    site = replace(site, "/var/log/nginx/kok-relay.error.log", str(work / "site-error.log"))
    site = replace(site, "http://127.0.0.1:8787", f"http://127.0.0.1:{relay_port}")
    temp = "\n".join(f"    {kind}_temp_path {work / kind};"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    user = "user root root;\n" if os.geteuid() == 0 else ""
    main = (f"{user}daemon off;\nworker_processes 1;\npid {work / 'nginx.pid'};\n"
            f"error_log {work / 'error.log'} warn;\nevents {{ worker_connections 128; }}\n"
            f"http {{\n{temp}\n    access_log off;\n{site}\n}}\n")
    path = work / "nginx.conf"
    path.write_text(main)
    return path


def caddy_config(work: Path, cert: Path, key: Path, relay_port: int, tls_port: int) -> Path:
    """deploy/Caddyfile with the test address and certificate, admin endpoint off."""
    site = (DEPLOY / "Caddyfile").read_text()
    site = replace(site, "relay.example.org {",
                   f"https://127.0.0.1:{tls_port} {{\n\ttls {cert} {key}")
    site = replace(site, "reverse_proxy 127.0.0.1:8787", f"reverse_proxy 127.0.0.1:{relay_port}")
    options = ("{\n\tadmin off\n\tauto_https disable_redirects\n"
               "\tdefault_sni 127.0.0.1\n}\n")
    path = work / "Caddyfile"
    path.write_text(options + site)
    return path


@pytest.fixture
def tls(tmp_path: Path) -> tuple[Path, Path]:
    return make_certificate(tmp_path)


@pytest.fixture
def proxied_relay(tmp_path: Path) -> Iterator[tuple[RelayProcess, int]]:
    """A relay whose public URL is the proxy's https origin on a free loopback port."""
    tls_port = free_port()
    relay = RelayProcess.start(tmp_path / "relay-base", env={
        "KOK_RELAY_SERVER_PUBLIC_URL": f"https://127.0.0.1:{tls_port}"})
    try:
        yield relay, tls_port
    finally:
        relay.stop()


@pytest.fixture
async def trusting_http(tls: tuple[Path, Path]) -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client that trusts the test certificate only (as with a private CA)."""
    context = ssl.create_default_context(cafile=str(tls[0]))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as http:
        yield http


async def exchange_through(url: str, http: aiohttp.ClientSession, relay: RelayProcess) -> None:
    """Orgs, a send, a receive over the WebSocket and a 3 MiB drop, all through ``url``."""
    api = Api(url, http)
    pair = await make_pair(api, relay.network_key)
    alice, bob = await api.login(pair.alice), await api.login(pair.bob)
    listening = asyncio.create_task(pair.receive_ws(bob, 1))
    await asyncio.sleep(0.3)  # the stream is open (and has replayed nothing) before the send
    sent = await pair.send(alice, "through the proxy")
    [pushed] = await asyncio.wait_for(listening, 15)
    assert pushed["id"] == sent["id"]
    data = os.urandom(3 * 1024 * 1024 + 17)
    drop_id = await pair.drop(alice, data)
    status, body = await pair.download(bob, drop_id)
    assert status == 200 and body == data


def start_nginx(work: Path, tls: tuple[Path, Path], relay_port: int, tls_port: int,
                http_port: int) -> subprocess.Popen[bytes]:
    """nginx with the derived configuration (checked by ``nginx -t`` first), listening."""
    work.mkdir()
    config = nginx_config(work, *tls, relay_port, tls_port, http_port)
    checked = subprocess.run([str(NGINX), "-t", "-p", str(work), "-e", str(work / "error.log"),
                              "-c", str(config)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    assert "warn" not in checked.stderr, checked.stderr
    log = work / "nginx.out"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(NGINX), "-p", str(work), "-e", str(work / "error.log"),
                                 "-c", str(config)], stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_port(tls_port, proc, log)
    except BaseException:
        stop(proc)
        raise
    return proc


@pytest.mark.skipif(not NGINX.exists(), reason=ci_requires("nginx (/usr/sbin/nginx)")
                    if not NGINX.exists() else "")
async def test_shipped_nginx_conf_carries_send_websocket_and_drop(
        tmp_path: Path, tls: tuple[Path, Path], proxied_relay: tuple[RelayProcess, int],
        trusting_http: aiohttp.ClientSession) -> None:
    relay, tls_port = proxied_relay
    http_port = free_port()
    proc = start_nginx(tmp_path / "nginx", tls, relay.port, tls_port, http_port)
    try:
        url = f"https://127.0.0.1:{tls_port}"
        async with trusting_http.get(url + "/healthz") as resp:
            assert resp.status == 200
            assert resp.headers["Server"] == "nginx"  # server_tokens off: no version
        async with trusting_http.get(f"http://127.0.0.1:{http_port}/v1/info",
                                     allow_redirects=False) as resp:
            assert resp.status == 308
            assert resp.headers["Location"] == "https://127.0.0.1/v1/info"
        await exchange_through(url, trusting_http, relay)
    finally:
        stop(proc)
    relay.assert_log_clean()


@pytest.mark.skipif(not CADDY.exists(), reason=ci_requires("Caddy (/usr/bin/caddy)")
                    if not CADDY.exists() else "")
async def test_shipped_caddyfile_carries_send_websocket_and_drop(
        tmp_path: Path, tls: tuple[Path, Path], proxied_relay: tuple[RelayProcess, int],
        trusting_http: aiohttp.ClientSession) -> None:
    relay, tls_port = proxied_relay
    work = tmp_path / "caddy"
    work.mkdir()
    config = caddy_config(work, *tls, relay.port, tls_port)
    env = {**os.environ, "HOME": str(work), "XDG_DATA_HOME": str(work / "data"),
           "XDG_CONFIG_HOME": str(work / "config")}
    log = work / "caddy.out"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(CADDY), "run", "--config", str(config),
                                 "--adapter", "caddyfile"], stdout=out,
                                stderr=subprocess.STDOUT, env=env)
    try:
        wait_for_port(tls_port, proc, log)
        url = f"https://127.0.0.1:{tls_port}"
        async with trusting_http.get(url + "/healthz") as resp:
            assert resp.status == 200
            assert "Server" not in resp.headers
        await exchange_through(url, trusting_http, relay)
    finally:
        stop(proc)
    relay.assert_log_clean()


@pytest.mark.skipif(not NGINX.exists(), reason=ci_requires("nginx (/usr/sbin/nginx)")
                    if not NGINX.exists() else "")
async def test_kok_trusts_the_private_ca_behind_nginx_only_when_told(
        tmp_path: Path, tls: tuple[Path, Path]) -> None:
    """OPERATOR.md's private-CA recipe: ``kok`` with ``KOK_CA_FILE`` through the shipped proxy."""
    tls_port = free_port()
    url = f"https://127.0.0.1:{tls_port}"
    relay = RelayProcess.start(tmp_path / "relay-base", network_profile=True,
                               env={"KOK_RELAY_SERVER_PUBLIC_URL": url})
    proc = start_nginx(tmp_path / "nginx", tls, relay.port, tls_port, free_port())
    home = tmp_path / "home"
    cert = tls[0]
    try:
        assert relay.home is not None
        office = await Client.open(relay.home, "network", PASSPHRASE, relay=url, ca_file=cert)
        org_id = unique("ca")
        _, request = await Client.new_org(home, org_id, PASSPHRASE, org_id=org_id,
                                          name="Beratungsstelle CA", relay=url,
                                          network=anchor_of(relay), ca_file=cert)
        await office.network.admit(request)
        admin = await Client.open(home, org_id, PASSPHRASE, ca_file=cert)
        await admin.org.activate()
        await close_all(office, admin)
        trusted = kok("whois", org_id, home=home, profile=org_id,
                      env=kok_env(KOK_CA_FILE=str(cert)))
        assert trusted.code == 0, trusted.err
        assert "Relay log key:" in trusted.out
        untrusted = kok("whois", org_id, home=home, profile=org_id)
        assert untrusted.code != 0
        assert "does not trust" in untrusted.error_line and "--ca-file" in untrusted.error_line
    finally:
        stop(proc)
        relay.stop()
