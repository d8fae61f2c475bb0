"""One registration mechanism (roz.registry.Registry): explicit registration, no side-effect
imports, and the ROZ-Mini world registering its own names into the lower layers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from roz.errors import DataError, RozError
from roz.registry import Registry

SRC = Path(__file__).resolve().parents[1] / "src"


def _python(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (registries are process-global)."""
    return subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(SRC)},
                          capture_output=True, text=True, timeout=300)


def test_registry_providers_run_once_on_first_lookup_and_unknown_names_are_actionable():
    calls = []
    reg: Registry[int] = Registry("widget", DataError, hint="see `roz widgets`")

    def provider():
        calls.append(1)
        reg.register("alpha", 1)
        reg.register("beta", 2)

    reg.add_provider(provider)
    assert calls == []  # nothing runs before a look-up
    assert reg.get("alpha") == 1 and reg.names() == ["alpha", "beta"] and calls == [1]
    reg.register("alpha", 3)  # explicit replacement
    assert reg.get("alpha") == 3 and calls == [1]
    with pytest.raises(DataError) as e:
        reg.get("alphx")
    assert "unknown widget 'alphx'" in str(e.value) and "did you mean alpha" in e.value.hint
    assert "roz widgets" in e.value.hint


def test_importing_a_dataset_family_registers_nothing():
    r = _python("import sys, roz.datasets.cifar, roz.datasets.imagenet_p\n"
                "sys.exit(0 if 'roz.datasets.registry' not in sys.modules else 1)")
    assert r.returncode == 0, r.stderr[-2000:]


def test_world_names_come_from_world_register():
    """Datasets, models and metrics know no ROZ-Mini names; roz.world.register() adds them."""
    r = _python("from roz.datasets.classes import get_class_set\n"
                "from roz.errors import DataError\n"
                "try:\n    get_class_set('roz-mini')\nexcept DataError as e:\n    print('HINT', e.hint)\n"
                "else:\n    raise SystemExit('roz-mini known before roz.world.register()')\n"
                "import roz.world\nroz.world.register(); roz.world.register()\n"
                "print('N', len(get_class_set('roz-mini')))\n")
    assert r.returncode == 0, r.stdout + r.stderr[-2000:]
    assert "roz.world.register()" in r.stdout and "N 66" in r.stdout


def test_template_sets_and_shift_kinds_use_registries():
    from roz.models.prompts import TEMPLATE_SETS, get_templates, register_templates
    from roz.shifts.registry import SHIFT_FACTORIES, create_shift, register_shift_kind

    register_templates("test-two", lambda: ("a {}.", "the {}."))
    try:
        assert get_templates("test-two") == ("a {}.", "the {}.")
    finally:
        TEMPLATE_SETS._entries.pop("test-two")
    with pytest.raises(RozError, match="unknown template set"):
        get_templates("test-two")
    register_shift_kind("test-identity", lambda opts, dataset: ("identity", opts))
    try:
        assert create_shift({"name": "test-identity", "k": 1}) == ("identity", {"k": 1})
    finally:
        SHIFT_FACTORIES._entries.pop("test-identity")
    with pytest.raises(RozError, match="cannot be applied"):
        create_shift({"name": "test-identity"})


def test_model_sources_are_a_registry():
    """A new model source is one register call; an unknown one is refused with the known names."""
    import pytest

    from roz.errors import ModelError
    from roz.models.adapters import MODEL_SOURCES, create_model, parse_spec, register_model_source

    assert {"openclip", "hf", "timm", "torchvision", "local"} <= set(MODEL_SOURCES)
    with pytest.raises(ModelError, match="unknown model source 'mine'"):
        parse_spec("mine:net")
    built = []

    def build(spec, arch, weights, classes, templates, **kw):
        built.append((spec, arch, weights))
        from roz.models.base import wrap_module
        import torch

        return wrap_module(torch.nn.Flatten(), classes="imagenet-1k", name=kw.get("label") or spec)

    register_model_source("mine", build)
    try:
        assert parse_spec("mine:net@w") == ("mine", "net", "w")
        create_model("mine:net@w")
        assert built == [("mine:net@w", "net", "w")]
    finally:
        MODEL_SOURCES._entries.pop("mine")
