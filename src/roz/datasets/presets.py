"""Dataset presets: one config entry (or ``roz eval -d PRESET``) for a group of datasets whose roots
follow a template, as CLIP_benchmark's ``--dataset_root`` does::

    datasets:
      - {preset: natural, root: "/data/{name}"}          # /data/imagenet-val, /data/imagenet-r, ...
      - {preset: natural, root: "/data/{wds}", label_suffix: "-wds",
         options: {objectnet: {mappings: /data/objectnet-1.0/mappings}}}   # CLIP_benchmark copies

Placeholders: ``{name}`` is the ROZ dataset name, ``{wds}`` the CLIP_benchmark collection name
(``wds_imagenet1k``, ``wds_imagenetv2``, ...). ``options`` maps a dataset name to its loader options.
"""

from __future__ import annotations

from roz.errors import ConfigError

#: The paper's natural distribution shifts with a single-image protocol (ImageNet val first).
PRESETS: dict[str, tuple[str, ...]] = {
    "natural": ("imagenet-val", "imagenetv2-matched-frequency", "imagenet-sketch", "imagenet-r", "imagenet-a",
                "objectnet"),
}

#: ROZ dataset -> the CLIP_benchmark webdataset collection of the same test set.
CLIP_BENCHMARK_NAMES = {
    "imagenet-val": "wds_imagenet1k",
    "imagenetv2-matched-frequency": "wds_imagenetv2",
    "imagenet-sketch": "wds_imagenet_sketch",
    "imagenet-r": "wds_imagenet-r",
    "imagenet-a": "wds_imagenet-a",
    "objectnet": "wds_objectnet",
    "imagenet-o": "wds_imagenet-o",
}


def preset_roots(preset: str, template: str) -> dict[str, str]:
    """``{dataset name: root}`` for ``preset`` with ``template`` filled per dataset."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown dataset preset {preset!r}", hint=f"presets: {', '.join(PRESETS)}")
    out = {}
    for name in PRESETS[preset]:
        try:
            out[name] = template.format(name=name, wds=CLIP_BENCHMARK_NAMES.get(name, name))
        except (KeyError, IndexError, ValueError) as e:
            raise ConfigError(f"dataset root template {template!r}: {e!r}",
                              hint="use {name} (ROZ dataset name) and/or {wds} (CLIP_benchmark collection name)") from None
    return out


def expand_presets(entries) -> list:
    """The config's ``datasets`` list with every ``{preset: ..., root: TEMPLATE}`` entry expanded."""
    out = []
    for d in entries or []:
        if not (isinstance(d, dict) and "preset" in d):
            out.append(d)
            continue
        unknown = sorted(set(d) - {"preset", "root", "options", "label_suffix"})
        if unknown or "root" not in d:
            raise ConfigError(f"dataset preset entry {d!r}: " + (f"unknown keys {unknown}" if unknown else "no root"),
                              hint="{preset: natural, root: '/data/{name}', options: {objectnet: {...}}, "
                                   "label_suffix: '-wds'}")
        options = d.get("options") or {}
        suffix = d.get("label_suffix") or ""
        for name, root in preset_roots(str(d["preset"]), str(d["root"])).items():
            out.append({"name": name, "root": root, "options": dict(options.get(name) or {}),
                        **({"label": name + suffix} if suffix else {})})
    return out
