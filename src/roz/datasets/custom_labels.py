"""Label spaces of user datasets (``folder``, ``hf``, ``wds``): from class names, WordNet IDs or a class set.

Rules, in order (the one used is recorded as ``protocol["label_space"]``):

* option ``classes=NAME|FILE.json`` (a class set, e.g. ``imagenet-1k``): label k is the k-th class
  of the set (an ImageNet-ordered copy of ImageNet read from Hugging Face or webdataset);
* every class name is a WordNet ID: each label is that wnid (any ImageNet model maps onto it),
  named by its ImageNet-1k name where it has one;
* otherwise each label is its own class name: zero-shot models score it with a head over the
  dataset's names (``head: subset``); standard ImageNet models cannot (they have no such class).

A class-names JSON maps a folder / label to a name, a wnid, or both::

    {"golden_retriever": "golden retriever", "tabby": "n02123045", "x": {"wnid": "n01440764", "name": "tench"}}
"""

from __future__ import annotations

import json
from pathlib import Path

from roz.datasets.base import LabelSpace, is_wnid
from roz.errors import DataError


def label_space(names: list[str] | None, classes: str | None, what: str, n_labels: int | None = None
                ) -> tuple[LabelSpace, dict]:
    """``(LabelSpace, protocol entries)`` for a dataset whose label k is ``names[k]``."""
    from roz.datasets.classes import get_class_set, imagenet_1k

    if classes:
        cs = get_class_set(classes)
        n = len(names) if names is not None else n_labels
        if n is not None and n > len(cs):
            raise DataError(f"{what}: {n} labels but class set {cs.name!r} has {len(cs)} classes",
                            hint="pass the class set the labels index (label k = its k-th class)")
        return (LabelSpace.singletons(cs.wnids, cs.names),
                {"label_space": f"class set {cs.name} (label k = its k-th class)", "class_names": cs.name})
    if not names:
        raise DataError(f"{what}: no class names", hint="give the class names (a class-names file, the label "
                                                       "column's ClassLabel names) or a class set: classes=imagenet-1k")
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise DataError(f"{what}: duplicate class names {dup[:5]}", hint="every label needs its own name")
    if all(is_wnid(n) for n in names):
        known = dict(zip(imagenet_1k().wnids, imagenet_1k().names))
        return (LabelSpace.singletons(names, [known.get(n, n) for n in names]),
                {"label_space": f"{len(names)} WordNet IDs", "class_names": "open_clip IMAGENET_CLASSNAMES"})
    return (LabelSpace([(n,) for n in names], list(names)),
            {"label_space": f"{len(names)} own class names (zero-shot: head=subset)", "class_names": "dataset"})


def read_class_names_file(path: Path, what: str) -> dict:
    """A class-names JSON: ``{key: name | wnid | {"wnid": .., "name": ..}}`` -> ``{key: (wnid|None, name)}``."""
    path = Path(path).expanduser()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"{what}: cannot read class-names file {path}: {e}") from None
    if not isinstance(data, dict):
        raise DataError(f"{what}: class-names file {path} is not a JSON object",
                        hint='expected {"folder": "class name" | "n01440764" | {"wnid": ..., "name": ...}}')
    out = {}
    for key, v in data.items():
        if isinstance(v, str):
            out[str(key)] = (v, None) if is_wnid(v) else (None, v)
        elif isinstance(v, dict) and ("wnid" in v or "name" in v):
            out[str(key)] = (v.get("wnid"), v.get("name"))
        else:
            raise DataError(f"{what}: class-names file {path}: entry {key!r} is {v!r}",
                            hint='each value is a name, a WordNet ID, or {"wnid": ..., "name": ...}')
    return out


def space_from_entries(keys: list[str], entries: dict, what: str) -> tuple[LabelSpace, dict]:
    """Label space for ``keys`` (folders / labels) given class-names file ``entries``: a key with a
    wnid is that ImageNet class; without one it is its own name."""
    from roz.datasets.classes import imagenet_1k

    missing = [k for k in keys if k not in entries]
    if missing:
        raise DataError(f"{what}: the class-names file has no entry for {len(missing)} classes (e.g. {missing[:3]})",
                        hint="add one entry per class folder / label")
    known = dict(zip(imagenet_1k().wnids, imagenet_1k().names))
    groups, names = [], []
    for k in keys:
        wnid, name = entries[k]
        if wnid is not None and not is_wnid(wnid):
            raise DataError(f"{what}: {wnid!r} (for {k!r}) is not a WordNet ID")
        name = name or known.get(wnid) or k
        groups.append((wnid or name,))
        names.append(name)
    n_wnid = sum(1 for k in keys if entries[k][0])
    return LabelSpace(groups, names), {"label_space": f"{len(keys)} classes from a class-names file "
                                                      f"({n_wnid} with WordNet IDs)", "class_names": "class-names file"}
