"""``make run``: a development relay on 127.0.0.1, bootstrapped under ``./var/`` if absent.

DEVELOPMENT ONLY. On first run this creates

    var/home/network/   a network-office profile (keystore with the network key, passphrase
                        "dev-relay-not-for-real-cases", printed below, never written)
    var/network.json    the network's public anchor
    var/relay/          the relay directory (``relay init``)

and then serves. Later runs reuse ``var/``. Delete ``var/`` to start over.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from kokshared.private_files import make_private_dir, use_private_umask

DEV_PASSPHRASE = "dev-relay-not-for-real-cases"  # noqa: S105 (development only, printed on start)
DEV_NETWORK_NAME = "Development network (not for real cases)"


def bootstrap(var: Path, port: int) -> bool:
    """Create the development network and relay under ``var`` unless they exist."""
    from .initdir import init_relay

    relay_dir = var / "relay"
    if (relay_dir / "relay.toml").exists():
        return False
    make_private_dir(var)
    url = f"http://127.0.0.1:{port}"
    anchor_path = var / "network.json"
    if not (var / "home" / "network" / "keystore").exists():
        create_network_office(var / "home", anchor_path, url)
    init_relay(relay_dir, anchor_path, port=port)
    return True


def create_network_office(home: Path, anchor_path: Path, url: str) -> None:
    """The network office's profile ``network`` under ``home``, made by the client itself.

    The relay never writes a client keystore: ``kok network init`` (run as a child process,
    so neither package imports the other) makes the profile and writes the public anchor.
    """
    env = {**os.environ, "KOK_PASSPHRASE": DEV_PASSPHRASE}
    subprocess.run([sys.executable, "-m", "client", "--home", str(home), "--profile", "network",
                    "network", "init", "--name", DEV_NETWORK_NAME, "--out", str(anchor_path),
                    "--relay", url], check=True, env=env, stdout=subprocess.DEVNULL)


def banner(var: Path, port: int, created: bool) -> str:
    """The few lines telling a developer how to point a client at this relay."""
    url = f"http://127.0.0.1:{port}"
    home = var / "home"
    lines = [
        "=" * 72,
        "kok relay -- DEVELOPMENT ONLY (test keys, fixed passphrase; never for real cases)",
        ("created" if created else "reusing") + f" {var}/ ; delete it to start over",
        f"relay URL:        {url}",
        f"network anchor:   {var / 'network.json'}",
        f"network profile:  KOK_HOME={home} kok --profile network ...   (passphrase: "
        f"{DEV_PASSPHRASE})",
        f"e.g.  KOK_HOME={home} kok org new my-org --name 'My Org' --relay {url} "
        f"--network {var / 'network.json'} --out my-org.request",
        "stop with Ctrl-C",
        "=" * 72,
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Bootstrap ``--dir`` if needed and serve on 127.0.0.1:``--port``."""
    parser = argparse.ArgumentParser(prog="python -m relay.devrun", description=__doc__)
    parser.add_argument("--dir", default="var", type=Path)
    parser.add_argument("--port", default=8787, type=int)
    args = parser.parse_args(argv)
    use_private_umask()
    var: Path = args.dir
    created = bootstrap(var, args.port)
    from .config import load_config
    from .privacylog import configure_logging
    from .server import run

    # --port wins over the port var/ was first made for (make run PORT=9000 on a reused var/)
    env = {**os.environ, "KOK_RELAY_SERVER_PORT": str(args.port)}
    config = load_config(var / "relay", env=env)
    print(banner(var, config.server.port, created), flush=True)
    configure_logging(config.logging)
    run(config)


if __name__ == "__main__":
    main()
