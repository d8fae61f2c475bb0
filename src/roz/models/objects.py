"""Model *objects* in the API: ``api.evaluate(wrap_module(net, ...), ...)``.

A ``RozModel`` built in Python (``roz.models.base.wrap_module``, or any ``RozModel`` /
``ZeroShotClassifier``) is registered under the spec ``python:NAME@SHA`` -- ``SHA`` the first 16
hex digits of the SHA-256 of its state dict -- and the engine builds it from that spec like any
other source. Registration is per process: such models run with the in-process executor
(``local``, the default), not ``process`` / ``ray`` workers, which cannot receive the object.
"""

from __future__ import annotations

from torch import nn

from roz.errors import ModelError
from roz.models.base import RozModel
from roz.models.statehash import state_dict_sha256

_OBJECTS: dict[str, nn.Module] = {}


def register_model_object(model) -> str:
    """The spec under which ``model`` (a ``RozModel``) is evaluated; registers it in this process."""
    if not isinstance(model, RozModel):
        raise ModelError(f"a model object must be a RozModel, got {type(model).__name__}",
                         hint="wrap a plain nn.Module with roz.models.base.wrap_module(module, classes, input_size=..., "
                              "mean=..., std=..., name=...)")
    sha = model.identity.weights_sha256 or state_dict_sha256(model)
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(model.name)) or "model"
    spec = f"python:{name}@{sha[:16]}"
    _OBJECTS[spec] = model
    return spec


def build(spec, arch, weights, classes, templates, **_kw):
    """The ``python`` model source: the object registered under ``spec``."""
    if spec not in _OBJECTS:
        raise ModelError(f"model {spec} is a Python object not registered in this process",
                         hint="pass the object itself to roz.api.evaluate / roz.api.run (executor 'local'); a "
                              "worker process cannot receive it")
    if classes is not None or templates is not None:
        raise ModelError(f"model {spec}: classes / templates cannot be changed on a model object",
                         hint="build the object with the classes and templates it should use")
    return _OBJECTS[spec]
