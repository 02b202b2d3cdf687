"""QDAC: residual-VQ speech codec with an ASR-supervised first codebook (arXiv 2507.12197).

Modules: ``config`` (architecture + recipe, no torch), ``model``, ``quantizer``, ``asr_head``,
``discriminators``, ``losses``, ``checkpoint`` (safetensors + JSON), ``data``, ``train``,
``evaluate`` (development scoring; codebook usage lives in ``metrics.codebook``). Only
``config``/``checkpoint`` avoid torch at import time.
"""
