"""The ImageNet-C/-P names are defined once (roz.datasets.release_names) and shared."""

from __future__ import annotations

from roz.datasets import imagenet_c, imagenet_p, release_names
from roz.shifts import corruptions, perturbations, registry


def test_one_definition_of_the_release_names():
    assert corruptions.CORRUPTIONS is release_names.CORRUPTIONS and len(release_names.CORRUPTIONS) == 15
    assert corruptions.EXTRA_CORRUPTIONS is release_names.EXTRA_CORRUPTIONS
    assert corruptions.SEVERITIES is imagenet_c.SEVERITIES is release_names.SEVERITIES
    assert imagenet_c.ALL_CORRUPTIONS == release_names.CORRUPTIONS + release_names.EXTRA_CORRUPTIONS
    assert perturbations.PERTURBATIONS is imagenet_p.PERTURBATIONS is release_names.PERTURBATIONS
    assert perturbations.n_frames is release_names.n_frames and release_names.n_frames("translate_2") == 41
    # the default grid of `corruption:all` is that list, in that order
    assert [d["corruption"] for d in registry.parse_shift("corruption:all:1")] == list(release_names.CORRUPTIONS)
    assert imagenet_c.corruption_group("fog") == "weather" and imagenet_c.corruption_group("spatter") == "extra"
