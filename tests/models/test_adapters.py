"""Adapters: tiny models of each family round-trip through local checkpoints and evaluate."""

import json

import pytest
import torch

from roz import api
from roz.datasets.registry import create_dataset
from roz.engine.labelspace import LabelMap
from roz.errors import ModelError
from roz.models.adapters import create_model, parse_spec
from roz.models.zeroshot import ZeroShotClassifier


def _manual_preds(model, ds):
    """Predictions computed by hand: preprocess each image, forward, argmax over the label map."""
    ds.transform = model.transform()
    lm = LabelMap(model.wnids, ds.labels)
    preds = []
    with torch.no_grad():
        for i in range(len(ds)):
            x, _, _, _ = ds[i]
            preds.append(int(lm(model(x[None])).argmax(1)))
    return preds


@pytest.mark.parametrize("family", ["openclip", "timm", "hf"])
def test_roundtrip_and_eval(fx, tmp_path, family):
    if family == "hf":
        from support import tinymodels

        d = tinymodels.hf_clip_dir(tmp_path)
        spec, kw = f"hf:{d}", {"classes": str(tmp_path / "cls.json"), "templates": "simple"}
        (tmp_path / "cls.json").write_text(json.dumps({"wnids": fx["wnids"], "names": ["tench", "goldfish", "shark", "tiger shark"]}))
    else:
        spec, kw = fx[family], {}
    model = create_model(spec, **kw)
    x = torch.rand(3, 3, model.input_size, model.input_size)
    # Reloading from disk gives a bit-identical model.
    again = create_model(spec, **kw)
    assert torch.equal(model(x), again(x))
    assert model(x).shape == (3, len(fx["wnids"]))
    assert (model.role == "zeroshot") == (family != "timm")
    recs = api.evaluate(spec, "imagefolder", fx["data"], out=tmp_path / "run", classes=kw.get("classes"),
                        templates=kw.get("templates"))
    rec = recs[0]
    rows = api.results(tmp_path / "run")
    assert len(rows) == 1 and rec.metrics["n"] == 24
    from roz.engine.store import ResultStore

    df = ResultStore(tmp_path / "run").samples(rec.unit_id)
    ds = create_dataset("imagefolder", fx["data"])
    assert df["pred"].tolist() == _manual_preds(model, ds)
    assert rec.metrics["top1"] == pytest.approx(100 * (df["pred"] == df["target"]).mean())
    # every protocol choice is recorded
    assert rec.protocol["preprocess"]["input_size"] == model.input_size
    assert rec.model.identity["spec"] == spec
    assert "torch" in rec.env


def test_python_api_wraps_any_module(fx, tmp_path):
    from roz.models.base import wrap_module

    net = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(3, 1000))
    m = wrap_module(net, "imagenet-1k", input_size=32)
    x = torch.rand(2, 3, 32, 32)
    expected = net((x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
    assert torch.allclose(m(x), expected)


def test_spec_parsing_and_errors(fx, tmp_path):
    assert parse_spec("timm:resnet50@/w.pt") == ("timm", "resnet50", "/w.pt")
    with pytest.raises(ModelError, match="no source prefix"):
        create_model("resnet50")
    with pytest.raises(ModelError, match="unknown model source"):
        create_model("caffe:alexnet")
    with pytest.raises(ModelError, match="unknown timm model"):
        create_model("timm:resnet5O@none")
    with pytest.raises(ModelError, match="weight file not found"):
        create_model(f"timm:test_vit@{tmp_path / 'missing.pt'}")
    # offline hub weights: one actionable line, immediately (no retries)
    import time

    t = time.perf_counter()
    with pytest.raises(ModelError, match="not in the local cache"):
        create_model("openclip:ViT-B-32@laion2b_s34b_b79k")
    assert time.perf_counter() - t < 10


def test_partial_and_wrong_weights(fx, tmp_path):
    import shutil

    p = tmp_path / "trunc.pt"
    data = fx["timm_path"].read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="truncated|cannot read"):
        create_model(f"timm:test_vit@{p}")
    # a file whose sha256 differs from its sidecar's record is refused (partial/replaced download)
    q = tmp_path / "tampered.pt"
    q.write_bytes(data)
    side = json.loads(fx["timm_path"].with_suffix(".json").read_text())
    side["sha256"] = "0" * 64
    q.with_suffix(".json").write_text(json.dumps(side))
    with pytest.raises(ModelError, match="does not match the sha256"):
        create_model(f"timm:test_vit@{q}")
    # weights of another architecture
    shutil.copy(fx["timm_path"], tmp_path / "other.pt")
    with pytest.raises(ModelError, match="do not fit"):
        create_model(f"timm:test_resnet@{tmp_path / 'other.pt'}", classes=None)


def test_degraded_hf_tokenizer_fails_loudly(tmp_path):
    from support import tinymodels

    d = tinymodels.hf_clip_dir(tmp_path)
    # simulate the offline fallback: a vocabulary that lost (almost) every token
    (d / "vocab.json").write_text(json.dumps({"<|startoftext|>": 0, "<|endoftext|>": 1}))
    (d / "merges.txt").write_text("#version: 0.2\n")
    for f in ("tokenizer.json",):
        (d / f).unlink(missing_ok=True)
    with pytest.raises(ModelError, match="vocabulary did not load"):
        create_model(f"hf:{d}", templates="photo")


def test_zero_shot_is_a_zero_shot_classifier(fx):
    m = create_model(fx["openclip"])
    assert isinstance(m, ZeroShotClassifier)
    assert m.describe()["templates"] == "custom[2]"


def test_convolutional_nets_run_channels_last_on_cpu_with_the_same_outputs():
    """A CNN is re-laid-out in channels_last on its first CPU batch (speed only): its outputs match
    the plain net's, and a first batch under inference_mode does not leave inference-tensor
    weights behind (an attack's backward pass must still work). A net with fewer convolutions
    (a ViT's one patch embedding) is left as is."""
    import copy

    import timm

    from roz.models.base import CHANNELS_LAST_MIN_CONVS, wrap_module

    torch.manual_seed(0)
    net = timm.create_model("resnet10t", num_classes=10, channels=[8, 16, 32, 64], stem_width=8).eval()
    plain = copy.deepcopy(net)
    m = wrap_module(net, "imagenet-1k", input_size=32)
    x = torch.rand(3, 3, 32, 32)
    with torch.inference_mode():
        y = m(x)
    assert m._net_channels_last and net.conv1[0].weight.is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        ref = plain((x - m._mean) / m._std)
    torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-5)
    xg = x.clone().requires_grad_(True)
    m(xg).sum().backward()
    assert xg.grad is not None and torch.isfinite(xg.grad).all()

    vit = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 8, 8), torch.nn.Flatten(), torch.nn.Linear(64, 10))
    assert CHANNELS_LAST_MIN_CONVS > 1
    w = wrap_module(vit, "imagenet-1k", input_size=32)
    w(x)
    assert not w._net_channels_last and vit[0].weight.is_contiguous()
