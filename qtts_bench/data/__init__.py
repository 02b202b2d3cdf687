"""Datasets: the item model, importers (JSONL manifest, seed-tts-eval meta.lst, folders), bundled set."""
