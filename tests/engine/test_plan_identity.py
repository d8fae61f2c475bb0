"""Issue 12: a unit's identity covers the weights' contents and amp; a run directory refuses to mix
results computed on different contents of one dataset."""

import os

import pandas as pd
import pytest
from support import tinymodels

from roz import api
from roz.engine.plan import plan_units
from roz.engine.store import ResultStore
from roz.errors import RozError


def _eval(spec, data, out, **kw):
    return api.evaluate(spec, "imagefolder", data, out=out, name="mine", settings={"workers": 0}, **kw)[0]


def test_replaced_checkpoint_gives_new_unit_and_new_numbers(seqfx, tmp_path):
    spec, path = tinymodels.timm_checkpoint(tmp_path / "w", seed=0)
    first = _eval(spec, seqfx["data"], tmp_path / "run")
    spec_again, _ = tinymodels.timm_checkpoint(tmp_path / "w", seed=1)  # same path, other weights
    assert spec_again == spec
    second = _eval(spec, seqfx["data"], tmp_path / "run")
    fresh = _eval(spec, seqfx["data"], tmp_path / "fresh")  # what the new weights really give
    assert second.unit_id != first.unit_id
    assert second.unit_id == fresh.unit_id
    got = ResultStore(tmp_path / "run").samples(second.unit_id)
    want = ResultStore(tmp_path / "fresh").samples(fresh.unit_id)
    pd.testing.assert_frame_equal(got, want)
    old = ResultStore(tmp_path / "run").samples(first.unit_id)
    assert not got.drop(columns=["path"]).equals(old.drop(columns=["path"]))
    assert second.model.weights_sha256 != first.model.weights_sha256


def _cfg(seqfx, **kw):
    return {"models": [{"spec": seqfx["model"], "name": "a"}, "timm:resnet18"],
            "datasets": [{"name": "imagefolder", "root": str(seqfx["data"])}], **kw}


def test_amp_and_weights_in_identity(seqfx):
    plain = plan_units(_cfg(seqfx))
    amp = plan_units(_cfg(seqfx, amp=True))
    assert {u.unit_id for u in plain}.isdisjoint(u.unit_id for u in amp)
    local, hub = plain
    assert local.model.weights and len(local.model.weights) == 64  # sha256 of the local checkpoint (+ sidecar)
    assert hub.model.weights is None  # hub weights are named by the spec; their ids did not change
    assert "weights" not in hub.canonical()["model"] and "amp" not in hub.canonical()


def test_changed_dataset_is_refused_without_force(seqfx, tmp_path):
    data = tinymodels.make_imagefolder(tmp_path / "data", n=2, size=(40, 44), ext="png")
    out = tmp_path / "run"
    first = _eval(seqfx["model"], data, out)
    assert first.dataset.fingerprint
    again = _eval(seqfx["model"], data, out)  # unchanged: skipped, no complaint
    assert again.unit_id == first.unit_id
    img = next((data / tinymodels.WNIDS[0]).glob("*.png"))
    st = img.stat()
    os.utime(img, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))  # touched
    with pytest.raises(RozError, match="changed") as e:
        _eval(seqfx["model"], data, out)
    assert "--force" in e.value.hint
    redone = _eval(seqfx["model"], data, out, force=True)
    assert redone.dataset.fingerprint != first.dataset.fingerprint
    (img.parent / "extra.png").write_bytes(img.read_bytes())  # a file added
    with pytest.raises(RozError, match="changed"):
        _eval(seqfx["model"], data, out)


def test_weight_files_of_every_source(tmp_path):
    from roz.engine.fingerprint import weight_files, weights_sha256

    def touch(name):
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(name.encode())
        return p

    pt, side, cfg, w = touch("m.pt"), touch("m.json"), touch("cfg/tiny.json"), touch("w.pth")
    hf = touch("hf/config.json").parent
    touch("hf/model.safetensors")
    assert weight_files(f"local:{pt}") == [pt, side]
    assert weight_files(f"openclip:{cfg}@{w}") == [cfg, w]
    assert weight_files(f"torchvision:resnet18@{w}") == [w]
    assert weight_files(f"timm:resnet18@{pt}") == [pt, side]
    assert [p.name for p in weight_files(f"hf:{hf}")] == ["config.json", "model.safetensors"]
    assert weight_files("openclip:ViT-B-32@openai") == [] and weights_sha256("timm:resnet50") is None
    before = weights_sha256(f"hf:{hf}")
    (hf / "model.safetensors").write_bytes(b"other weights")
    assert weights_sha256(f"hf:{hf}") != before


def test_dataset_label_is_part_of_the_identity_even_when_the_slug_is_cut():
    from roz.engine.units import DatasetRef, ModelRef, Unit

    model = ModelRef(spec="timm:test_vit@/" + "very-long-directory-name/" * 6 + "tiny-vit.pt")
    ids = {Unit(model=model, dataset=DatasetRef(name="imagefolder", root="/data/x", label=label)).unit_id
           for label in ("mine-a", "mine-b", None)}
    assert len(ids) == 3  # the readable slug is cut at 80 characters, before the label: the hash must differ


def test_library_models_are_rekeyed_by_the_preprocessing_version():
    """Library models' pixels changed (the library's own eval transform): their old results are not reused;
    ROZ checkpoints keep their sidecar's transform, so their ids stay."""
    from roz.engine.units import LIBRARY_PREPROCESS_VERSION, DatasetRef, ModelRef, Unit

    data = DatasetRef(name="imagefolder", root="/data/x")
    lib = Unit(model=ModelRef(spec="timm:resnet50"), dataset=data).canonical()["model"]
    assert lib["preprocess_version"] == LIBRARY_PREPROCESS_VERSION >= 2
    assert "preprocess_version" not in Unit(model=ModelRef(spec="local:/m/x.pt"), dataset=data).canonical()["model"]
