"""The command line (see :mod:`voicectl.cli.root`); importing this registers every command."""

from voicectl.cli import gitops, init, remote, repo, service
from voicectl.cli.root import cli, main

__all__ = ["cli", "gitops", "init", "main", "remote", "repo", "service"]
