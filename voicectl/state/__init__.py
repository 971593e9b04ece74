"""The state: its file format, its store, the apply journal, the lock, and pure transitions."""
