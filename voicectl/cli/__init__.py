"""The command line (see :mod:`voicectl.cli.root`): each command's module is loaded when
that command runs."""

from voicectl.cli.root import cli, main

__all__ = ["cli", "main"]
