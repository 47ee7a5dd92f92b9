"""The kok relay: an aiohttp server that stores ciphertext and the least metadata."""

__version__ = "0.1.0"

__all__ = ["__version__"]
