"""kok client: the async library behind the ``kok`` command.

    async with await Client.open(home, "anna", passphrase) as kok:
        await kok.sync()
        for message in await kok.inbox():
            print(message.from_staff, message.subject)
        await kok.send(to=["beratung-nord"], subject="Rückfrage", body="...")

Everything else (profiles, the relay API, the mailbox, admin operations) is reachable
from ``Client``; errors are ``KokError`` with a stable ``code``.
"""

from ._client import Client
from .errors import KokError
from .models import DeliveryStatus, Message, SyncReport

__all__ = ["Client", "DeliveryStatus", "KokError", "Message", "SyncReport"]
