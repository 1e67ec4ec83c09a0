"""Generators and checks of the documentation site, run by ``docs/hooks.py`` at build time."""
