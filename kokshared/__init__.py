"""Small helpers both ``client`` and ``relay`` use; imports neither (a test checks it).

``private_files``: the atomic writer of files only their owner may read. ``ports``: a free
loopback port (the demo's relay and the tests' relays).
"""

__all__: list[str] = []
