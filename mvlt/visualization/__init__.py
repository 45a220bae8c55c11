"""Visualisation (registries: VISUALIZERS, VISBACKENDS)."""
