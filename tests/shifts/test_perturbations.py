"""ImageNet-P: on-the-fly sequences and the stability metrics (FP, T5D, mFR, mT5D)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from roz.metrics.perturbation import (flip_probability, imagenet_p_summary, mean_flip_rate, mean_top5_distance,
                                      perturbation_scores, top5_distance, top5_distance_pair, top5_from_logits)
from roz.shifts.perturbations import (ALL_PERTURBATIONS, PERTURBATIONS, PerturbationFrame, PerturbationSequence,
                                      is_noise, n_frames, perturbation_sequence)


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.rand(2, 3, 20, 20, generator=g), torch.tensor([11, 12])


@pytest.mark.parametrize("name", ALL_PERTURBATIONS)
def test_sequence_shapes_range_determinism(batch, name):
    x, seeds = batch
    seq = perturbation_sequence(x, name, seeds, crop=(16, 16))
    assert seq.shape == (2, n_frames(name), 3, 16, 16)
    assert seq.min() >= 0 and seq.max() <= 1 and torch.isfinite(seq).all()
    # a requested subset equals the same frames of the full sequence; per-sample == batched
    sub = perturbation_sequence(x[1:], name, seeds[1:], crop=(16, 16), frames=[0, 3, n_frames(name) - 1])
    torch.testing.assert_close(sub[0], seq[1, [0, 3, n_frames(name) - 1]])
    # the sequence actually changes along time
    assert (seq[:, -1] - seq[:, 0]).abs().mean() > 0 or name in ("motion_blur", "gaussian_blur")  # tiny radii at 16 px


def test_sequence_lengths_and_kinds():
    assert set(PERTURBATIONS) == {"gaussian_noise", "shot_noise", "motion_blur", "zoom_blur", "snow", "brightness",
                                  "translate", "rotate", "tilt", "scale"}
    assert n_frames("translate") == 41 and n_frames("rotate") == 31 and n_frames("gaussian_noise") == 31
    assert is_noise("shot_noise") and is_noise("gaussian_noise_2") and not is_noise("snow")


def test_noise_sequences_are_iid_draws_around_clean_first_frame(batch):
    x, seeds = batch
    seq = perturbation_sequence(x, "gaussian_noise", seeds, quantize=False)
    torch.testing.assert_close(seq[:, 0], x)  # frame 0 is the clean image
    d1, d2 = seq[:, 1] - x, seq[:, 2] - x
    assert not torch.allclose(d1, d2)  # fresh noise each frame, not a ramp
    assert abs(float(d1.std()) - 0.03) < 0.01
    other = perturbation_sequence(x, "gaussian_noise", seeds + 1, quantize=False)
    assert not torch.allclose(other[:, 1], seq[:, 1])


def test_parameter_ramps(batch):
    x, seeds = batch
    b = perturbation_sequence(x, "brightness", seeds, quantize=False)
    assert (b[:, 0] <= x + 1e-6).all() and (b[:, 30] >= x - 1e-6).all()  # -0.3 .. +0.3 in HSV value
    torch.testing.assert_close(b[:, 15], x)  # c = 0 at the middle frame
    r = perturbation_sequence(x, "rotate", seeds, quantize=False)
    torch.testing.assert_close(r[:, 15], x, atol=1e-5, rtol=0)  # angle 0 at the middle frame
    s = perturbation_sequence(x, "scale", seeds, quantize=False)
    assert (s[:, 0, :, 0, 0] == 0).all()  # zoomed out to 0.4: black border
    t = perturbation_sequence(x, "translate", seeds, crop=None, quantize=False)
    torch.testing.assert_close(t[:, 20], x)
    z = perturbation_sequence(x, "zoom_blur", seeds, quantize=False)
    torch.testing.assert_close(z[:, 0], x)


def test_frame_shift_and_sequence_wrapper(batch):
    x, seeds = batch
    seq = PerturbationSequence("tilt")
    assert seq.params()["comparison"] == "consecutive" and PerturbationSequence("shot_noise").noise
    full = seq(x, seeds)
    f = PerturbationFrame("tilt", 4)
    torch.testing.assert_close(f(x, seeds), full[:, 4])
    with pytest.raises(ValueError):
        PerturbationFrame("tilt", 31)
    with pytest.raises(ValueError):
        perturbation_sequence(x, "not_a_perturbation", seeds)


# ----------------------------------------------------------------------------- metrics


def test_flip_probability_hand_made_sequence():
    seqs = [[0, 1, 1, 1], [2, 2, 2, 2]]
    # consecutive: video 1 flips once in 3 transitions, video 2 never -> (1/3 + 0) / 2
    assert flip_probability(seqs, noise=False) == pytest.approx(1 / 6)
    # noise: every frame vs the first -> video 1: 3/3, video 2: 0 -> 1/2
    assert flip_probability(seqs, noise=True) == pytest.approx(1 / 2)
    assert flip_probability(seqs, "gaussian_noise") == pytest.approx(1 / 2)
    assert flip_probability(seqs, "rotate") == pytest.approx(1 / 6)
    # back-and-forth: consecutive sees 3 flips, first-frame comparison sees 1
    assert flip_probability([[0, 1, 0, 0]], noise=False) == pytest.approx(2 / 3)
    assert flip_probability([[0, 1, 0, 0]], noise=True) == pytest.approx(1 / 3)
    # difficulty 2: stride-2 comparisons (0,2),(2,4) and (1,3)
    assert flip_probability([[0, 5, 1, 5, 1]], noise=False, step=2) == pytest.approx(1 / 3)


def _reference_t5d(logits: np.ndarray, noise: bool, step: int = 1) -> float:
    """The reference ImageNet-P/test.py computation (full rankings, scipy ordinal ranks)."""
    from scipy.stats import rankdata

    C = logits.shape[-1]
    cum = np.cumsum(np.asarray([0] + [1] * 5 + [0] * (C - 1 - 5)))
    result = 0.0
    for vid in logits:
        ranks = [rankdata(-f, method="ordinal").astype(np.int64) for f in vid]
        res = []
        for i in range(1 if noise else step):
            perm1 = ranks[i]
            inv = np.argsort(perm1)
            for r in ranks[i::(1 if noise else step)][1:]:
                res.append(np.sum(np.abs(cum[:5] - cum[r[inv] - 1][:5])))
                if not noise:
                    perm1, inv = r, np.argsort(r)
        result += np.mean(res) / len(logits)
    return result


@pytest.mark.parametrize("noise,step", [(False, 1), (True, 1), (False, 2)])
def test_top5_distance_matches_reference(noise, step):
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(4, 7, 12, generator=g)
    logits[..., :3] += torch.linspace(0, 1, 7).view(1, 7, 1)  # some drift so ranks move
    top5 = top5_from_logits(logits)
    assert top5_distance(top5, noise, step) == pytest.approx(_reference_t5d(logits.numpy(), noise, step))


def test_top5_distance_pair_cases():
    assert top5_distance_pair([1, 2, 3, 4, 5], [1, 2, 3, 4, 5]) == 0
    assert top5_distance_pair([1, 2, 3, 4, 5], [2, 1, 3, 4, 5]) == 2
    assert top5_distance_pair([1, 2, 3, 4, 5], [9, 8, 7, 6, 0]) == 5 + 4 + 3 + 2 + 1


def test_mfr_normalised_by_baseline():
    fp = {"rotate": 0.1, "snow": 0.3}
    base = {"rotate": 0.2, "snow": 0.2}
    assert mean_flip_rate(fp) == pytest.approx(0.2)
    assert mean_flip_rate(fp, base) == pytest.approx((0.5 + 1.5) / 2)  # per-perturbation ratio, then mean
    assert mean_top5_distance(fp, base) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        mean_flip_rate(fp, {"rotate": 0.2})
    scores = {"rotate": perturbation_scores(np.array([[[1, 2, 3, 4, 5]] * 3, [[1, 2, 3, 4, 5], [2, 1, 3, 4, 5],
                                                                                [2, 1, 3, 4, 5]]]), "rotate"),
              "snow": {"flip_prob": 0.2, "top5_dist": 1.0}}
    assert scores["rotate"]["flip_prob"] == pytest.approx(0.25)
    s = imagenet_p_summary(scores, baseline={"rotate": {"flip_prob": 0.5, "top5_dist": 1.0},
                                             "snow": {"flip_prob": 0.4, "top5_dist": 2.0}}, baseline_name="alexnet")
    assert s["mFR"] == pytest.approx((0.25 + 0.2) / 2)
    assert s["mFR_norm"] == pytest.approx((0.5 + 0.5) / 2) and s["baseline"] == "alexnet"


def test_frame_table_to_sequences():
    import pandas as pd

    from roz.metrics.perturbation import sequences_from_frame_table

    rows = pd.DataFrame({"index": [1, 0, 0, 1, 0, 1], "frame": [0, 1, 0, 1, 2, 2],
                         "pred": [5, 3, 3, 6, 3, 6]})
    seqs = sequences_from_frame_table(rows, value="pred")
    assert [s.tolist() for s in seqs] == [[3, 3, 3], [5, 6, 6]]
    assert flip_probability(seqs, noise=False) == pytest.approx((0 + 0.5) / 2)
    with pytest.raises(ValueError):
        sequences_from_frame_table(rows[rows.frame != 1], value="pred")


def test_sequence_top5_end_to_end(batch):
    from roz.metrics.perturbation import sequence_top5

    x, seeds = batch
    frames = perturbation_sequence(x, "brightness", seeds)
    w = torch.randn(3 * 20 * 20, 7, generator=torch.Generator().manual_seed(0))
    top5 = sequence_top5(lambda z: z.flatten(1) @ w, frames, chunk=10)
    assert top5.shape == (2, 31, 5)
    s = perturbation_scores(top5, "brightness")
    assert 0 <= s["flip_prob"] <= 1 and s["top5_dist"] >= 0 and s["n"] == 2


@pytest.mark.parametrize("name,frame,kw", [("rotate", 25, {"angle": 10.0}), ("scale", 10, {"scale": 0.65}),
                                          ("translate", 23, {"translate": [3, 0]}), ("shear", 5, {"shear": [-10.0, 0.0]})])
def test_geometry_matches_torchvision_affine(batch, name, frame, kw):
    """The reference builds these frames with torchvision's ``affine`` (at 224 px; here r = 1)."""
    import torchvision.transforms.functional as TF
    from torchvision.transforms import InterpolationMode

    x = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    args = {"angle": 0.0, "translate": [0, 0], "scale": 1.0, "shear": [0.0, 0.0], **kw}
    mode = InterpolationMode.NEAREST if name == "translate" else InterpolationMode.BILINEAR
    ref = TF.affine(x, interpolation=mode, **args)
    ours = perturbation_sequence(x, name, torch.tensor([0, 1]), frames=[frame], quantize=False)[:, 0]
    torch.testing.assert_close(ours, ref, atol=1e-4, rtol=0)
