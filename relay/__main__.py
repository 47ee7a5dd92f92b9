"""``python -m relay`` runs the same commands as ``kok relay``."""

from .cli import main

main()
