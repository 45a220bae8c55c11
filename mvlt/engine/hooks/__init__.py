"""Hooks (registry: HOOKS)."""
