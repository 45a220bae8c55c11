"""Loops (registry: LOOPS)."""
