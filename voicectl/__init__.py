"""voicectl: GitOps for cloned voices on Coze."""

__version__ = "0.2.0"
