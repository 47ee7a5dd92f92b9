"""What a relay holds for some organisations, as its store interface shows it (for ``kok demo``).

``python -m relay.inspect --dir RELAY_DIR --org nord --org sued`` prints, as one JSON object,
the fields every stored envelope has (there is no sender among them: the relay never learns
who sent what), each live envelope of those organisations (recipient org, key generation,
size and first bytes of the sealed box, received, expires) and the number of key-log
entries. It goes through ``RelayStore`` only, never through SQL, so it shows the same for
every store implementation. Development and demonstration aid: the serving relay's HTTP API
shows an organisation only its own mailbox, this reads the operator's store directly.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from .config import load_config
from .store import create_store
from .store.rows import StoredMessage

PAGE = 1000


async def stored_envelopes(directory: Path, org_ids: list[str],
                           now: int | None = None) -> dict[str, Any]:
    """The relay's view of ``org_ids``' mailboxes and the size of its key log."""
    config = load_config(directory)
    store = create_store(config, readers=1)
    await store.open()
    try:
        when = int(time.time()) if now is None else now
        envelopes: list[StoredMessage] = []
        for org_id in org_ids:
            after = 0
            while page := await store.list_messages(org_id, after, PAGE, when):
                envelopes += page
                after = page[-1].cursor
        log_entries = len(await store.log_records())
    finally:
        await store.close()
    envelopes.sort(key=lambda m: m.cursor)
    return {
        "fields": [f.name for f in dataclasses.fields(StoredMessage)],
        "envelopes": [{"cursor": m.cursor, "to_org": m.to_org, "epoch": m.epoch,
                       "size": len(m.sealed), "start": m.sealed[:12].hex(),
                       "received": m.received, "expires": m.expires} for m in envelopes],
        "log_entries": log_entries,
    }


def main(argv: list[str] | None = None) -> None:
    """Print ``stored_envelopes`` of ``--org`` (repeatable) in ``--dir`` as JSON."""
    parser = argparse.ArgumentParser(prog="python -m relay.inspect", description=__doc__)
    parser.add_argument("--dir", required=True, type=Path)
    parser.add_argument("--org", action="append", default=[])
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(stored_envelopes(args.dir, args.org))))


if __name__ == "__main__":
    main()
