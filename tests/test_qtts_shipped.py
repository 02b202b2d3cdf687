"""The shipped QTTS checkpoints: small, tied to the shipped QDAC, registered as variants, and they
generate deterministically (they babble: intelligibility is measured by the decoding ablation)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="QTTS needs the 'torch' extra")
pytest.importorskip("safetensors", reason="QTTS checkpoints need the 'torch' extra")

from qtts_bench.qtts.checkpoint import SHIPPED_DIR, read_config, shipped_names  # noqa: E402
from qtts_bench.registry import SYSTEMS  # noqa: E402
from qtts_bench.systems.base import Request  # noqa: E402

SHIPPED = {"qtts-hierarchical": ("hierarchical", 4), "qtts-multihead": ("multihead", 4),
           "qtts-single": ("single", 1)}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_every_shipped_checkpoint_is_registered_small_and_labelled_synthetic():
    assert sorted(shipped_names()) == sorted(SHIPPED)
    for name, (decoder, n_codebooks) in SHIPPED.items():
        folder = SHIPPED_DIR / name
        assert (folder / "model.safetensors").stat().st_size < 15 * 2**20, name
        cfg, meta = read_config(folder)
        assert (cfg.decoder, cfg.n_codebooks) == (decoder, n_codebooks)
        assert meta["codec"]["checkpoint"] == "qdac16-50hz-asr"
        assert "synthetic speech: **yes**" in (folder / "card.md").read_text()
        assert SYSTEMS.entry(name).defaults == {"checkpoint": name, "use_prompt": False}, name


def test_equal_parameters_for_the_two_decoders():
    from qtts_bench.qtts.config import count_parameters

    counts = {name: count_parameters(read_config(SHIPPED_DIR / name)[0])["total"] for name in SHIPPED}
    h, m = counts["qtts-hierarchical"], counts["qtts-multihead"]
    assert abs(h - m) / m < 0.01, counts  # the ablation compares them at equal size


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_loads_with_the_shipped_codec_and_generates_deterministically(name):
    entry = SYSTEMS.entry(name)
    system = entry.load()(**entry.defaults, max_seconds=1.0)
    system.load("cpu")
    request = Request("u", text="we counted eleven sandwiches.", seed=3)
    first, again = system.generate(request), system.generate(request)
    assert first.audio.ndim == 1 and first.audio.size > 0 and np.isfinite(first.audio).all()
    assert first.codes.shape[0] == SHIPPED[name][1]
    np.testing.assert_array_equal(first.codes, again.codes)
    np.testing.assert_allclose(first.audio, again.audio, atol=1e-6)
    assert first.extra["prompt_used"] is False
