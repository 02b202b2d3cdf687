"""QTTS: autoregressive TTS over QDAC tokens (arXiv 2507.12197), with three decoders.

* ``hierarchical`` (Hierarchical Parallel, dual AR / RQ-Transformer): the backbone's hidden
  state per frame conditions a small depth transformer that emits codebooks 1..N in order, with
  its own per-frame KV cache (N depth steps per frame).
* ``multihead`` (Delay Multihead): N heads on the backbone, codebook k delayed by k frames
  (MusicGen delay pattern), all heads emit every step.
* ``single``: codebook 1 only (the paper's single-codebook baseline).

Modules: ``config`` (architecture + recipe, no torch), ``tokenizer`` (characters, no torch),
``model`` (backbone transformer + KV cache), ``decoders`` (the three decoders, the delay
pattern, generation loops), ``sampling``, ``inference`` (text -> frames -> chunked QDAC
decoding), ``checkpoint`` (safetensors + config.json + card), ``data`` and ``train``. Only
``config``, ``tokenizer`` and ``checkpoint`` avoid torch at import time. See docs/qtts.md.
"""
