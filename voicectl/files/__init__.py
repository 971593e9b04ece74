"""Files voicectl writes and reads that anyone could have written: atomic writes, no links, JSON."""
