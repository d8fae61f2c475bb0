"""Names fixed by the ImageNet-C and ImageNet-P releases, defined once for the loaders of the
released data (:mod:`roz.datasets.imagenet_c`, :mod:`roz.datasets.imagenet_p`), the shifts that
regenerate them (:mod:`roz.shifts.corruptions`, :mod:`roz.shifts.perturbations`) and the metrics.

They live in the datasets package because datasets is the base of the sibling layer: shifts may
import datasets, not the other way round (docs/layering.md).
"""

from __future__ import annotations

# ImageNet-C (Hendrycks & Dietterich 2019): the 15 benchmark corruptions in the paper's order
# (noise, blur, weather, digital), the 4 extra (validation) corruptions and the severities.
CORRUPTION_GROUPS: dict[str, tuple[str, ...]] = {
    "noise": ("gaussian_noise", "shot_noise", "impulse_noise"),
    "blur": ("defocus_blur", "glass_blur", "motion_blur", "zoom_blur"),
    "weather": ("snow", "frost", "fog", "brightness"),
    "digital": ("contrast", "elastic_transform", "pixelate", "jpeg_compression"),
}
CORRUPTIONS: tuple[str, ...] = tuple(c for names in CORRUPTION_GROUPS.values() for c in names)
EXTRA_CORRUPTIONS: tuple[str, ...] = ("gaussian_blur", "saturate", "spatter", "speckle_noise")
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)

# ImageNet-P: the 10 test perturbations, the 3 validation ones, and the noise sequences (i.i.d.
# draws, whose flip probability compares every frame with frame 0).
PERTURBATIONS = ("gaussian_noise", "shot_noise", "motion_blur", "zoom_blur", "snow", "brightness",
                 "translate", "rotate", "tilt", "scale")
EXTRA_PERTURBATIONS = ("speckle_noise", "gaussian_blur", "shear")
ALL_PERTURBATIONS = PERTURBATIONS + EXTRA_PERTURBATIONS
NOISE_PERTURBATIONS = ("gaussian_noise", "shot_noise", "speckle_noise")


def base_name(name: str) -> str:
    """``gaussian_noise_2`` -> ``gaussian_noise`` (released difficulty folders)."""
    if name[-2:] in ("_2", "_3") and name[:-2] in ALL_PERTURBATIONS:
        return name[:-2]
    return name


def is_noise(name: str) -> bool:
    """Noise sequences are i.i.d. draws: their flip probability compares every frame with frame 0."""
    return base_name(name) in NOISE_PERTURBATIONS


def n_frames(name: str) -> int:
    """Frames per released sequence."""
    return 41 if base_name(name) == "translate" else 31
