"""Transfer attacks: craft FGSM/BIM/MIM/DIM on a surrogate, evaluate on the target.

The target model is never called here (not even forward): all gradients and early-stopping
decisions come from the surrogate; ``last_queries`` is 0 target queries.

Resolution / normalisation mapping (surrogate and target may differ in both):
1. The target-resolution clean image x is resized to the surrogate's ``input_size``
   (bilinear, antialiased when shrinking) -> x_s. Each model normalises inside, so both see
   pixels in [0, 1]; no normalisation is shared or converted.
2. The attack runs on the surrogate around x_s with the *target's* pixel-space radius
   (eps, or eps * std_target[c] per channel for eps_space='normalized').
3. Only the perturbation is mapped back: delta_t = resize(x_adv_s - x_s) to the target size
   (bilinear; its weights are non-negative and sum to 1, so delta_t stays inside the ball),
   and x_adv = clip(x + delta_t, 0, 1), projected again. The target image itself is never
   replaced by a resampled copy, so at eps = 0 the target sees exactly its clean input.
If the surrogate has no ``input_size`` it is attacked at the target's resolution.

Labels (``y`` is in the target's index space). A model declares its classes with a ``wnids``
attribute (WordNet IDs, one per output; ``RozModel`` has it, the default surrogate has
ImageNet-1k's). ``label_map``:
* ``None`` (default): both models must declare the *same* ``wnids``; otherwise RozError — a
  surrogate with other classes would silently attack the wrong labels.
* ``'identity'``: the caller vouches that both output the same classes in the same order.
* ``'wnid'``: target class k is attacked through the surrogate class with k's WordNet ID.
* a list, one entry per target class: the surrogate class (int) or classes (list of ints).
With a map the surrogate's logits are first mapped to the target's label space by max over
each target class's surrogate classes (the engine's ``LabelMap`` protocol, re-done here
because attacks sit below the engine), and the attack runs on those mapped logits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from roz.attacks.base import Attack
from roz.attacks.bim import BIM
from roz.attacks.defaults import DEFAULT_SURROGATE, surrogate_arch_weights
from roz.attacks.dim import DIM
from roz.attacks.fgsm import FGSM
from roz.attacks.labels import MappedSurrogate, resolve_label_map
from roz.attacks.mim import MIM
from roz.errors import ModelError, RozError


class _Normalized(torch.nn.Module):
    def __init__(self, net, mean, std, input_size):
        super().__init__()
        self.net, self.mean, self.std, self.input_size = net, mean, std, input_size
        self.register_buffer("_m", torch.tensor(mean)[None, :, None, None])
        self.register_buffer("_s", torch.tensor(std)[None, :, None, None])

    def forward(self, x):
        return self.net((x - self._m) / self._s)


def default_surrogate(device: str | torch.device = "cpu") -> torch.nn.Module:
    """``DEFAULT_SURROGATE`` (torchvision ResNet-152, ImageNet-1k V1 weights), pixels in [0, 1] at
    224 px, eval mode, declaring ImageNet-1k's WordNet IDs (sorted-wnid order, from timm)."""
    import torchvision
    from timm.data import ImageNetInfo

    arch, weights = surrogate_arch_weights(DEFAULT_SURROGATE)
    try:
        net = torchvision.models.get_model(arch, weights=torchvision.models.get_model_weights(arch)[weights])
    except Exception as exc:  # no network / no cached weights
        raise ModelError(f"could not load the default transfer surrogate {DEFAULT_SURROGATE}: {exc}",
                         hint="pre-download the torchvision weights into the torch hub cache, or pass "
                         "surrogate=<any model behind the model contract>") from None
    m = _Normalized(net, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), (224, 224))
    m.name = DEFAULT_SURROGATE
    m.wnids = tuple(ImageNetInfo("imagenet-1k").label_names())
    return m.eval().to(device)


def _size(m: torch.nn.Module):
    s = getattr(m, "input_size", None)
    if s is None:
        return None
    if isinstance(s, int):
        return (s, s)
    s = tuple(int(v) for v in s)
    return s[-2:] if len(s) >= 2 else (s[0], s[0])


def resize(t: torch.Tensor, size) -> torch.Tensor:
    if tuple(t.shape[-2:]) == tuple(size):
        return t
    shrink = size[0] < t.shape[-2] or size[1] < t.shape[-1]
    return F.interpolate(t, size=size, mode="bilinear", align_corners=False, antialias=shrink)


class _Transfer(Attack):
    inner: type[BIM] = BIM
    uses_gradients = False  # of the target
    extra = {"label_map": None, "early_stop": False}

    def __init__(self, model, eps=8 / 255, eps_space="pixel", seed=0, surrogate=None, **params):
        if surrogate is None:
            surrogate = default_surrogate(next(iter(model.parameters()), torch.empty(0)).device)
        if not isinstance(surrogate, torch.nn.Module):
            raise RozError(f"attack '{self.name}': surrogate must be a torch.nn.Module, got {type(surrogate).__name__}")
        self.surrogate = surrogate
        super().__init__(model, eps, eps_space, seed, **params)
        self.groups, self.mapping = resolve_label_map(self.name, model, surrogate, self.p.get("label_map"))
        craft = surrogate if self.groups is None else MappedSurrogate(surrogate, self.groups)
        inner_p = {k: v for k, v in self.p.items() if k in self.inner.defaults}
        # the ball is the target's ball, in pixels: built at eps 0 (any eps_space would do), then
        # given the target's eps (already checked against the target's space) and per-channel std
        self.attack = self.inner(craft, eps=0.0, eps_space="pixel", seed=seed, **inner_p)
        self.attack.eps, self.attack._std = self.eps, self._std
        self.attack.craft_model = craft
        self.randomized = self.attack.randomized
        self._n_surrogate = None  # surrogate output width, read once

    def loss_name(self) -> str:
        return f"{self.attack.loss_name()} on the surrogate"

    def note(self) -> str | None:
        return self.attack.note()

    def resolved(self) -> dict:
        return {**self.attack.resolved(),
                "surrogate": getattr(self.surrogate, "name", type(self.surrogate).__name__),
                "surrogate_input_size": list(_size(self.surrogate) or []) or "target resolution",
                "label_mapping": self.mapping,
                "mapping": "resize x to surrogate (bilinear, antialias when shrinking); craft; "
                           "resize delta back (bilinear); x_adv = clip(x + delta)"}

    def _check_labels(self, xs: torch.Tensor, y: torch.Tensor) -> None:
        if self._n_surrogate is None:
            with torch.no_grad(), torch.autocast(device_type=xs.device.type, enabled=False):
                self._n_surrogate = int(self.surrogate(xs[:1].float()).shape[1])
        C = self._n_surrogate
        if self.groups is None:
            if int(y.max()) >= C:
                raise RozError(f"attack '{self.name}': label {int(y.max())} is outside the surrogate's {C} classes",
                               hint="pass label_map (target class -> surrogate class) when the output spaces differ")
            return
        top = max(max(g) for g in self.groups)
        if top >= C:
            raise RozError(f"attack '{self.name}': label_map names surrogate class {top}, the surrogate has {C}",
                           hint="label_map entries are surrogate output indices in [0, n_surrogate_classes)")
        if int(y.max()) >= len(self.groups):
            raise RozError(f"attack '{self.name}': label {int(y.max())} but label_map covers {len(self.groups)} "
                           "target classes", hint="give one label_map entry per target class")

    def _perturb(self, x, y, idx, e, eps_nominal):
        if getattr(self.surrogate, "training", False):
            raise RozError(f"attack '{self.name}': the surrogate is in training mode", hint="call surrogate.eval()")
        size = _size(self.surrogate) or tuple(x.shape[-2:])
        xs = resize(x, size).clamp(0, 1)
        self._check_labels(xs, y)
        a = self.attack
        steps = a.steps_for(eps_nominal)
        xa, _ = a._iterate(xs, y, idx, e, a.alpha_pixels(xs, e), steps, a.start(xs, idx, e))
        delta = resize(xa - xs, tuple(x.shape[-2:]))
        return self.project(x + delta, x, e)


def _make(inner_cls, name, steps=None):
    d = {**inner_cls.defaults, **_Transfer.extra}
    if steps is not None:
        d["steps"] = steps
    return type(f"Transfer{inner_cls.__name__}", (_Transfer,), {"name": name, "inner": inner_cls, "defaults": d})


TransferFGSM = _make(FGSM, "transfer-fgsm")
TransferBIM = _make(BIM, "transfer-bim")
TransferMIM = _make(MIM, "transfer-mim", steps=9)  # paper: 9 updates in transfer
TransferDIM = _make(DIM, "transfer-dim", steps=9)
