"""The attack contract shared by every attack in ROZ.

An ``Attack`` wraps a model behind the model contract (eval mode, pixels [B, 3, H, W] in
[0, 1] -> logits [B, C], normalisation inside) and an L-inf budget ``eps``.

``eps_space='pixel'`` (default): ``eps`` is in [0, 1] pixel units, the same for every channel.
``eps_space='normalized'``: ``eps`` is measured after the model's normalisation (what the
original CLIP robustness code did); in pixels the ball is ``eps * std[c]`` per channel, read
from ``model.std``.

``perturb(x, y, idx=None, eps=None)`` returns ``x_adv`` in [0, 1] inside the ball. ``idx``
(dataset indices) seeds randomized attacks per sample, so a sample gets the same attack
whatever batch it is in; ``eps`` may be a per-sample tensor [B] (used by the minimal-eps
binary search). Every eps — the nominal one and per-sample ones — is checked: finite, >= 0 and
at most ``eps_limit()`` (1 in pixels), else RozError. ``last_queries`` holds the model
evaluations spent per sample by the last call (int64 [B]). Every model call made here runs in
fp32 with autocast disabled. ``loss_name()`` says what the attack maximises (recorded with
results: a cross-entropy attack's robust accuracy / minimal eps are loose upper bounds).
"""

from __future__ import annotations

from typing import Any

import abc
import contextlib
from enum import StrEnum

import torch
import torch.nn.functional as F

from roz.errors import RozError
from roz.seeding import sample_generator, sample_seed



class EpsSpace(StrEnum):
    """Where the L-inf budget is measured: [0, 1] pixels, or after the model's normalisation."""

    PIXEL = "pixel"
    NORMALIZED = "normalized"


EPS_SPACES = tuple(e.value for e in EpsSpace)  # plain strings (messages print them)


def eps_label(eps: float) -> str:
    """Stable column label for an eps value: ``8/255`` when it is k/255, else ``0.0123``."""
    k = float(eps) * 255.0
    if abs(k - round(k)) < 1e-6:
        return f"{int(round(k))}/255"
    return f"{float(eps):.6g}"


def bim_steps(eps: float) -> int:
    """The paper's (Kurakin et al.) BIM schedule: int(min(255*eps + 4, 1.25*255*eps)), >= 1."""
    return max(1, int(min(255.0 * eps + 4.0, 1.25 * 255.0 * eps)))


def margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """True logit minus the best other logit (negative = misclassified)."""
    true = logits.gather(1, y[:, None])[:, 0]
    other = logits.scatter(1, y[:, None], float("-inf")).amax(1)
    return true - other


def per_sample_rand(shape, seeds: list[int], kind: str, device) -> torch.Tensor:
    """One draw of ``shape`` per sample from its own generator (CPU, then moved)."""
    out = []
    for s in seeds:
        g = sample_generator(s)
        if kind == "uniform":
            out.append(torch.rand(shape, generator=g))
        elif kind == "normal":
            out.append(torch.randn(shape, generator=g))
        else:  # pragma: no cover - programming error
            raise ValueError(kind)
    return torch.stack(out).to(device) if out else torch.empty((0, *shape), device=device)


def fp32(x: torch.Tensor):
    """A context with autocast off for x's device (a no-op when autocast is not on)."""
    dt = x.device.type
    try:
        on = torch.is_autocast_enabled(dt)
    except TypeError:  # older torch: no device argument
        on = torch.is_autocast_enabled() or torch.is_autocast_cpu_enabled()
    return torch.autocast(device_type=dt, enabled=False) if on else contextlib.nullcontext()


class Attack(abc.ABC):
    """Base class. Subclasses set ``name``, ``defaults`` and implement ``_perturb``."""

    name: str = "attack"
    defaults: dict[str, Any] = {}
    randomized: bool = False  # draws random numbers (seeded per sample from seed + index)
    uses_gradients: bool = True  # reads gradients of ``self.model``
    minimal: bool = False  # finds a minimal perturbation itself (DeepFool)

    def __init__(self, model: torch.nn.Module, eps: float = 8 / 255, eps_space: str = "pixel",
                 seed: int = 0, **params):
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise RozError(
                f"attack '{self.name}': unknown parameter(s) {unknown}",
                hint=f"parameters of '{self.name}': {sorted(self.defaults) or 'none'} "
                f"(plus eps, eps_space, seed)")
        if eps_space not in EPS_SPACES:
            raise RozError(f"attack '{self.name}': eps_space={eps_space!r} is not one of {EPS_SPACES}",
                           hint="use eps_space='pixel' ([0,1] pixel units) or 'normalized'")
        self.model = model
        self.eps_space = eps_space
        self.seed = int(seed)
        self.p = {**self.defaults, **params}
        self._std = None
        if eps_space == "normalized":
            std = getattr(model, "std", None)
            if std is None:
                raise RozError(f"attack '{self.name}': eps_space='normalized' but the model has no `std`",
                               hint="give the model a `std` attribute (tuple per channel) or use eps_space='pixel'")
            self._std = tuple(float(s) for s in std)
        self.eps = float(self.check_eps(eps, "eps")[0])
        self.last_queries: torch.Tensor | None = None
        self.validate()

    # ---- parameters -------------------------------------------------------------------
    def validate(self) -> None:
        """Check ``self.p``; raise RozError for bad values. Subclasses extend."""

    def _need(self, key: str, cond: bool, what: str) -> None:
        if not cond:
            raise RozError(f"attack '{self.name}': {key}={self.p.get(key)!r} is invalid: {what}",
                           hint=f"fix or drop '{key}' (default {self.defaults.get(key)!r})")

    def resolved(self) -> dict:
        """Parameters after applying eps-dependent rules at the nominal eps."""
        return {}

    def params(self) -> dict:
        """Everything that changes the result, recorded with every unit."""
        p = {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.p.items()}
        return {"attack": self.name, "norm": "Linf", "eps": self.eps, "eps_label": eps_label(self.eps),
                "eps_space": self.eps_space, "seed": self.seed, **p, **self.resolved()}

    def note(self) -> str | None:
        """A caveat about this attack's settings, recorded in the protocol (None: nothing to say)."""
        return None

    def loss_name(self) -> str:
        """What the attack maximises (recorded: cross-entropy figures are loose upper bounds)."""
        return str(self.p.get("loss", "ce"))

    # ---- eps ----------------------------------------------------------------------------
    def eps_limit(self) -> float:
        """Largest meaningful radius: 1 in pixels; with eps_space='normalized' the eps at which
        the widest channel's pixel radius eps * std[c] reaches 1."""
        return 1.0 if self._std is None else 1.0 / max(self._std)

    def check_eps(self, eps, where: str = "eps") -> torch.Tensor:
        """``eps`` (a number or per-sample values) as float64 [N] on the CPU; RozError unless every
        value is finite, >= 0 and at most ``eps_limit()`` (a larger L-inf ball is silently clipped
        by [0, 1], a negative one silently becomes |eps|, NaN poisons the images)."""
        what = f"attack '{self.name}': {where}"
        try:
            t = torch.as_tensor(eps.detach() if isinstance(eps, torch.Tensor) else eps,
                                dtype=torch.float64).reshape(-1).cpu()
        except (TypeError, ValueError, RuntimeError):
            raise RozError(f"{what}={eps!r} is not a number", hint="give eps in [0, 1] pixel units, e.g. 8/255") from None
        lim = self.eps_limit()
        bad = ~torch.isfinite(t) | (t < 0) | (t > lim + 1e-9)
        if t.numel() == 0 or bool(bad.any()):
            v = float(t[bad][0]) if t.numel() else "nothing"
            unit = ("pixel units: 8/255 = 0.0314, not 8" if self._std is None else
                    f"normalized units: the pixel radius eps * std[c] must stay <= 1, std = {self._std}")
            raise RozError(f"{what}={v} is outside the valid range [0, {lim:.6g}] (finite, >= 0)",
                           hint=f"eps is an L-inf radius in {unit}")
        return t

    # ---- helpers ----------------------------------------------------------------------
    def eps_tensor(self, x: torch.Tensor, eps=None) -> torch.Tensor:
        """Pixel-space radius per sample and channel, [B, C, 1, 1]."""
        B, C = x.shape[:2]
        if eps is None:
            e = torch.full((B,), self.eps, dtype=torch.float32, device=x.device)
        else:
            e = torch.as_tensor(eps, dtype=torch.float32, device=x.device).reshape(-1).expand(B).clone()
        e = e[:, None, None, None].expand(B, C, 1, 1).clone()
        if self._std is not None:
            e = e * torch.tensor(self._std, dtype=torch.float32, device=x.device)[None, :, None, None]
        return e

    def nominal_eps(self, x: torch.Tensor, eps=None) -> torch.Tensor:
        """The eps value per sample in the attack's own units (for schedules), [B]."""
        if eps is None:
            return torch.full((x.shape[0],), self.eps, dtype=torch.float64)
        return torch.as_tensor(eps, dtype=torch.float64).reshape(-1).expand(x.shape[0]).cpu()

    @staticmethod
    def project(x_adv: torch.Tensor, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        return torch.minimum(torch.maximum(x_adv, x - e), x + e).clamp(0.0, 1.0)

    def seeds(self, idx: torch.Tensor, salt: str = "") -> list[int]:
        return [sample_seed(self.seed, int(i), f"{self.name}:{salt}") for i in idx.tolist()]

    def count(self, sel: torch.Tensor | None, n: int = 1) -> None:
        if self.last_queries is None:
            return
        if sel is None:
            self.last_queries += n
        else:
            self.last_queries[sel.to(self.last_queries.device)] += n

    def logits(self, x: torch.Tensor, model: torch.nn.Module | None = None) -> torch.Tensor:
        """fp32 forward without gradients."""
        m = self.model if model is None else model
        with torch.no_grad(), fp32(x):
            return m(x.float()).float()

    def loss_grad(self, x: torch.Tensor, loss_fn, model: torch.nn.Module | None = None,
                  transform=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and d(sum of per-sample loss)/dx in fp32 (autocast off)."""
        m = self.model if model is None else model
        with torch.enable_grad(), fp32(x):
            xg = x.detach().float().requires_grad_(True)
            inp = xg if transform is None else transform(xg)
            logits = m(inp).float()
            loss = loss_fn(logits)
            if loss.ndim:
                loss = loss.sum()
            (g,) = torch.autograd.grad(loss, xg)
        return logits.detach(), g.detach()

    # ---- entry point ------------------------------------------------------------------
    def check_inputs(self, x: torch.Tensor, y: torch.Tensor) -> None:
        if x.ndim != 4:
            raise RozError(f"attack '{self.name}': expected pixels [B, C, H, W], got shape {tuple(x.shape)}")
        if y.shape != (x.shape[0],):
            raise RozError(f"attack '{self.name}': {tuple(y.shape)} labels for a batch of {x.shape[0]}")
        if x.numel() and (x.min() < 0 or x.max() > 1):
            raise RozError(f"attack '{self.name}': pixels outside [0, 1] (min {x.min():.3g}, max {x.max():.3g})",
                           hint="attacks take un-normalised pixels in [0, 1]; the model normalises inside")
        if getattr(self.model, "training", False):
            raise RozError(f"attack '{self.name}': the model is in training mode",
                           hint="call model.eval() before attacking (dropout/batch-norm would mask gradients)")

    def perturb(self, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor | None = None,
                eps=None) -> torch.Tensor:
        self.check_inputs(x, y)
        x = x.detach().float()
        y = y.detach().long().to(x.device)
        idx = torch.arange(x.shape[0]) if idx is None else torch.as_tensor(idx).long().cpu()
        self.last_queries = torch.zeros(x.shape[0], dtype=torch.int64)
        if x.shape[0] == 0:
            return x.clone()
        if eps is not None:
            n = self.check_eps(eps, "per-sample eps").numel()
            if n not in (1, x.shape[0]):
                raise RozError(f"attack '{self.name}': {n} per-sample eps values for a batch of {x.shape[0]}",
                               hint="give one eps, or one per sample")
        e = self.eps_tensor(x, eps)
        x_adv = self._perturb(x, y, idx, e, self.nominal_eps(x, eps))
        return self.project(x_adv.detach(), x, e)

    @abc.abstractmethod
    def _perturb(self, x, y, idx, e, eps_nominal) -> torch.Tensor:
        """The attack itself: adversarial images for ``x`` within per-sample radius ``e``."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params()})"


def ce_loss(y: torch.Tensor):
    """Summed cross-entropy: per-sample gradients, one fused reduction."""
    return lambda logits: F.cross_entropy(logits, y, reduction="sum")


def dlr_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-sample DLR loss (Croce & Hein 2020): a scale-invariant margin, needs >= 3 classes."""
    if logits.shape[1] < 3:
        raise RozError(f"the DLR loss needs >= 3 classes, the model has {logits.shape[1]}",
                       hint="use loss='ce' for models with fewer classes")
    srt, ind = logits.sort(1)
    top_is_y = (ind[:, -1] == y).float()
    zy = logits.gather(1, y[:, None])[:, 0]
    return -(zy - srt[:, -2] * top_is_y - srt[:, -1] * (1 - top_is_y)) / (srt[:, -1] - srt[:, -3] + 1e-12)


LOSSES = ("ce", "dlr")


def summed_loss(name: str, y: torch.Tensor):
    """The summed loss ``name`` ('ce' | 'dlr') of labels ``y``, for ``Attack.loss_grad``."""
    if name == "dlr":
        return lambda logits: dlr_loss(logits, y).sum()
    return ce_loss(y)
