"""Supervised ROZ-Mini baselines: small timm/torchvision classifiers trained on mini-train only.

Every baseline is rebuilt by the normal ``timm:NAME`` / ``torchvision:NAME`` adapters from
``timm.create_model(NAME, num_classes=N, **kwargs)`` /
``torchvision.models.get_model(NAME, num_classes=N, **kwargs)`` with the ``kwargs`` stored in its
sidecar and N the size of its class set (``roz-mini``), so only constructor arguments (widths,
depths, patch sizes) shrink them -- no custom modules.

Architectures and training lengths vary on purpose: their mini-val accuracies should spread
out, which the effective-robustness linear fit needs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from roz.world import train_common


@dataclass(frozen=True)
class BaselineSpec:
    name: str
    source: str  # "timm" | "torchvision"
    arch: str
    kwargs: dict = field(default_factory=dict)  # constructor kwargs (JSON types), without num_classes
    epochs: int = 10
    lr: float = 2e-3
    per_class: int | None = None  # train on the first N mini-train images of each class (None: all)
    weight_decay: float = 0.05


# Names say arch, width and epochs. Ordered roughly by cost.
# Cost is ~ epochs x images: one mini-train epoch (5280 images) is ~20-60 s of one CPU core.
BASELINES: tuple[BaselineSpec, ...] = (
    BaselineSpec("mini-mnv3s025-e2", "torchvision", "mobilenet_v3_small", {"width_mult": 0.25}, epochs=2, lr=2e-3),
    BaselineSpec("mini-lcnet035-e2", "timm", "lcnet_035", {}, epochs=2, lr=2e-3),
    BaselineSpec("mini-shufflev2x05-e2", "torchvision", "shufflenet_v2_x0_5", {}, epochs=2, lr=2e-3),
    BaselineSpec("mini-vitt8-e2", "timm", "vit_tiny_patch16_224",
                 {"img_size": 64, "patch_size": 8, "embed_dim": 96, "depth": 4, "num_heads": 3}, epochs=2, lr=1e-3),
    BaselineSpec("mini-resnet10t16-e1", "timm", "resnet10t",
                 {"channels": [16, 32, 64, 128], "stem_width": 16}, epochs=1),
    BaselineSpec("mini-mnv3s050-e3", "torchvision", "mobilenet_v3_small", {"width_mult": 0.5}, epochs=3, lr=2e-3),
    BaselineSpec("mini-resnet18w16-e3", "timm", "resnet18",
                 {"channels": [16, 32, 64, 128], "stem_width": 16}, epochs=3),
    BaselineSpec("mini-resnet10t16-e3", "timm", "resnet10t",
                 {"channels": [16, 32, 64, 128], "stem_width": 16}, epochs=3),
    BaselineSpec("mini-resnet10t16-e6", "timm", "resnet10t",
                 {"channels": [16, 32, 64, 128], "stem_width": 16}, epochs=6),
)


def build(source: str, arch: str, kwargs: dict) -> torch.nn.Module:
    """Exactly how the model adapters rebuild a baseline from its sidecar."""
    if source == "timm":
        import timm

        return timm.create_model(arch, **kwargs)
    if source == "torchvision":
        import torchvision

        return torchvision.models.get_model(arch, **kwargs)
    raise ValueError(f"unknown baseline source {source!r}")


def build_for(source: str, arch: str, kwargs: dict, num_classes: int) -> torch.nn.Module:
    """``build`` with the head size supplied from the class set, as the adapters do (the sidecar
    ``kwargs`` never hold ``num_classes``: torchvision's adapter passes it separately)."""
    return build(source, arch, {"num_classes": num_classes, **kwargs})


@torch.no_grad()
def accuracy(model, x_u8: torch.Tensor, y: torch.Tensor, bs: int = 500) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(x_u8), bs):
        x = train_common.normalize(train_common.to_float(x_u8[i:i + bs]), train_common.IMAGENET_MEAN, train_common.IMAGENET_STD)
        correct += model(x).argmax(1).eq(y[i:i + bs]).sum().item()
    return round(100.0 * correct / max(1, len(y)), 2)


@torch.no_grad()
def recalibrate_bn(model: torch.nn.Module, x_u8: torch.Tensor, n: int = 2048, bs: int = 256) -> bool:
    """Re-estimate BatchNorm running statistics (exact averages, un-augmented mini-train images).

    Short runs leave them far from the data (torchvision's MobileNetV3 uses momentum 0.01), which
    would make eval-mode accuracy meaningless. Returns whether the model has BatchNorm.
    """
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return False
    moms = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    model.train()
    idx = torch.linspace(0, len(x_u8) - 1, min(n, len(x_u8))).long()
    for i in range(0, len(idx), bs):
        model(train_common.normalize(train_common.to_float(x_u8[idx[i:i + bs]]), train_common.IMAGENET_MEAN, train_common.IMAGENET_STD))
    for m, mom in zip(bns, moms):
        m.momentum = mom
    model.eval()
    return True


def train_baseline(spec: BaselineSpec, x_u8: torch.Tensor, y: torch.Tensor, num_classes: int, *, seed: int = 0,
                   epochs: int | None = None, batch_size: int = 32, label_smoothing: float = 0.1,
                   warmup_frac: float = 0.05, log=print):
    """Train one baseline on (x_u8, y); returns (model, info) with the per-step loss history."""
    epochs = spec.epochs if epochs is None else epochs
    torch.manual_seed(seed)
    model = build_for(spec.source, spec.arch, spec.kwargs, num_classes)
    n = len(y)
    bs = min(batch_size, n)
    spe = max(1, -(-n // bs))
    total = spe * epochs
    opt = torch.optim.AdamW(train_common.param_groups(model, spec.weight_decay), lr=spec.lr)
    gen = torch.Generator().manual_seed(seed)
    warm = max(1, int(warmup_frac * total))
    losses = []
    t0 = time.time()
    step = 0
    model.train()
    for ep in range(epochs):
        perm = torch.randperm(n, generator=gen)
        for b in range(spe):
            idx = perm[b * bs:(b + 1) * bs]
            if len(idx) < 2:  # BatchNorm needs >1 sample
                continue
            x = train_common.augment(train_common.to_float(x_u8[idx]), gen, flip=True)
            x = train_common.normalize(x, train_common.IMAGENET_MEAN, train_common.IMAGENET_STD)
            for g in opt.param_groups:
                g["lr"] = train_common.cosine_lr(step, total, spec.lr, warm)
            loss = F.cross_entropy(model(x), y[idx], label_smoothing=label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
            step += 1
        log(f"[{spec.name}] epoch {ep + 1}/{epochs} loss {sum(losses[-spe:]) / len(losses[-spe:]):.3f} "
            f"{time.time() - t0:.0f}s")
    recalibrate_bn(model, x_u8)
    model.eval()
    curve = [round(sum(losses[i:i + spe]) / len(losses[i:i + spe]), 4) for i in range(0, len(losses), spe)]
    info = {"steps": step, "epochs": epochs, "loss_curve": curve, "n_train": n, "batch_size": bs, "lr": spec.lr,
            "weight_decay": spec.weight_decay,
            "label_smoothing": label_smoothing, "losses": losses, "train_seconds": time.time() - t0}
    return model, info
