"""Shape bias on cue-conflict images (Geirhos et al. 2019, "ImageNet-trained CNNs are biased
towards texture").

Each cue-conflict image has the shape of one class and the texture of another. Following the
paper's definition, only the images where the model decides for either cue count:

    shape bias = shape decisions / (shape decisions + texture decisions)

where a shape decision is "predicted the shape class" and a texture decision "predicted the
texture class"; images whose shape and texture class are the same are left out (they carry no
conflict), and so are predictions of any third class. The fraction is given in percent, with the
counts it is made of.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def shape_bias(preds: Sequence[int], shapes: Sequence[int], textures: Sequence[int]) -> dict[str, float]:
    """``{"shape_bias" (percent; NaN without a cue decision), "shape_decisions",
    "texture_decisions", "cue_decisions", "n" (conflict images), "n_same_cue" (left out)}``;
    a texture label < 0 (unknown) leaves the image out too."""
    if not (len(preds) == len(shapes) == len(textures)):
        raise ValueError(f"shape bias: {len(preds)} predictions, {len(shapes)} shapes, {len(textures)} textures")
    shape = texture = n = same = 0
    for p, s, t in zip(preds, shapes, textures):
        if t is None or t < 0:
            continue
        if s == t:
            same += 1
            continue
        n += 1
        shape += int(p == s)
        texture += int(p == t)
    cue = shape + texture
    return {"shape_bias": 100.0 * shape / cue if cue else math.nan, "shape_decisions": shape,
            "texture_decisions": texture, "cue_decisions": cue, "n": n, "n_same_cue": same}
