"""The model contract.

Every model ROZ evaluates is a ``RozModel``: an ``nn.Module`` whose ``forward`` takes pixels in
[0, 1] (float32, [B, 3, H, W] at ``input_size``), normalises inside, and returns logits over its
class set (WordNet IDs in ``classes``). Its ``transform()`` turns a decoded PIL image into such a tensor:
the model library's own eval transform minus its ``Normalize`` (see ``roz.models.transforms``). Because normalisation happens inside, corruptions,
typography and attacks all act in pixel space, identically for every model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum

import torch
from torch import nn

from roz.datasets.classes import ClassSet

from roz.models.transforms import PIPELINES, RESIZE_MODES, PixelTransform, Preprocess  # noqa: F401  (re-exported)

class ModelRole(StrEnum):
    """What a model is in the analysis (colour, baseline fit, CLIP-Auto pairs)."""

    STANDARD = "standard"
    ZEROSHOT = "zeroshot"
    ZEROSHOT_AUTO = "zeroshot-auto"


@dataclass
class ModelIdentity:
    """What makes a model's numbers reproducible: recorded with every result."""

    spec: str
    source: str
    arch: str
    weights: str | None = None  # path, hub tag, or None for random init
    weights_sha256: str | None = None
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


#: A net with at least this many Conv2d layers counts as convolutional (a ViT has one, its patch
#: embedding) and runs in channels_last on CPU.
CHANNELS_LAST_MIN_CONVS = 3


class RozModel(nn.Module):
    """A classifier over ``classes`` that takes pixels in [0, 1].

    Subclasses implement ``features``-free ``logits(x_normalised)``; zero-shot models extend this
    with an image encoder and a text head (see ``roz.models.zeroshot``).
    """

    role = "standard"

    def __init__(self, net: nn.Module, classes: ClassSet, preprocess: Preprocess, identity: ModelIdentity,
                 name: str | None = None):
        super().__init__()
        self.net = net
        self.classes = classes
        self.preprocess_cfg = preprocess
        self.identity = identity
        self.name = name or identity.spec
        self.register_buffer("_mean", torch.tensor(preprocess.mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("_std", torch.tensor(preprocess.std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        # Convolutional nets run in channels_last memory format on CPU: 1.2-2x faster forward and
        # backward for the small CNNs (bench/eval_channels_last.py), the same outputs up to float
        # rounding. Set on the first CPU batch, so a model that only ever runs on a GPU is untouched.
        self._channels_last = sum(isinstance(m, nn.Conv2d) for m in net.modules()) >= CHANNELS_LAST_MIN_CONVS
        self._net_channels_last = False
        self.eval()

    # attributes the attacks and shifts read
    @property
    def mean(self) -> tuple[float, ...]:
        return tuple(self.preprocess_cfg.mean)

    @property
    def std(self) -> tuple[float, ...]:
        return tuple(self.preprocess_cfg.std)

    @property
    def input_size(self) -> int:
        return self.preprocess_cfg.input_size

    @property
    def wnids(self) -> tuple[str, ...]:
        return self.classes.wnids

    def transform(self) -> PixelTransform:
        return self.preprocess_cfg.transform()

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Pixels in [0, 1] -> the net's normalised input (in channels_last for a CNN on CPU)."""
        x = (x - self._mean.to(x.dtype)) / self._std.to(x.dtype)
        if self._channels_last and x.ndim == 4 and x.device.type == "cpu":
            if not self._net_channels_last:
                # outside inference mode: weights re-laid-out under it would be inference
                # tensors, and a later attack could not backpropagate through them
                with torch.inference_mode(False), torch.no_grad():
                    self.net.to(memory_format=torch.channels_last)
                self._net_channels_last = True
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.normalize(x))

    def describe(self) -> dict:
        return {"name": self.name, "spec": self.identity.spec, "role": self.role,
                "identity": self.identity.to_dict(), "classes": self.classes.name,
                "n_classes": len(self.classes), "preprocess": self.preprocess_cfg.to_dict()}


def wrap_module(module: nn.Module, classes: ClassSet | str = "imagenet-1k", *, input_size: int = 224,
                resize_size: int | None = None, interpolation: str = "bicubic",
                mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), name: str = "custom",
                role: str | None = None) -> RozModel:
    """Wrap any ``nn.Module`` taking *normalised* images and returning logits over ``classes``.

    ``input_size`` / ``resize_size`` / ``interpolation``: the eval transform (resize the short side,
    centre-crop); ``mean`` / ``std``: the normalisation the module expects (applied inside, so
    shifts and attacks act on pixels in [0, 1]); ``role``: ``standard`` (default) or ``zeroshot``
    (how the analysis colours and fits it). The identity records the SHA-256 of the state dict, so
    results name the exact weights. Pass the result to ``roz.api.evaluate`` / ``roz.api.run``.
    """
    from roz.datasets.classes import get_class_set
    from roz.models.statehash import state_dict_sha256

    cs = get_class_set(classes) if isinstance(classes, str) else classes
    pre = Preprocess(input_size, resize_size or round(input_size / 0.875), interpolation, tuple(mean), tuple(std))
    ident = ModelIdentity(spec=f"python:{name}", source="python", arch=type(module).__name__,
                          weights="python object", weights_sha256=state_dict_sha256(module))
    model = RozModel(module, cs, pre, ident, name=name)
    if role is not None:
        model.role = str(ModelRole(role))
    return model
