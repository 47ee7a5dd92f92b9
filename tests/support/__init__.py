"""Shared test helpers: a real relay process, and protocol-level actors to drive it."""
