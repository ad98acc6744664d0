"""TFLocoformerNet with its front end chosen by name: the reference conv, band-split, SFC-CA."""

from __future__ import annotations

import pytest
import torch
from asteroid.models import BaseModel

import asteroid_lir.models  # noqa: F401  (registers the models with Asteroid)
from asteroid_lir.convert.espnet import reference_config
from asteroid_lir.masknn import TFLocoformer
from asteroid_lir.models import TFLocoformerNet

TINY = dict(n_layers=1, emb_dim=8, attention_dim=8, n_heads=2, num_groups=2,
            ffn_hidden_dim=[8, 8], n_fft=64, hop_length=16, sample_rate=8000)  # fmt: skip
BANDS = {"band_config": "musical", "n_bands": 8}


def build(encoder: str, **kwargs) -> TFLocoformerNet:
    torch.manual_seed(0)
    bands = {} if encoder == "conv" else dict(BANDS)
    if encoder == "sfc":
        bands["encoder_kwargs"] = {"n_heads": 2}
    return TFLocoformerNet(n_src=2, encoder=encoder, **bands, **TINY, **kwargs).eval()


@pytest.mark.parametrize("encoder", ["conv", "band_split", "sfc"])
def test_each_front_end_separates_and_round_trips(encoder, tmp_path):
    model = build(encoder, n_iters=2)
    wav = torch.randn(2, 501)
    with torch.no_grad():
        est = model(wav)
        z, _ = model.separator.embed(model.stft(wav))
    assert est.shape == (2, 2, 501)
    # Band front ends run the blocks on the bands instead of the 33 bins.
    assert z.shape[-1] == (33 if encoder == "conv" else 8)
    torch.save(model.serialize(), tmp_path / "m.pth")
    loaded = BaseModel.from_pretrained(str(tmp_path / "m.pth")).eval()
    assert loaded.get_model_args()["encoder"] == encoder
    with torch.no_grad():
        torch.testing.assert_close(loaded(wav), est)
        assert len(model.forward_steps(wav)) == 2


def test_sfc_front_end_is_smaller_than_band_split():
    def front_end_params(encoder):
        model = build(encoder)
        return sum(p.numel() for m in (model.separator.stem, model.separator.deconv)
                   for p in m.parameters())  # fmt: skip

    assert front_end_params("sfc") < front_end_params("band_split")


def test_front_end_errors_are_named():
    with pytest.raises(ValueError, match="Unknown encoder 'mel'"):
        TFLocoformer(n_layers=1, emb_dim=8, attention_dim=8, encoder="mel")
    with pytest.raises(ValueError, match="needs the sample_rate and n_fft"):
        TFLocoformer(n_layers=1, emb_dim=8, attention_dim=8, encoder="sfc")
    with pytest.raises(ValueError, match="Only a \\(1, n_layers, 1\\)"):
        reference_config(build("band_split").separator)
    with pytest.raises(TypeError, match=r"encoder_kwargs \['n_head'\]"):
        TFLocoformerNet(encoder="sfc", encoder_kwargs={"n_head": 2}, **BANDS, **TINY)
