"""Systems under test: codecs (audio -> encoded -> audio) and TTS (text -> audio)."""
