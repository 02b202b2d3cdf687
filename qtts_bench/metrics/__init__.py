"""Metrics: pure per-utterance functions plus the metadata the runner and reports rely on."""
