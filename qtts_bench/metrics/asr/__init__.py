"""WER / CER with pluggable Whisper backends.

Modules: ``wer`` (alignment, S/D/I), ``normalize`` (text profiles), ``scoring`` (text vs text),
``models`` (where weights come from), ``backends`` (faster-whisper, openai-whisper, transformers),
``transcriber`` (checks, VAD, batching, cache), ``metric`` (registered Metric classes).
Nothing heavy is imported here.
"""
