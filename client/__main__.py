"""``python -m client`` is the ``kok`` command."""

from .cli import main

main(prog_name="kok")
