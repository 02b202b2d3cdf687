"""qtts-bench: evaluation and benchmarking harness for speech codecs and TTS systems."""

__version__ = "0.1.0"
RESULTS_SCHEMA_VERSION = 1
