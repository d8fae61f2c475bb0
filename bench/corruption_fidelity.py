"""Fidelity of ROZ's batched ImageNet-C corruptions against the reference ``imagecorruptions``.

For every corruption x severity, on the same images (224 px) from scikit-image's sample images,
which ship inside the ``scikit-image`` wheel (no download; ``pip install roz[bench]``):
``--images mixed`` (default) -- 16 samples: colour photographs, microscopy, textures and tinted
grey photographs; ``--images natural`` -- only the colour photographs of natural scenes
(astronaut, chelsea, coffee, rocket, both motorcycle stereo views, hubble_deep_field).

* mean PSNR (dB) of the corrupted image to the clean one, ours vs the reference -- target: within
  0.5 dB. Both outputs are quantised the reference's way (``np.uint8`` truncation). For random
  corruptions the gap is partly sampling noise: its standard error (paired over images, the two
  implementations' draws being independent) is printed, and a gap above 0.5 dB but within 2
  standard errors is reported as "ok (psnr gap within 2 SE ...)", not as a FAIL.
* a top-1 score of one fixed classifier on ours vs on the reference -- target: within 2 points.
  No pretrained weights are available offline, and a randomly initialised network's ImageNet
  top-1 is meaningless, so the "classifier" is *re-identification*: features from a seeded,
  randomly initialised torchvision ResNet-18 (global-pooled, standardised); a corrupted image is
  classified as the clean image with the most similar features (``N``-way, N = number of images).
  Top-1 = fraction re-identified correctly. It falls with severity like real accuracy does, and
  it is the same classifier for both implementations.

Random corruptions use different random streams (torch per-sample generators vs numpy), so the
two agree in distribution, not per pixel; small gaps on random corruptions are sampling noise.
With N images a top-1 rate is only resolved to 100/N points and its sampling error is far above
2 points, so a top-1 gap above 2 points that is within 2 standard errors (of the difference of
two binomial rates on N images) is reported as "ok (top1 gap within 2 SE ...)", not as a FAIL;
use more images (``--n-base 16 --variants 4`` -> 64) to tighten it.

Usage: ``python bench/corruption_fidelity.py [--images mixed|natural] [--n-base 16] [--variants 4]
[--draws 1] [--size 224] [--only NAME ...]``. ``--draws R`` corrupts every image R times with different seeds (both
implementations), which shrinks the sampling noise of random corruptions (frost picks one of six
textures and a crop per image, fog draws a whole fractal: with 32 single draws their mean PSNR
wanders by +-1 dB between seeds). Always exits 0; rows that miss a target are marked FAIL.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

BASE = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field",
        "retina", "colorwheel", "camera", "coins", "moon", "brick", "grass", "gravel", "cell", "clock")
NATURAL = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle_left", "motorcycle_right",
           "hubble_deep_field")
IMAGE_SETS = {"mixed": BASE, "natural": NATURAL}


def _load(name: str) -> np.ndarray:
    import skimage.data

    if name.startswith("motorcycle_"):  # the two views of skimage.data.stereo_motorcycle()
        left, right, _ = skimage.data.stereo_motorcycle()
        return left if name == "motorcycle_left" else right
    return getattr(skimage.data, name)()


def sample_images(n_base: int = 16, variants: int = 4, size: int = 224, names: tuple = BASE) -> np.ndarray:
    """``n_base * variants`` uint8 RGB images [N, size, size, 3] from scikit-image's samples.

    Gray images are tinted (different tint per image) so colour corruptions have colour to act
    on. Variants: full resize, centre crop, horizontal flip of the centre crop, corner crop.
    """
    from PIL import Image

    out = []
    for k, name in enumerate(names[:n_base]):
        a = _load(name)
        if a.ndim == 2:
            tint = np.array([[0.9, 0.8, 0.6], [0.6, 0.9, 0.8], [0.8, 0.7, 0.9]])[k % 3]
            a = (a[..., None].astype(np.float64) * tint).astype(np.uint8)
        im = Image.fromarray(a[..., :3])
        w, h = im.size
        s = size * 1.25 / min(w, h)
        big = im.resize((max(size, round(w * s)), max(size, round(h * s))), Image.BICUBIC)
        W, H = big.size
        cx, cy = (W - size) // 2, (H - size) // 2
        crops = [
            im.resize((size, size), Image.BICUBIC),
            big.crop((cx, cy, cx + size, cy + size)),
            big.crop((cx, cy, cx + size, cy + size)).transpose(Image.FLIP_LEFT_RIGHT),
            big.crop((0, 0, size, size)),
        ]
        out += [np.asarray(c.convert("RGB")) for c in crops[:variants]]
    return np.stack(out)


def reference(images: np.ndarray, name: str, severity: int) -> np.ndarray:
    from imagecorruptions import corrupt

    res = []
    for i, img in enumerate(images):
        np.random.seed(100000 * severity + i)
        res.append(corrupt(img, severity=severity, corruption_name=name))
    return np.stack(res)


def ours(images: np.ndarray, name: str, severity: int, batch: int = 32) -> np.ndarray:
    from roz.shifts.corruptions import corrupt

    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    seeds = torch.arange(len(images), dtype=torch.int64) + 100000 * severity
    ys = [corrupt(x[i:i + batch], name, severity, seeds[i:i + batch]) for i in range(0, len(x), batch)]
    y = torch.cat(ys)
    return torch.floor(y * 255).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def psnr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    mse = ((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean(axis=(1, 2, 3))
    return 10 * np.log10(255.0**2 / np.maximum(mse, 1e-10))


class ReId:
    """Re-identification 'classifier' on seeded random ResNet-18 features (see module doc)."""

    def __init__(self, clean: np.ndarray):
        import torchvision

        torch.manual_seed(0)
        self.net = torchvision.models.resnet18(weights=None)
        self.net.fc = torch.nn.Identity()
        self.net.eval()
        f = self._raw(clean)
        self.mu, self.sd = f.mean(0), f.std(0) + 1e-6
        self.ref = self._norm(f)

    def _raw(self, imgs: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 255
        x = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        with torch.no_grad():
            return torch.cat([self.net(x[i:i + 32]) for i in range(0, len(x), 32)])

    def _norm(self, f: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.normalize((f - self.mu) / self.sd, dim=1)

    def top1(self, imgs: np.ndarray) -> float:
        """Images ``i`` are corruptions of clean image ``i mod N`` (``--draws`` repeats the set)."""
        sim = self._norm(self._raw(imgs)) @ self.ref.T
        labels = torch.arange(len(imgs)) % self.ref.shape[0]
        return 100.0 * (sim.argmax(1) == labels).float().mean().item()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", choices=sorted(IMAGE_SETS), default="mixed",
                    help="mixed: 16 scikit-image samples; natural: 7 colour photographs of natural scenes")
    ap.add_argument("--n-base", type=int, default=16, help="use the first N images of the set")
    ap.add_argument("--variants", type=int, default=4)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--draws", type=int, default=1,
                    help="corrupt every image this many times (different seeds) to average out "
                         "the random corruptions' sampling noise")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from roz.shifts.corruptions import CORRUPTIONS, EXTRA_CORRUPTIONS

    clean = sample_images(args.n_base, args.variants, args.size, IMAGE_SETS[args.images])
    clf = ReId(clean)
    imgs = np.concatenate([clean] * args.draws)
    print(f"{len(clean)} images ({args.images} set) x {args.draws} draws at {args.size} px; "
          f"re-id top-1 on clean images: {clf.top1(clean):.1f}%")
    names = args.only or list(CORRUPTIONS + EXTRA_CORRUPTIONS)
    hdr = f"{'corruption':18s} sev  PSNR ours   ref   diff    SE | top1 ours   ref   diff | status"
    print(hdr)
    print("-" * len(hdr))
    fails, rows, noisy, t0 = [], 0, 0, time.time()
    psnr_gaps, top_gaps = [], []
    for name in names:
        for sev in range(1, 6):
            a, b = ours(imgs, name, sev), reference(imgs, name, sev)
            per_a, per_b = psnr(a, imgs), psnr(b, imgs)
            pa, pb = per_a.mean(), per_b.mean()
            # standard error of the mean PSNR gap, paired over images (the draws are independent)
            se_p = float(np.std(per_a - per_b, ddof=1) / np.sqrt(len(imgs)))
            ta, tb = clf.top1(a), clf.top1(b)
            ok_p, ok_t = abs(pa - pb) <= 0.5, abs(ta - tb) <= 2.0
            noise_p = not ok_p and abs(pa - pb) <= 2 * se_p
            # standard error of a difference of two independent top-1 rates on len(imgs) images
            se = 100 * np.sqrt((ta / 100 * (1 - ta / 100) + tb / 100 * (1 - tb / 100)) / len(imgs))
            noise_t = not ok_t and abs(ta - tb) <= 2 * se
            if (ok_p or noise_p) and (ok_t or noise_t):
                notes = ([f"psnr gap within 2 SE = {2 * se_p:.2f}"] if noise_p else []) + \
                    ([f"top1 gap within 2 SE = {2 * se:.1f}"] if noise_t else [])
                status = "ok" + (f" ({'; '.join(notes)})" if notes else "")
                noisy += bool(notes)
            else:
                status = "FAIL" + ("" if ok_p or noise_p else " psnr") + ("" if ok_t or noise_t else " top1")
                fails.append(f"{name}:{sev}")
            psnr_gaps.append(abs(pa - pb))
            top_gaps.append(abs(ta - tb))
            rows += 1
            print(f"{name:18s} {sev:3d}  {pa:9.2f} {pb:6.2f} {pa - pb:+6.2f} {se_p:5.2f} | {ta:9.1f} {tb:5.1f} {ta - tb:+6.1f} | {status}",
                  flush=True)
    print("-" * len(hdr))
    print(f"SUMMARY: {rows - len(fails)}/{rows} rows within targets (|dPSNR| <= 0.5 dB, |dtop1| <= 2 pts, "
          f"or for {noisy} rows a gap within 2 standard errors over {len(imgs)} images); "
          f"median |dPSNR| {np.median(psnr_gaps):.2f} dB, max {np.max(psnr_gaps):.2f} dB; "
          f"median |dtop1| {np.median(top_gaps):.1f}, max {np.max(top_gaps):.1f}; "
          f"{time.time() - t0:.0f} s" + (f"; FAIL: {', '.join(fails)}" if fails else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
