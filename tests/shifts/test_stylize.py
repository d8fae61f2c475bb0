"""On-the-fly AdaIN stylisation with a tiny random VGG-shaped network."""

from __future__ import annotations

import pytest
import torch

from roz.errors import ModelError
from roz.shifts.stylize import Stylize, build_decoder, build_vgg, load_adain

from support.synthetic_fixtures import write_image

WIDTHS = (4, 8, 8, 16)


def _init(net: torch.nn.Module) -> torch.nn.Module:
    """He-initialised convs so a random net passes signal (default init fades to a constant)."""
    for m in net.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            torch.nn.init.zeros_(m.bias)
    return net


@pytest.fixture(scope="module")
def adain_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("adain")
    torch.manual_seed(0)
    torch.save(_init(build_vgg(WIDTHS)).state_dict(), d / "vgg_normalised.pth")
    dec = _init(build_decoder(WIDTHS))
    with torch.no_grad():  # spread the output over [0, 1] so the clamp does not hide differences
        dec[28].weight.mul_(30)
        dec[28].bias.fill_(0.5)
    torch.save(dec.state_dict(), d / "decoder.pth")
    for k in range(3):
        write_image(d / "styles" / f"style{k}.png", seed=100 + k, size=(20, 16))
    return d


def test_public_layout_keys():
    keys = set(build_vgg().state_dict())
    assert {"0.weight", "2.weight", "29.weight", "51.weight"} <= keys and len(keys) == 34
    dkeys = {k.split(".")[0] for k in build_decoder().state_dict()}
    assert dkeys == {"1", "5", "8", "11", "14", "18", "21", "25", "28"}


def test_stylize_from_weight_files(adain_files):
    shift = Stylize(adain_files / "vgg_normalised.pth", adain_files / "decoder.pth", adain_files / "styles", alpha=1.0)
    x = torch.rand(3, 3, 32, 32)
    seeds = torch.tensor([1, 2, 3])
    out = shift(x, seeds)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    # per-sample == batched, and the style is a deterministic function of the seed
    torch.testing.assert_close(shift(x[1:2], seeds[1:2]), out[1:2], atol=1e-5, rtol=1e-4)
    assert [shift.style_index(s) for s in (1, 2, 3)] == [shift.style_index(s) for s in (1, 2, 3)]
    assert len({shift.style_index(s) for s in range(40)}) == 3
    p = shift.params()
    assert p["n_styles"] == 3 and p["alpha"] == 1.0 and "@" in p["encoder"]
    # odd sizes come back at the input size
    assert shift(torch.rand(1, 3, 30, 27), torch.tensor([4])).shape == (1, 3, 30, 27)


def test_alpha_blends_content_features(adain_files):
    enc, dec = load_adain(adain_files / "vgg_normalised.pth", adain_files / "decoder.pth")
    x = torch.rand(2, 3, 32, 32)
    s0 = Stylize(enc, dec, adain_files / "styles", alpha=0.0)
    with torch.no_grad():
        ref = dec(enc(x)).clamp(0, 1)
    torch.testing.assert_close(s0(x, torch.tensor([1, 2])), ref, atol=1e-5, rtol=1e-4)
    s1 = Stylize(enc, dec, adain_files / "styles", alpha=1.0)
    y1 = s1(x, torch.tensor([1, 2]))
    assert ref.std() > 0.01 and not torch.allclose(y1, ref, atol=1e-3)
    half = Stylize(enc, dec, adain_files / "styles", alpha=0.5)(x, torch.tensor([1, 2]))
    assert not torch.allclose(half, ref, atol=1e-3) and not torch.allclose(half, y1, atol=1e-3)


def test_bad_weights(tmp_path, adain_files):
    torch.save({"foo": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(ModelError):
        load_adain(tmp_path / "bad.pth", adain_files / "decoder.pth")
    with pytest.raises(ModelError):
        load_adain(tmp_path / "missing.pth", adain_files / "decoder.pth")


def test_shift_registry_spec(adain_files):
    from roz.shifts.registry import create_shift, parse_shift

    spec = (f"stylize:encoder={adain_files / 'vgg_normalised.pth'},decoder={adain_files / 'decoder.pth'},"
            f"style_dir={adain_files / 'styles'},alpha=0.5")
    (d,) = parse_shift(spec)
    s = create_shift(d)
    assert isinstance(s, Stylize) and s.alpha == 0.5
    assert s(torch.rand(1, 3, 32, 32), torch.tensor([0])).shape == (1, 3, 32, 32)
