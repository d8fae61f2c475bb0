"""The labelled few-shot set prompt learning trains on, and its (frozen) image features.

The draw is a seeded, class-stratified sample: for each dataset label in order, ``shots`` sample
positions drawn without replacement by ``numpy.random.default_rng(seed)`` (all of them if a class has
fewer; recorded). Labels are mapped onto the model's class set by WordNet ID. Because prompt
learning never changes the image encoder, image features are computed once, unit-normalised.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from roz.errors import RozError


@dataclass
class FewShotSet:
    features: torch.Tensor  # [N, E] unit-norm image features
    targets: torch.Tensor  # [N] indices into the model's class set
    record: dict = field(default_factory=dict)  # dataset, root, split, shots, seed, indices, ...


def stratified_indices(labels: list[int], shots: int, seed: int) -> list[int]:
    """``shots`` positions per label (seeded, without replacement), sorted."""
    rng = np.random.default_rng(seed)
    by_label: dict[int, list[int]] = {}
    for i, y in enumerate(labels):
        by_label.setdefault(int(y), []).append(i)
    out: list[int] = []
    for y in sorted(by_label):
        pos = by_label[y]
        take = rng.choice(len(pos), size=min(shots, len(pos)), replace=False)
        out += [pos[int(k)] for k in sorted(take)]
    return sorted(out)


def few_shot_set(model, dataset: str, root: str | Path, shots: int = 16, seed: int = 0,
                 options: dict | None = None, batch_size: int = 128) -> FewShotSet:
    """Draw the few-shot set from ``dataset`` at ``root`` and encode it with ``model``'s image tower."""
    from roz.datasets.registry import create_dataset

    if shots < 1:
        raise RozError(f"shots must be at least 1, got {shots}", hint="pass --shots 16 (images per class)")
    ds = create_dataset(dataset, root, **(options or {}))
    ds.transform = model.transform()
    wnid_index = {w: i for i, w in enumerate(model.classes.wnids)}
    to_model = []
    for group in ds.labels.groups:
        hit = [wnid_index[w] for w in group if w in wnid_index]
        to_model.append(hit[0] if hit else None)
    labels = [y for _, y in ds.samples]
    missing = sorted({ds.labels.names[y] for y in labels if to_model[y] is None})
    if missing:
        raise RozError(f"{len(missing)} class(es) of {dataset} at {root} are not in the model's class set "
                       f"{model.classes.name!r}, e.g. {missing[:3]}",
                       hint="pass classes= a class set covering the dataset (or use a dataset of the model's classes)")
    idx = stratified_indices(labels, shots, seed)
    feats = []
    with torch.no_grad():  # not inference_mode: the features enter autograd graphs of the text side later
        for start in range(0, len(idx), batch_size):
            x = torch.stack([ds[i][0] for i in idx[start:start + batch_size]])
            feats.append(model.encode_image(x.to(model._mean.device)).float().cpu())
    counts = np.bincount([labels[i] for i in idx], minlength=len(ds.labels))
    record = {"dataset": dataset, "root": str(Path(root).expanduser().resolve()),
              "split": Path(root).expanduser().resolve().name, "options": dict(options or {}), "shots": shots,
              "seed": seed, "draw": "per-label numpy default_rng(seed).choice without replacement, sorted",
              "n": len(idx), "min_per_class": int(counts[counts > 0].min()) if len(idx) else 0,
              "indices": idx, "paths": [ds.stored_path(i) for i in idx]}
    targets = torch.tensor([to_model[labels[i]] for i in idx], dtype=torch.long)
    return FewShotSet(torch.cat(feats) if feats else torch.zeros(0, 1), targets, record)
