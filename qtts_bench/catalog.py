"""Built-in registry entries. Targets are imported only when used."""

from .registry import DATASETS, METRICS, SYSTEMS

# --- datasets -----------------------------------------------------------------------------
DATASETS.register("bundled", "qtts_bench.data.bundled:load_bundled",
                  "bundled real speech: Asterisk prompts (en/es/fr/it/ru) + LibriVox, 16 kHz")
DATASETS.register("manifest", "qtts_bench.data.manifest:load_manifest",
                  "JSONL manifest: id, audio, text, language, speaker, prompt_audio, prompt_text")
DATASETS.register("seedtts", "qtts_bench.data.manifest:load_seedtts",
                  "seed-tts-eval meta.lst: utt|prompt_text|prompt_wav|target_text[|gt_wav]")
DATASETS.register("folder", "qtts_bench.data.manifest:load_folder",
                  "folder of audio files with same-name .txt transcripts")
DATASETS.register("synthetic", "qtts_bench.testing:load_synthetic",
                  "deterministic synthetic speech-like signals (tests, smoke runs)", testing=True)
DATASETS.register("flite_slt_heldout", "qtts_bench.data.manifest:load_flite_slt_heldout",
                  "40 held-out sentences of QTTS's training voice (flite slt, synthetic, 16 kHz) for the decoding ablation")
DATASETS.register("pgc_hard_standin", "qtts_bench.data.pgc_hard:load_pgc_hard_standin",
                  "English hard TTS cases in 8 categories (a stand-in for the paper's in-house PGC-hard), "
                  "prompts from bundled speakers")

# --- systems ------------------------------------------------------------------------------
SYSTEMS.register("passthrough", "qtts_bench.systems.classical:Passthrough",
                 "identity codec: the upper bound of every reconstruction metric")
SYSTEMS.register("opus", "qtts_bench.systems.classical:OpusCodec",
                 "Opus (libopus via PyAV) at 16 kHz, constrained VBR by default; bitrate in bit/s")
SYSTEMS.register("mp3", "qtts_bench.systems.classical:Mp3Codec",
                 "MP3 (LAME via PyAV) at 16 kHz, CBR; bitrate in bit/s")
SYSTEMS.register("amr_nb", "qtts_bench.systems.classical:AmrNbCodec",
                 "AMR-NB (opencore via PyAV), 8 kHz, bitrate 4750..12200 bit/s")
SYSTEMS.register("g722", "qtts_bench.systems.classical:G722Codec",
                 "G.722 (PyAV), 16 kHz, 64 kbit/s")
SYSTEMS.register("codec2", "qtts_bench.systems.classical:Codec2Codec",
                 "Codec2 (pycodec2), 8 kHz, mode 3200..700 bit/s")
SYSTEMS.register("dummy_codec", "qtts_bench.testing:DummyCodec",
                 "test codec: uniform k-bit scalar quantiser, with failure injection", testing=True)
SYSTEMS.register("dummy_token_codec", "qtts_bench.testing:DummyTokenCodec",
                 "test token codec: codebook 0 = frame index mod size, others 0 (analytic code usage)",
                 testing=True)
SYSTEMS.register("dummy_codec_lm_tts", "qtts_bench.testing:DummyCodecLmTTS",
                 "test TTS over codec tokens: codebook k of frame t = (t + k) mod size (analytic usage)",
                 testing=True)
SYSTEMS.register("dummy_tts", "qtts_bench.testing:DummyTTS",
                 "test TTS: speech-like signal seeded by the text, optional sleep / streaming", testing=True)
# --- TTS engines (offline, real; fixed voices, no prompting) -------------------------------
SYSTEMS.register("kokoro", "qtts_bench.systems.kokoro:KokoroTTS",
                 "Kokoro-82M int8 (kokoro-onnx), 24 kHz, deterministic; voice jm_kumo, lang en-us ('tts' extra)")
SYSTEMS.register("piper", "qtts_bench.systems.piper:PiperTTS",
                 "Piper VITS, en_US-joe-medium, 22.05 kHz, streams per sentence; noise 0 = deterministic "
                 "('piper' extra, GPL-3)")
SYSTEMS.register("espeak_ng", "qtts_bench.systems.tts_cli:EspeakNgTTS",
                 "espeak-ng formant TTS (apt espeak-ng), 22.05 kHz; voice en-us, speed 175 wpm")
SYSTEMS.register("flite", "qtts_bench.systems.tts_cli:FliteTTS",
                 "CMU Flite (apt flite), English; voice slt (16 kHz), kal16, awb, rms, kal (8 kHz)")
SYSTEMS.register("festival", "qtts_bench.systems.tts_cli:FestivalTTS",
                 "Festival text2wave (apt festival festvox-kallpc16k), English; voice kal_diphone, 16 kHz")

# --- QTTS (autoregressive TTS over QDAC tokens) -------------------------------------------
SYSTEMS.register("qtts", "qtts_bench.systems.qtts:QttsTTS",
                 "QTTS over QDAC tokens, 16 kHz, streams (params: checkpoint = shipped name or folder from "
                 "`train qtts`, decoder hierarchical|multihead|single, temperature, top_k, top_p, max_seconds, "
                 "stream_chunk_frames)")
# The shipped CPU models (docs/qtts.md): 5.65 M parameters each for the two decoders, one
# synthetic voice (flite slt), trained without prompts, so they speak unprompted.
for _decoder, _what in (("hierarchical", "Hierarchical Parallel decoder (dual AR), 4 codebooks"),
                        ("multihead", "Delay Multihead decoder, 4 codebooks"),
                        ("single", "single-codebook baseline (QDAC codebook 1)")):
    SYSTEMS.register(f"qtts-{_decoder}", "qtts_bench.systems.qtts:QttsTTS",
                     f"QTTS CPU model, {_what}, flite slt voice, unprompted; babbles (docs/qtts.md)",
                     checkpoint=f"qtts-{_decoder}", use_prompt=False)

# --- outside systems (TTS run elsewhere) -------------------------------------------------
SYSTEMS.register("outputs", "qtts_bench.systems.outside:OutputsTTS",
                 "pre-generated audio, <dir>/<id>.wav|.flac per item (seed-tts-eval layout); a missing file "
                 "fails its utterance; no timing")
SYSTEMS.register("command", "qtts_bench.systems.outside:CommandTTS",
                 "your TTS command line per utterance from a template ({text}, {prompt_audio}, {out}...), "
                 "no shell, timeout; timed")

# --- metrics ------------------------------------------------------------------------------
METRICS.register("pesq_wb", "qtts_bench.metrics.signal:PesqWB", "PESQ P.862.2 wide-band at 16 kHz (MOS-LQO)")
METRICS.register("pesq_nb", "qtts_bench.metrics.signal:PesqNB", "PESQ P.862 narrow-band at 8 kHz (MOS-LQO)")
METRICS.register("stoi", "qtts_bench.metrics.signal:Stoi", "STOI (pystoi, 10 kHz internal)")
METRICS.register("estoi", "qtts_bench.metrics.signal:Estoi", "extended STOI (pystoi)")
METRICS.register("si_sdr", "qtts_bench.metrics.signal:SiSdr", "scale-invariant SDR, zero-mean (dB)")
METRICS.register("sim_o", "qtts_bench.metrics.speaker:SimO",
                 "speaker similarity of output to the prompt (SIM-o), cosine; backend resemblyzer|speechbrain_ecapa|wavlm_ecapa")
METRICS.register("sim_r", "qtts_bench.metrics.speaker:SimR", "speaker similarity of output to the ground truth (SIM-r), cosine")
METRICS.register("dnsmos_sig", "qtts_bench.metrics.mos:DnsmosSig", "DNSMOS P.835 SIG (speechmos ONNX, 16 kHz)")
METRICS.register("dnsmos_bak", "qtts_bench.metrics.mos:DnsmosBak", "DNSMOS P.835 BAK")
METRICS.register("dnsmos_ovrl", "qtts_bench.metrics.mos:DnsmosOvrl", "DNSMOS P.835 OVRL")
METRICS.register("dnsmos_p808", "qtts_bench.metrics.mos:DnsmosP808", "DNSMOS P.808 MOS")
METRICS.register("plcmos", "qtts_bench.metrics.mos:Plcmos", "PLCMOS v2 (speechmos ONNX, seeded rater embeddings)")
METRICS.register("distillmos", "qtts_bench.metrics.mos:DistillMos", "DistillMOS (weights in the distillmos wheel)")
METRICS.register("utmos", "qtts_bench.metrics.mos:Utmos", "UTMOS22 strong from a local SpeechMOS checkout + checkpoint")
METRICS.register("rtf", "qtts_bench.metrics.speed:Rtf", "real-time factor; aggregate = sum seconds / sum audio seconds; p50/p95")
METRICS.register("ttft", "qtts_bench.metrics.speed:Ttft", "time to first audio chunk (streaming systems), s; p50/p95")
METRICS.register("peak_memory", "qtts_bench.metrics.speed:PeakMemory",
                 "peak RSS (CPU) or CUDA max allocated during the call, bytes")
METRICS.register("bitrate", "qtts_bench.metrics.bitrate:Bitrate",
                 "measured bit/s = encoded bits / input seconds (nominal in extra)")
METRICS.register("codebook_perplexity", "qtts_bench.metrics.codebook:CodebookPerplexity",
                 "token codecs: mean per-codebook perplexity of an utterance's codes; corpus usage and "
                 "dead-code fraction pooled in summary.json")
METRICS.register("codebook_entropy", "qtts_bench.metrics.codebook:CodebookEntropy",
                 "token codecs: mean per-codebook entropy of an utterance's codes (bit/code)")
METRICS.register("slow_metric", "qtts_bench.testing:SlowMetric",
                 "test metric: output RMS, sleeping on chosen items (per-metric timeouts)", testing=True)
METRICS.register("wer", "qtts_bench.metrics.asr.metric:Wer",
                 "corpus WER of the output (Σ errors / Σ ref words); Whisper base, whisper normaliser")
METRICS.register("wer_min2", "qtts_bench.metrics.asr.metric:WerMin2",
                 "corpus WER, per utterance the lower-error hypothesis of two ASR models (Whisper base + "
                 "tiny.en by default, param second_model); whisper normaliser")
METRICS.register("wer_utt_mean", "qtts_bench.metrics.asr.metric:WerUttMean",
                 "mean per-utterance WER (seed-tts-eval), seedtts normaliser")
METRICS.register("cer", "qtts_bench.metrics.asr.metric:Cer", "corpus CER of the output (zh/ja by character)")
METRICS.register("cer_utt_mean", "qtts_bench.metrics.asr.metric:CerUttMean",
                 "mean per-utterance CER (seed-tts-eval zh), seedtts normaliser")
METRICS.register("wer_reference", "qtts_bench.metrics.asr.metric:WerReference",
                 "corpus WER of the reference audio (ASR floor)")
METRICS.register("wer_reference_utt_mean", "qtts_bench.metrics.asr.metric:WerReferenceUttMean",
                 "mean per-utterance WER of the reference audio")
METRICS.register("cer_reference", "qtts_bench.metrics.asr.metric:CerReference", "corpus CER of the reference audio")
METRICS.register("cer_reference_utt_mean", "qtts_bench.metrics.asr.metric:CerReferenceUttMean",
                 "mean per-utterance CER of the reference audio")
SYSTEMS.register("qdac", "qtts_bench.systems.qdac:QdacCodec",
                 "QDAC RVQ codec, 16 kHz (params: checkpoint = shipped name or folder, n_codebooks)")
# Registry variants of the shipped QDAC checkpoints: one 16-codebook model decodes any prefix.
# qdac-N stays on round 1, the codec the shipped QTTS models were trained over (they pin its hash).
for _prefix, _checkpoint, _what, _frame_rate, _counts in (
        ("qdac", "qdac16-50hz-asr", "QDAC", 50, (1, 4, 8, 16)),
        ("qdac-r2", "qdac16-50hz-asr-r2", "QDAC round 2", 50, (1, 4, 8, 16)),
        ("qdac-r3", "qdac16-50hz-asr-r3", "QDAC round 3", 50, (1, 4, 8, 16)),
        ("qdac25", "qdac16-25hz-asr-r2", "QDAC round 2", 25, (4, 8, 16))):
    for _n in _counts:
        _books = "codebook 1 only" if _n == 1 else f"{_n} codebooks"
        _kbps = _frame_rate * _n * 11 / 1000  # 2048-entry codebooks: 11 bits per code
        SYSTEMS.register(f"{_prefix}-{_n}", "qtts_bench.systems.qdac:QdacCodec",
                         f"{_what}, {_books} ({_frame_rate} Hz, {_kbps:g} kbit/s; prefix of {_checkpoint})",
                         checkpoint=_checkpoint, n_codebooks=_n)
SYSTEMS.register("encodec", "qtts_bench.systems.neural_codecs:EncodecCodec",
                 "EnCodec from a local HF checkpoint folder (path, n_codebooks)")
SYSTEMS.register("dac", "qtts_bench.systems.neural_codecs:DacCodec",
                 "DAC from a local HF checkpoint folder (path, n_codebooks)")
SYSTEMS.register("mimi", "qtts_bench.systems.neural_codecs:MimiCodec",
                 "Mimi from a local HF checkpoint folder (path, n_codebooks)")
