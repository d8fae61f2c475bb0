"""Models in: a model object (wrap_module) accepted by api.evaluate / api.run with its weights' hash
in the identity, and `roz models list` reading what open_clip, timm and the local HF cache know."""

from __future__ import annotations

import pytest
import torch

from support import natural_fixtures as fx
from roz.errors import ModelError


def _wrapped(**kw):
    from roz.models.base import wrap_module

    return wrap_module(fx.FakeModel(), "imagenet-1k", input_size=16, resize_size=16, mean=(0.0, 0.0, 0.0),
                       std=(1.0, 1.0, 1.0), name="fake-object", **kw)


def test_wrap_module_identity_hashes_the_state_dict():
    a, b = _wrapped(), _wrapped(role="zeroshot")
    assert a.identity.weights_sha256 == b.identity.weights_sha256 and len(a.identity.weights_sha256) == 64
    assert a.role == "standard" and b.role == "zeroshot"
    c = _wrapped()
    c.net.base[3] += 1.0
    from roz.models.statehash import state_dict_sha256

    assert state_dict_sha256(c.net) != a.identity.weights_sha256
    with pytest.raises(ValueError):
        _wrapped(role="teacher")


def test_api_evaluate_and_run_take_a_model_object(tmp_path):
    from roz import api
    from support.tinymodels import store_rows

    root = fx.make_imagenet_val_folders(tmp_path / "val")
    model = _wrapped()
    (rec,) = api.evaluate(model, "imagenet-val", root, out=tmp_path / "a", settings={"workers": 0})
    assert rec.metrics["top1"] == pytest.approx(fx.VAL_EXPECTED["top1"])
    df = api.results(tmp_path / "a")
    assert list(df["model"]) == ["fake-object"]
    api.run({"models": [model], "datasets": [{"name": "imagenet-val", "root": str(root)}]}, out=tmp_path / "b",
            settings={"workers": 0})
    (rows_a, m_a), = store_rows(tmp_path / "a").values()
    (rows_b, m_b), = store_rows(tmp_path / "b").values()
    assert m_a == m_b and rows_a.drop(columns=["path"]).equals(rows_b.drop(columns=["path"]))
    with pytest.raises(ModelError, match="must be a RozModel"):
        api.evaluate(torch.nn.Identity(), "imagenet-val", root, out=tmp_path / "c")


def test_unregistered_object_spec_is_a_clear_error():
    from roz.models.adapters import create_model

    with pytest.raises(ModelError, match="not registered in this process"):
        create_model("python:ghost@0123456789abcdef")


def test_models_list_reads_the_libraries(roz_cli):
    import open_clip
    import timm

    code, out, err = roz_cli("models", "list", "openclip", "--pretrained")
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == len(open_clip.list_pretrained()) and "openclip:ViT-B-32@openai" in lines
    code, out, err = roz_cli("models", "list", "timm", "--pretrained", "--filter", "resnet50.*")
    assert code == 0 and "timm:resnet50.a1_in1k" in out.splitlines()
    assert len(out.splitlines()) == len(timm.list_models("resnet50.*", pretrained=True))
    code, out, err = roz_cli("models", "list", "keras")
    assert code != 0 and "unknown model library" in (out + err)


def test_models_list_hf_reads_the_local_cache(tmp_path):
    from roz.models.catalog import cached_hf_models

    snap = tmp_path / "models--someone--tiny-clip" / "snapshots" / ("a" * 40)
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")
    (tmp_path / "models--someone--tiny-clip" / "refs").mkdir()
    (tmp_path / "models--someone--tiny-clip" / "refs" / "main").write_text("a" * 40)
    assert cached_hf_models(tmp_path) == ["someone/tiny-clip"]
    assert cached_hf_models(tmp_path / "missing") == []
