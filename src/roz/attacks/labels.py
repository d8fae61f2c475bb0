"""Label spaces of transfer attacks: which surrogate class(es) stand for each target class.

A model declares its classes with a ``wnids`` attribute (WordNet IDs, one per output). Without a
``label_map`` the surrogate must declare the same classes as the target; anything else is a
RozError, because a surrogate with another class list would silently attack the wrong labels
(e.g. target class 0 'accordion' as surrogate class 0 'tench').
"""

from __future__ import annotations

import torch

from roz.errors import RozError

MAP_MODES = ("identity", "wnid")
_HINT = ("pass label_map='wnid' (each target class through the surrogate class with its WordNet ID), "
         "label_map='identity' (same classes, same order), or a list with the surrogate class(es) of "
         "each target class")


def declared(model: torch.nn.Module) -> tuple[str, ...] | None:
    """The model's class WordNet IDs, or None if it declares none."""
    try:
        w = getattr(model, "wnids", None)
    except Exception:  # a property that cannot answer = no declaration
        return None
    return None if w is None else tuple(str(v) for v in w)


def _by_wnid(name: str, target: tuple[str, ...] | None, surrogate: tuple[str, ...] | None) -> list[list[int]]:
    if target is None or surrogate is None:
        who = " and ".join(w for w, d in (("the target", target), ("the surrogate", surrogate)) if d is None)
        raise RozError(f"attack '{name}': label_map='wnid' but {who} declares no `wnids`",
                       hint="give both models a `wnids` attribute (one WordNet ID per output) or pass a list")
    index = {w: i for i, w in enumerate(surrogate)}
    missing = [w for w in target if w not in index]
    if missing:
        raise RozError(f"attack '{name}': the surrogate has no class for {len(missing)} of the target's "
                       f"{len(target)} WordNet IDs, e.g. {missing[:5]}",
                       hint="choose a surrogate whose classes cover the target's, or pass an explicit list")
    return [[index[w]] for w in target]


def _explicit(name: str, label_map, target: tuple[str, ...] | None) -> list[list[int]]:
    groups = []
    for k, entry in enumerate(label_map):
        g = [entry] if isinstance(entry, int) else list(entry) if isinstance(entry, (list, tuple)) else None
        if not g or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in g):
            raise RozError(f"attack '{name}': label_map[{k}]={entry!r} is not a surrogate class index or a "
                           "non-empty list of them", hint=_HINT)
        groups.append(g)
    if target is not None and len(groups) != len(target):
        raise RozError(f"attack '{name}': label_map has {len(groups)} entries, the target has {len(target)} classes",
                       hint="give one entry per target class")
    return groups


def resolve_label_map(name: str, target: torch.nn.Module, surrogate: torch.nn.Module,
                      label_map) -> tuple[list[list[int]] | None, str]:
    """``(groups, description)``: ``groups[k]`` are the surrogate classes of target class k, or
    None when the two output spaces are the same. RozError when they differ and no map is given."""
    t, s = declared(target), declared(surrogate)
    if label_map is None:
        if t is not None and s is not None and t == s:
            return None, "identity: surrogate and target declare the same WordNet IDs"
        if t is not None and s is not None:
            diff = next((k for k, (a, b) in enumerate(zip(t, s)) if a != b), min(len(t), len(s)))
            raise RozError(f"attack '{name}': the surrogate's {len(s)} classes differ from the target's {len(t)} "
                           f"(first difference at class {diff}: target "
                           f"{t[diff] if diff < len(t) else '-'} vs surrogate {s[diff] if diff < len(s) else '-'})",
                           hint=_HINT)
        who = " and ".join(w for w, d in (("the target", t), ("the surrogate", s)) if d is None)
        raise RozError(f"attack '{name}': cannot check that the surrogate predicts the target's classes: "
                       f"{who} declares no `wnids`", hint=_HINT)
    if isinstance(label_map, str):
        if label_map not in MAP_MODES:
            raise RozError(f"attack '{name}': label_map={label_map!r} is not one of {MAP_MODES} or a list", hint=_HINT)
        if label_map == "wnid":
            return _by_wnid(name, t, s), "wnid: each target class through the surrogate class with its WordNet ID"
        if t is not None and s is not None and len(t) != len(s):
            raise RozError(f"attack '{name}': label_map='identity' but the target has {len(t)} classes and the "
                           f"surrogate {len(s)}", hint=_HINT)
        return None, "identity (given): surrogate and target output the same classes in the same order"
    if not isinstance(label_map, (list, tuple)):
        raise RozError(f"attack '{name}': label_map must be 'identity', 'wnid' or a list, got "
                       f"{type(label_map).__name__}", hint=_HINT)
    return _explicit(name, label_map, t), "explicit list: target class -> surrogate class(es), max over a group"


class MappedSurrogate(torch.nn.Module):
    """Surrogate logits mapped to the target's label space: max over each target class's group."""

    def __init__(self, surrogate: torch.nn.Module, groups: list[list[int]]):
        super().__init__()
        self.surrogate = surrogate
        width = max(len(g) for g in groups)
        # pad short groups by repeating their first class (max is unchanged)
        pad = [g + [g[0]] * (width - len(g)) for g in groups]
        self.register_buffer("gather", torch.tensor(pad, dtype=torch.long), persistent=False)
        self.training = False  # not .eval(): that would also switch the caller's surrogate
        for attr in ("mean", "std", "input_size", "name"):
            if hasattr(surrogate, attr):
                setattr(self, attr, getattr(surrogate, attr))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.surrogate(x)
        idx = self.gather.to(z.device)
        if idx.shape[1] == 1:
            return z.index_select(1, idx[:, 0])
        return z[:, idx].amax(dim=2)
