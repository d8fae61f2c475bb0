"""Frost against the reference ``imagecorruptions`` (issue 12) and its texture option (issue 13).

The reference here is ``imagecorruptions-imaug``'s own ``frost`` function, run in the test. Its
random draws (texture index, crop top, crop left: three ``np.random.randint`` calls) are replaced
by given values where a test needs the same draws on both sides; everything else -- reading the
photographs with OpenCV, the bicubic rescale, the crop, the blend, the clip -- is the reference's
code.
"""

from __future__ import annotations

import sys

import imagecorruptions.corruptions as reference  # a runtime dependency of ROZ
import numpy as np
import pytest
import torch
from PIL import Image

from roz.errors import RozError
from roz.shifts.corruptions import Corruption, corrupt
from roz.shifts.registry import create_shift

frost_module = sys.modules["roz.shifts.corruptions.frost"]  # the package's .frost is the function
SIZE = 224


def reference_frost(img: np.ndarray, severity: int, draws, monkeypatch) -> np.ndarray:
    """The reference's frost on a uint8 HWC image with the given (index, top, left) draws."""
    values = iter(draws)
    with monkeypatch.context() as patch:
        patch.setattr(reference.np.random, "randint", lambda *args, **kwargs: next(values))
        out = reference.frost(Image.fromarray(img), severity)
    return np.uint8(out)  # imagecorruptions.corrupt() quantises the same way


def reference_textures(monkeypatch) -> list[np.ndarray]:
    """The six frost textures exactly as the reference rescales them for a SIZE x SIZE image."""
    captured = []
    real_resize = reference.cv2.resize

    def capture(*args, **kwargs):
        captured.append(real_resize(*args, **kwargs))
        return captured[-1]

    flat = np.full((SIZE, SIZE, 3), 128, np.uint8)
    with monkeypatch.context() as patch:
        patch.setattr(reference.cv2, "resize", capture)
        for i in range(6):
            reference_frost(flat, 1, (i, 0, 0), monkeypatch)
    return [t[..., ::-1].astype(np.float64) for t in captured]  # BGR -> RGB, as the reference crops


def ours_u8(x: torch.Tensor, severity: int, seeds: torch.Tensor, **kwargs) -> np.ndarray:
    y = corrupt(x, "frost", severity, seeds, **kwargs)
    return torch.floor(y * 255).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def test_texture_rescale_matches_reference(monkeypatch):
    """The deterministic step: ROZ's rescaled textures are the reference's to one uint8 step."""
    ref = reference_textures(monkeypatch)
    for i, want in enumerate(ref):
        got = frost_module._rescaled("reference", i, SIZE, SIZE, "cpu").permute(1, 2, 0).numpy() * 255
        assert got.shape == want.shape
        diff = np.abs(np.round(got) - want)
        assert diff.max() <= 1 and (diff > 0).mean() < 1e-3  # OpenCV's fixed-point vs float bicubic


def test_same_draws_same_output_as_reference(monkeypatch):
    """Given ROZ's own draws, the reference's code yields ROZ's output (natural-like images)."""
    gen = torch.Generator().manual_seed(0)
    base = torch.nn.functional.interpolate(torch.rand(4, 3, 14, 14, generator=gen), size=(SIZE, SIZE),
                                           mode="bicubic", align_corners=False).clamp(0, 1)
    imgs = (base * 255).round().to(torch.uint8)
    x = imgs.float() / 255
    seeds = torch.arange(4) + 11
    sizes = [tuple(frost_module._rescaled("reference", i, SIZE, SIZE, "cpu").shape[-2:]) for i in range(6)]
    draws = frost_module.crop_draws(seeds, sizes, SIZE, SIZE)
    for severity in range(1, 6):
        ours = ours_u8(x, severity, seeds).astype(int)
        for k, img in enumerate(imgs.permute(0, 2, 3, 1).numpy()):
            ref = reference_frost(img, severity, draws[k], monkeypatch).astype(int)
            diff = np.abs(ours[k] - ref)
            assert diff.max() <= 1 and (diff > 0).mean() < 0.05, (severity, k)


def exact_reference_mean(textures: list[np.ndarray], grey: int, severity: int) -> np.ndarray:
    """E[per-channel mean] of the reference's frost on a flat grey image, over its draws: texture
    uniform over six, crop corner uniform; a pixel's weight is how many crops cover it."""
    a, b = frost_module.FROST[severity - 1]
    means = []
    for t in textures:
        value = np.floor(np.clip(a * grey + b * t, 0, 255))
        weights = []
        for n, size in ((t.shape[0] - SIZE, t.shape[0]), (t.shape[1] - SIZE, t.shape[1])):
            cover = np.convolve(np.ones(n), np.ones(SIZE))  # crops starting at 0..n-1, SIZE wide
            weights.append(np.pad(cover, (0, size - len(cover))) / (n * SIZE))
        means.append(np.einsum("hwc,h,w->c", value, *weights))
    return np.mean(means, axis=0)


def crop_means(value: torch.Tensor, draws) -> np.ndarray:
    """Per draw (index, top, left): the per-channel mean of the SIZE x SIZE crop of ``value[index]``
    (``value``: six [3, h, w] images), by summed-area tables."""
    tables = []
    for v in value:
        table = torch.zeros(3, v.shape[1] + 1, v.shape[2] + 1, dtype=torch.float64)
        table[:, 1:, 1:] = v.double().cumsum(1).cumsum(2)
        tables.append(table)
    out = [tables[i][:, y + SIZE, x + SIZE] - tables[i][:, y, x + SIZE] - tables[i][:, y + SIZE, x]
           + tables[i][:, y, x] for i, y, x in draws]
    return torch.stack(out).numpy() / SIZE**2


def test_flat_grey_mean_matches_reference(monkeypatch):
    """Issue 12's check: the per-channel mean of ROZ's frost on a flat grey 224 px image over 4096
    seeds vs the reference's exact expectation, at every severity, within 1 uint8 level (a 4096-seed
    mean has a standard error of at most ~0.6 levels; measured deviation 0.18; the seeds are fixed,
    so the test is deterministic; the audit suspected a 5-level bias).

    Running the full corruption 4096 x 5 times takes minutes on a loaded 2-core machine, so the
    4096 crop means are read from summed-area tables of the blended textures; that this equals
    ROZ's real output is checked on the first 32 seeds."""
    ref_textures = reference_textures(monkeypatch)
    ours_textures = [frost_module._rescaled("reference", i, SIZE, SIZE, "cpu") for i in range(6)]
    grey, n, checked = 128, 4096, 32
    draws = frost_module.crop_draws(torch.arange(n), [tuple(t.shape[-2:]) for t in ours_textures], SIZE, SIZE)
    x = torch.full((checked, 3, SIZE, SIZE), grey / 255)
    for severity in range(1, 6):
        a, b = frost_module.FROST[severity - 1]
        value = [torch.floor((a * (grey / 255) + b * t).clamp(0, 1) * 255) for t in ours_textures]
        means = crop_means(value, draws)
        real = ours_u8(x, severity, torch.arange(checked)).mean(axis=(1, 2))
        assert np.abs(real - means[:checked]).max() < 0.1  # the tables give ROZ's output (float rounding)
        want = exact_reference_mean(ref_textures, grey, severity)
        got = means.mean(axis=0)
        assert np.abs(got - want).max() < 1.0, (severity, got, want)


# ----------------------------------------------------------------------------- issue 13


@pytest.fixture
def no_imagecorruptions(monkeypatch):
    """Simulate the package being absent (import fails) with fresh texture caches."""
    monkeypatch.setitem(sys.modules, "imagecorruptions", None)
    frost_module._reference_textures.cache_clear()
    frost_module._rescaled.cache_clear()
    yield
    frost_module._reference_textures.cache_clear()
    frost_module._rescaled.cache_clear()


def test_missing_textures_is_a_clear_error(no_imagecorruptions):
    x = torch.rand(2, 3, 48, 48)
    for make in (lambda: Corruption("frost", 3), lambda: corrupt(x, "frost", 3, torch.arange(2))):
        with pytest.raises(RozError) as err:
            make()
        assert "imagecorruptions" in str(err.value)
        assert "pip install imagecorruptions-imaug" in err.value.hint and "procedural" in err.value.hint


def test_procedural_textures_only_by_explicit_opt_in(no_imagecorruptions):
    x = torch.rand(3, 3, 48, 48)
    shift = Corruption("frost", 2, frost_textures="procedural")
    assert shift.params()["frost_textures"] == "procedural-v1"
    y = shift.apply(x, torch.arange(3))
    assert y.shape == x.shape and float((y - x).abs().mean()) > 0.05
    spec = {"name": "corruption", "corruption": "frost", "severity": 2, "frost_textures": "procedural"}
    assert create_shift(spec).params()["frost_textures"] == "procedural-v1"
    with pytest.raises(RozError, match="imagecorruptions"):
        create_shift({**spec, "frost_textures": "reference"})


def test_texture_option_recorded_and_checked():
    assert Corruption("frost", 1).params()["frost_textures"] == "reference"
    assert "frost_textures" not in Corruption("fog", 1).params()
    with pytest.raises(RozError, match="frost_textures"):
        Corruption("frost", 1, frost_textures="auto")
    x = torch.rand(1, 3, 40, 40)
    with pytest.raises(RozError, match="frost_textures"):
        corrupt(x, "frost", 1, torch.zeros(1), frost_textures="imagecorruptions")
