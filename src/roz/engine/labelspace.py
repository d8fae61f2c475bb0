"""Map a model's output classes onto a dataset's label space.

Both sides speak WordNet IDs. For each dataset label the logits of the model classes in its group
are max-merged (a singleton group is a plain class mask). This is the testbed's protocol for
ImageNet-R/-A (mask), ObjectNet (argmax over the mapped classes, correct if any class mapped to
the true label wins) and the video datasets (max over each video class's ImageNet classes).
"""

from __future__ import annotations

import torch
from torch import nn

from roz.datasets.base import LabelSpace
from roz.errors import DataError


class LabelMap(nn.Module):
    """``logits[B, n_model_classes] -> logits[B, n_labels]`` by max over each label's group."""

    def __init__(self, model_wnids, labels: LabelSpace, what: str = "dataset"):
        super().__init__()
        index = {w: i for i, w in enumerate(model_wnids)}
        self.identity = list(model_wnids) == [g[0] for g in labels.groups] and all(len(g) == 1 for g in labels.groups)
        groups, dropped, empty = [], 0, []
        for name, g in zip(labels.names, labels.groups):
            idx = [index[w] for w in g if w in index]
            dropped += len(g) - len(idx)
            if not idx:
                empty.append(name)
            groups.append(idx)
        if empty:
            raise DataError(
                f"{what}: the model cannot predict {len(empty)} of its {len(labels)} labels "
                f"(no output class for e.g. {empty[:5]})",
                hint="evaluate a model whose classes cover the dataset, or use a zero-shot head over the dataset's classes (head=subset)",
            )
        self.n_model = len(index)
        self.n_dropped = dropped
        width = max(len(g) for g in groups)
        pad = [g + [self.n_model] * (width - len(g)) for g in groups]  # pad with the -inf column
        self.register_buffer("gather", torch.tensor(pad, dtype=torch.long), persistent=False)
        self.single = width == 1

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        if self.identity:
            return logits
        if logits.shape[1] != self.n_model:
            raise ValueError(f"expected {self.n_model} logits, got {logits.shape[1]}")
        if self.single:
            return logits.index_select(1, self.gather[:, 0])
        ext = torch.cat([logits, logits.new_full((logits.shape[0], 1), float("-inf"))], dim=1)
        return ext[:, self.gather].amax(dim=2)


class MappedModel(nn.Module):
    """A model whose outputs are already in a dataset's label space (what attacks see)."""

    def __init__(self, model: nn.Module, label_map: LabelMap):
        super().__init__()
        self.model = model
        self.label_map = label_map
        for attr in ("mean", "std", "input_size"):
            if hasattr(model, attr):
                setattr(self, attr, getattr(model, attr))

    def forward(self, x):
        return self.label_map(self.model(x))
