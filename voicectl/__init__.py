"""voicectl: GitOps for cloned voices on Coze."""

__version__ = "0.1.0"
