"""ImageNet-P as released: ``ROOT/<perturbation>/<wnid>/<image id>.mp4`` (one sequence per file).

Each sample is one sequence: ``__getitem__`` decodes every frame with PyAV and returns
``(frames, target, index, ok)`` with ``frames = stack([transform(frame) ...])`` of shape
``[T, 3, H, W]`` (T = 31, 41 for translate). The engine flattens a batch of sequences to
``[B*T, 3, H, W]``, runs the model, keeps the per-frame top-5 label lists ``[B, T, 5]`` (column
``frame_top5`` of the per-sample table) and ``aggregate`` computes the flip probability and top-5
distance with ``roz.metrics.perturbation`` (computed by the engine's sequence units) (noise perturbations against the first frame).

Difficulty 2 and 3 of the noise perturbations are the released folders ``<noise>_2`` and
``<noise>_3``; for the other perturbations the difficulty is the frame stride of the metric.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from roz.datasets.base import EvalDataset, LabelSpace, is_wnid
from roz.datasets.classes import get_class_set
from roz.datasets.info import DatasetInfo
from roz.errors import DataError
from roz.datasets.release_names import ALL_PERTURBATIONS, PERTURBATIONS, base_name, is_noise, n_frames

INFOS: list[DatasetInfo] = []  # this family's datasets; roz.datasets.registry registers them

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov")

LAYOUT = ("  ROOT/<perturbation>/<wnid>/<video>   e.g. ROOT/rotate/n01440764/ILSVRC2012_val_00000293.mp4\n"
          "  (perturbations: " + ", ".join(PERTURBATIONS) + "; noise difficulties 2/3 in <noise>_2, <noise>_3)")


def decode_video(path: str | Path) -> list:
    """Every frame of a video file as an RGB PIL image (PyAV); DataError if unreadable."""
    import av

    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise DataError(f"zero-byte video file: {path}")
        with av.open(str(path)) as container:
            frames = [f.to_image().convert("RGB") for f in container.decode(video=0)]
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"video file not found: {path}") from None
    except (av.error.FFmpegError, OSError, ValueError, IndexError) as e:
        raise DataError(f"cannot decode video {path}: {type(e).__name__}: {e}",
                        hint="the file is truncated or not a video; re-download it, or pass --on-bad-image skip") from None
    if not frames:
        raise DataError(f"video {path} has no frames")
    return frames


def imagenet_p_perturbations(root: str | Path) -> list[str]:
    """The perturbation folders present under ``root`` (test perturbations first)."""
    root = Path(root)
    present = [e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith(".")]
    order = {p: i for i, p in enumerate(ALL_PERTURBATIONS)}
    return sorted(present, key=lambda q: (order.get(base_name(q), len(order)), q))


class ImageNetPDataset(EvalDataset):
    """One perturbation's sequences; samples are video files."""

    perturbation: str = ""
    difficulty: int = 1

    def __getitem__(self, i: int):
        try:
            frames = decode_video(self.path(i))
            if self.pre_transform is not None:
                frames = [self.pre_transform(f) for f in frames]
            if self.transform is None:
                return frames, self.samples[i][1], i, True
            return torch.stack([self.transform(f) for f in frames]), self.samples[i][1], i, True
        except DataError:
            if self.on_bad_image == "fail":
                raise
            T = n_frames(self.perturbation)
            return torch.stack([self._blank()] * T), self.samples[i][1], i, False

    @property
    def noise(self) -> bool:
        return is_noise(self.perturbation)

    def metric_names(self) -> list[str]:
        return ["flip_prob", "top5_dist"]


def imagenet_p_dataset(root: Path, perturbation: str | None = None, difficulty: int = 1,
                       classes: str = "imagenet-1k", on_bad_image: str = "fail") -> ImageNetPDataset:
    root = Path(root)
    if perturbation is None:
        raise DataError("imagenet-p: option perturbation=<name> is required",
                        hint=f"perturbations: {', '.join(ALL_PERTURBATIONS)}")
    difficulty = int(difficulty)
    if base_name(perturbation) != perturbation:  # a folder name like gaussian_noise_2
        difficulty = int(perturbation[-1])
        perturbation = base_name(perturbation)
    if perturbation not in ALL_PERTURBATIONS:
        raise DataError(f"imagenet-p: unknown perturbation {perturbation!r}",
                        hint=f"perturbations: {', '.join(ALL_PERTURBATIONS)}")
    if difficulty not in (1, 2, 3):
        raise DataError(f"imagenet-p: difficulty must be 1, 2 or 3, got {difficulty}")
    folder = perturbation if (difficulty == 1 or not is_noise(perturbation)) else f"{perturbation}_{difficulty}"
    proot = root / folder
    if not proot.is_dir():
        raise DataError(f"imagenet-p: perturbation folder {proot} does not exist")
    wnids = sorted(e.name for e in os.scandir(proot) if e.is_dir() and not e.name.startswith("."))
    bad = [w for w in wnids if not is_wnid(w)]
    if bad:
        raise DataError(f"imagenet-p: class folder {proot / bad[0]} is not a WordNet ID")
    if not wnids:
        raise DataError(f"imagenet-p: no class folders under {proot}")
    samples, used = [], []
    for w in wnids:
        files = sorted(f for f in os.listdir(proot / w) if f.lower().endswith(VIDEO_EXTENSIONS) and not f.startswith("."))
        if not files:
            raise DataError(f"imagenet-p: class folder {proot / w} contains no videos")
        samples.extend((os.path.join(w, f), len(used)) for f in files)
        used.append(w)
    sub = get_class_set(classes).subset(used)
    ds = ImageNetPDataset(
        name="imagenet-p", root=proot, samples=samples, labels=LabelSpace.singletons(sub.wnids, sub.names),
        protocol={"perturbation": perturbation, "difficulty": difficulty, "folder": folder,
                  "n_frames": n_frames(perturbation),
                  "comparison": "first-frame" if is_noise(perturbation) else f"consecutive (stride {difficulty})",
                  "label_space": f"{len(used)} wnid folders", "class_names": classes,
                  "native_size": 224, "reference_preprocess": "none (frames are 224x224)"},
        on_bad_image=on_bad_image,
    )
    ds.perturbation, ds.difficulty = perturbation, difficulty
    return ds


INFOS.append(DatasetInfo("imagenet-p", imagenet_p_dataset, layout=LAYOUT,
                         description="ImageNet-P perturbation sequences (Hendrycks & Dietterich 2019); options perturbation, difficulty",
                         source="https://zenodo.org/record/3565846 (ImageNet-P)",
                         metrics=("flip_prob", "top5_dist"), paper_order=310, tags=("synthetic", "perturbation", "video"),
                         unit_kind="perturbation"))  # frame sequences scored by flip probability
