"""Version of mvlt."""
__version__ = '0.1.0'
