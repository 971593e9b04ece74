"""The repository's declarations: voicectl.yaml, the voice files, their schemas, the takes
and their caches, and the files a new repository starts with."""
