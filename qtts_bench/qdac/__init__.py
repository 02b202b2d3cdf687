"""QDAC: residual-VQ speech codec with an ASR-supervised first codebook (arXiv 2507.12197).

Modules: ``config`` (architecture + recipe, no torch), ``model``, ``quantizer``, ``asr_head``,
``discriminators``, ``losses``, ``checkpoint`` (safetensors + JSON), ``data``, ``train``,
``usage`` (codebook usage and bitrate). Only ``config``/``checkpoint``/``usage`` avoid torch at
import time.
"""
