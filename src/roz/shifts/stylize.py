"""On-the-fly AdaIN stylisation (Huang & Belongie 2017), the construction of Stylized-ImageNet.

``Stylize(encoder, decoder, style_dir, alpha=1.0)`` restyles every image of a batch with a style
image chosen deterministically from its sample seed: ``out = decoder(alpha * AdaIN(f_c, f_s) +
(1 - alpha) * f_c)`` where ``f`` are VGG-19 features up to ``relu4_1`` and ``AdaIN`` gives the
content features the channel-wise mean and std of the style features. Geirhos et al. (2019) used
``alpha = 1`` and paintings from Kaggle's *Painter by Numbers* as styles.

Weights are the public ``pytorch-AdaIN`` state dicts: ``vgg_normalised.pth`` (the full 53-module
normalised VGG-19, of which the first 31 modules -- up to relu4_1 -- are used; it takes RGB in
[0, 1]) and ``decoder.pth``. They are loaded with ``torch.load(weights_only=True)``; the layer widths
are read from the weight shapes, so a narrow network with the same layout also loads (tests use
a tiny random one).

The style image is resized to the content image's size (``style_size`` overrides), and only its
feature statistics are kept (cached per style and size). The output is resized back to the input
size if the encoder's /8 downsampling does not divide it, and clamped to [0, 1].
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from roz.datasets.images import is_image_file, load_image
from roz.errors import DataError, ModelError
from roz.shifts.base import Shift

VGG_WIDTHS = (64, 128, 256, 512)
ENCODER_DEPTH = 31  # modules 0..30 = up to relu4_1


def build_vgg(widths=VGG_WIDTHS) -> nn.Sequential:
    """pytorch-AdaIN's normalised VGG-19 (53 modules) with stage widths ``widths``."""
    c1, c2, c3, c4 = widths
    layers = [nn.Conv2d(3, 3, 1)]

    def conv(ci, co):
        layers.extend([nn.ReflectionPad2d(1), nn.Conv2d(ci, co, 3), nn.ReLU()])

    conv(3, c1); conv(c1, c1)  # noqa: E702
    layers.append(nn.MaxPool2d(2, 2, 0, ceil_mode=True))
    conv(c1, c2); conv(c2, c2)  # noqa: E702
    layers.append(nn.MaxPool2d(2, 2, 0, ceil_mode=True))
    conv(c2, c3); conv(c3, c3); conv(c3, c3); conv(c3, c3)  # noqa: E702
    layers.append(nn.MaxPool2d(2, 2, 0, ceil_mode=True))
    conv(c3, c4); conv(c4, c4); conv(c4, c4); conv(c4, c4)  # noqa: E702
    layers.append(nn.MaxPool2d(2, 2, 0, ceil_mode=True))
    conv(c4, c4); conv(c4, c4); conv(c4, c4); conv(c4, c4)  # noqa: E702
    return nn.Sequential(*layers)


def build_decoder(widths=VGG_WIDTHS) -> nn.Sequential:
    """pytorch-AdaIN's decoder (mirror of the encoder up to relu4_1) with stage widths ``widths``."""
    c1, c2, c3, c4 = widths
    layers: list[nn.Module] = []

    def conv(ci, co, relu=True):
        layers.extend([nn.ReflectionPad2d(1), nn.Conv2d(ci, co, 3)] + ([nn.ReLU()] if relu else []))

    conv(c4, c3)
    layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
    conv(c3, c3); conv(c3, c3); conv(c3, c3); conv(c3, c2)  # noqa: E702
    layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
    conv(c2, c2); conv(c2, c1)  # noqa: E702
    layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
    conv(c1, c1); conv(c1, 3, relu=False)  # noqa: E702
    return nn.Sequential(*layers)


def _load_state(path: str | Path, what: str) -> dict:
    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelError(f"AdaIN {what} weights {path} not found",
                         hint="use the public pytorch-AdaIN files vgg_normalised.pth and decoder.pth")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 -- any unpickling failure is a bad weight file
        raise ModelError(f"cannot load AdaIN {what} weights {path}: {type(e).__name__}: {e}") from None
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ModelError(f"AdaIN {what} weights {path} are not a state_dict of tensors")
    return sd


def _widths_from_vgg(sd: dict) -> tuple[int, ...]:
    try:
        return tuple(int(sd[k].shape[0]) for k in ("2.weight", "9.weight", "16.weight", "29.weight"))
    except KeyError:
        raise ModelError("AdaIN encoder weights do not have the pytorch-AdaIN vgg_normalised layout "
                         "(keys 0.weight, 2.weight, ..., 29.weight)") from None


def load_adain(encoder_path: str | Path, decoder_path: str | Path) -> tuple[nn.Sequential, nn.Sequential]:
    """``(encoder up to relu4_1, decoder)`` from the public state-dict files, in eval mode."""
    esd, dsd = _load_state(encoder_path, "encoder"), _load_state(decoder_path, "decoder")
    widths = _widths_from_vgg(esd)
    vgg = build_vgg(widths)
    if len(esd) < 2 * sum(isinstance(m, nn.Conv2d) for m in vgg):  # truncated file: encoder part only
        vgg = vgg[:ENCODER_DEPTH]
    dec = build_decoder(widths)
    for net, sd, what in ((vgg, esd, "encoder"), (dec, dsd, "decoder")):
        try:
            net.load_state_dict(sd)
        except RuntimeError as e:
            raise ModelError(f"AdaIN {what} weights do not match the pytorch-AdaIN layout: {str(e)[:300]}") from None
    return vgg[:ENCODER_DEPTH].eval(), dec.eval()


def calc_mean_std(feat: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    B, C = feat.shape[:2]
    v = feat.reshape(B, C, -1).var(dim=2) + eps  # unbiased, as pytorch-AdaIN
    return feat.reshape(B, C, -1).mean(dim=2).view(B, C, 1, 1), v.sqrt().view(B, C, 1, 1)


def adain(content: torch.Tensor, style_mean: torch.Tensor, style_std: torch.Tensor) -> torch.Tensor:
    c_mean, c_std = calc_mean_std(content)
    return (content - c_mean) / c_std * style_std + style_mean


def list_styles(style_dir: str | Path) -> list[Path]:
    d = Path(style_dir).expanduser()
    if not d.is_dir():
        raise DataError(f"style-image folder {d} does not exist")
    files = sorted(Path(r) / f for r, _, fs in os.walk(d) for f in fs if is_image_file(f) and not f.startswith("."))
    if not files:
        raise DataError(f"style-image folder {d} contains no images")
    return files


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


class Stylize(Shift):
    """AdaIN style transfer with a per-sample style image (deterministic in the sample seed)."""

    name = "stylize"

    def __init__(self, encoder: str | Path | nn.Module, decoder: str | Path | nn.Module, style_dir: str | Path,
                 alpha: float = 1.0, style_size: int | None = None, cache_styles: int = 256):
        if not 0.0 <= float(alpha) <= 1.0:
            raise ValueError(f"stylize: alpha must be in [0, 1], got {alpha}")
        if isinstance(encoder, nn.Module) != isinstance(decoder, nn.Module):
            raise ValueError("stylize: pass both encoder and decoder as modules, or both as weight files")
        if isinstance(encoder, nn.Module):
            self.encoder, self.decoder = encoder.eval(), decoder.eval()
            self._weights = {"encoder": "module", "decoder": "module"}
        else:
            self.encoder, self.decoder = load_adain(encoder, decoder)
            self._weights = {"encoder": f"{Path(encoder).name}@{_file_digest(Path(encoder))}",
                             "decoder": f"{Path(decoder).name}@{_file_digest(Path(decoder))}"}
        for p in list(self.encoder.parameters()) + list(self.decoder.parameters()):
            p.requires_grad_(False)
        self.style_dir = Path(style_dir)
        self.styles = list_styles(style_dir)
        self.alpha = float(alpha)
        self.style_size = style_size
        self._stats = lru_cache(maxsize=cache_styles)(self._style_stats)

    def params(self) -> dict:
        return {"alpha": self.alpha, "style_dir": str(self.style_dir), "n_styles": len(self.styles),
                "style_size": self.style_size, **self._weights}

    def style_index(self, seed: int) -> int:
        """The style image used for a sample seed (independent of the batch)."""
        h = hashlib.blake2b(f"{int(seed)}:stylize".encode(), digest_size=8).digest()
        return int.from_bytes(h, "little") % len(self.styles)

    def _style_stats(self, idx: int, H: int, W: int, device: str):
        from torchvision.transforms.functional import pil_to_tensor

        img = load_image(self.styles[idx])
        size = (self.style_size, self.style_size) if self.style_size else (H, W)
        s = pil_to_tensor(img.resize((size[1], size[0]), resample=3)).float().div(255)[None]  # bicubic
        enc = self._on(device)[0]
        with torch.no_grad():
            return calc_mean_std(enc(s.to(device)))

    def _on(self, device) -> tuple[nn.Module, nn.Module]:
        dev = torch.device(device)
        p = next(self.encoder.parameters())
        if p.device != dev:
            self.encoder.to(dev)
            self.decoder.to(dev)
            self._stats.cache_clear()
        return self.encoder, self.decoder

    def apply(self, x: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
        B, _, H, W = x.shape
        enc, dec = self._on(x.device)
        stats = [self._stats(self.style_index(s), H, W, str(x.device)) for s in seeds.detach().cpu().tolist()]
        s_mean = torch.cat([m for m, _ in stats]).to(x.dtype)
        s_std = torch.cat([s for _, s in stats]).to(x.dtype)
        with torch.no_grad():
            fc = enc(x)
            t = adain(fc, s_mean, s_std)
            t = self.alpha * t + (1 - self.alpha) * fc
            out = dec(t)
        if out.shape[-2:] != (H, W):
            out = F.interpolate(out, size=(H, W), mode="bilinear", align_corners=False)
        return out.clamp(0, 1).to(x.dtype)


AdaINStylize = Stylize  # the name the shift registry uses
