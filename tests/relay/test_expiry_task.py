"""The background expiry task keeps the relay serving when a purge fails, and says so."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from structlog.testing import capture_logs

from protocol import SigningKeyPair
from relay.config import load_config
from relay.devnetwork import network_anchor
from relay.expiry import run_expiry
from relay.initdir import init_relay
from relay.service import RelayService
from relay.store import SqliteStore
from tests.support.actors import rand


async def test_a_failing_purge_is_logged_by_type_and_the_task_goes_on(tmp_path: Path) -> None:
    anchor = tmp_path / "network.json"
    anchor.write_text(json.dumps(network_anchor("Net", SigningKeyPair.from_seed(rand()))))
    config = load_config(init_relay(tmp_path / "relay", anchor), env={})
    store = SqliteStore(config.database_path, readers=1)
    service = RelayService(config, store)
    await store.open()
    await service.start(0)
    await store.close()  # every purge from now on fails inside the store
    with capture_logs() as logs:
        task = asyncio.create_task(run_expiry(service, interval=3600))
        for _ in range(200):
            if logs:
                break
            await asyncio.sleep(0.01)
        assert not task.done()  # the failure did not end the task
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert logs and logs[0]["event"] == "purge_failed"
    assert set(logs[0]) == {"event", "log_level", "error"}  # the type only, never the text
    assert logs[0]["error"].isidentifier()
