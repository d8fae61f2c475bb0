"""The attacks' defaults, each defined once here and imported everywhere else.

Used by ``evaluate_attack``, the transfer attacks, the engine's attack units (``roz run``) and
the demo; docs/attacks.md describes them.
"""

from __future__ import annotations

# Robust accuracy is reported at these L-inf radii (pixel units in [0, 1]) unless a run says otherwise.
DEFAULT_EPS_GRID: tuple[float, ...] = (1 / 255, 2 / 255, 4 / 255, 8 / 255)

# Grid of the per-sample minimal-eps binary search (``min_eps=True``).
DEFAULT_MIN_EPS_GRID: tuple[float, ...] = tuple(k / 255 for k in (0.25, 0.5, 1, 1.5, 2, 3, 4, 6, 8, 12, 16))

# The transfer surrogate of Wang et al. (2024): torchvision ResNet-152 with its *V1* ImageNet-1k
# weights (torchvision's DEFAULT for resnet152 is V2, a different model). A model spec string, as
# ``roz.models.create_model`` reads it.
DEFAULT_SURROGATE = "torchvision:resnet152@IMAGENET1K_V1"


def surrogate_arch_weights(spec: str = DEFAULT_SURROGATE) -> tuple[str, str]:
    """``'torchvision:resnet152@IMAGENET1K_V1'`` -> ``('resnet152', 'IMAGENET1K_V1')``."""
    arch, weights = spec.split(":", 1)[1].split("@", 1)
    return arch, weights

# ``min_eps_protocol='paper'``: the minimal-eps search of Wang et al.'s code
# (wang-research-lab/roz, scripts/common_adversarial_attack/attack_methods/*.py, run with
# search='binary'): a binary search over k/1000 in *normalised* units (eps after the model's
# normalisation), k in 1..N below, each trial with alpha = 0.15 eps and 20 steps for BIM / NES /
# SPSA (MIM / DIM keep their 19 / 9 updates, FGSM its one step). DeepFool reports its own minimal
# perturbation (no grid).
PAPER_MIN_EPS_STEPS = 20
PAPER_MIN_EPS_GRID_K: dict[str, int] = {
    "fgsm": 9, "bim": 9, "mim": 9, "dim": 9, "nes": 10, "spsa": 30,
    "transfer-fgsm": 100, "transfer-bim": 600, "transfer-mim": 600, "transfer-dim": 600,
}


def paper_min_eps_grid(attack: str) -> tuple[float, ...]:
    """The paper's min-eps grid for ``attack`` (normalised units), e.g. bim: (0.001, ..., 0.009)."""
    return tuple(k / 1000 for k in range(1, PAPER_MIN_EPS_GRID_K[attack] + 1))
