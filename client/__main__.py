"""``python -m client`` is the ``kok`` command."""

from .cli import run

run()
