"""Carrying out a plan: the executor, the journal's fold and recovery, lost-reply reconciliation."""
