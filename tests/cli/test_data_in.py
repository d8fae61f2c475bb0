"""Own data in: `roz eval` with a dataset preset and a root template (as CLIP_benchmark's
--dataset_root), loader options on the command line, and --label telling two custom datasets apart."""

from __future__ import annotations

import json
import pytest

from support import natural_fixtures as fx
from roz.datasets.presets import expand_presets
from roz.errors import ConfigError


def _fake(spec, **kw):
    from roz.models.base import wrap_module

    return wrap_module(fx.FakeModel(), "imagenet-1k", input_size=16, resize_size=16, mean=(0.0, 0.0, 0.0),
                       std=(1.0, 1.0, 1.0), name=kw.get("name") or "fake")


@pytest.fixture
def fake_model(monkeypatch):
    import roz.engine.jobs as runner  # where the runner builds its models

    monkeypatch.setattr(runner, "create_model", _fake)


def test_expand_presets_fills_the_root_template():
    (entry,) = [d for d in expand_presets([{"preset": "natural", "root": "/d/{wds}", "label_suffix": "-wds",
                                            "options": {"objectnet": {"mappings": "/m"}}}]) if d["name"] == "objectnet"]
    assert entry == {"name": "objectnet", "root": "/d/wds_objectnet", "options": {"mappings": "/m"},
                     "label": "objectnet-wds"}
    names = [d["name"] for d in expand_presets([{"preset": "natural", "root": "/d/{name}"}])]
    assert names[0] == "imagenet-val" and "imagenet-r" in names and "objectnet" in names
    with pytest.raises(ConfigError, match="unknown dataset preset"):
        expand_presets([{"preset": "nope", "root": "/d"}])


def test_eval_natural_preset_with_root_template(tmp_path, roz_cli, fake_model):
    from roz import api

    data = tmp_path / "data"
    fx.make_imagenet_val_folders(data / "imagenet-val")
    fx.make_imagenetv2(data / "imagenetv2-matched-frequency")
    fx.make_sketch(data / "imagenet-sketch")
    fx.make_imagenet_r_a(data / "imagenet-r", "r")
    fx.make_imagenet_r_a(data / "imagenet-a", "a")
    fx.make_objectnet(data / "objectnet")
    code, out, err = roz_cli("eval", "-m", "timm:fake@none", "-d", "natural", "--dataset-root", str(data / "{name}"),
            "-o", str(tmp_path / "run"), "--workers", "0",
            "--option", "imagenet-r.allow_partial=true", "--option", "imagenet-a.allow_partial=true")
    assert code == 0, (out, err)
    df = api.results(tmp_path / "run").set_index("dataset")
    expected = {"imagenet-val": fx.VAL_EXPECTED, "imagenetv2-matched-frequency": fx.V2_EXPECTED,
                "imagenet-sketch": fx.SKETCH_EXPECTED, "imagenet-r": fx.RA_EXPECTED, "imagenet-a": fx.RA_EXPECTED,
                "objectnet": fx.OBJECTNET_EXPECTED}
    assert sorted(df.index) == sorted(expected)
    for name, exp in expected.items():
        assert df.loc[name, "top1"] == pytest.approx(exp["top1"]), name


def test_two_custom_folders_told_apart_by_label(tmp_path, roz_cli, fake_model):
    from roz import api

    for root, preds in (("a", [0, 1]), ("b", [0, 0])):  # b: the goldfish image is read as a tench
        for folder, p in zip(("my_tench", "my_goldfish"), preds):
            fx.write_image(tmp_path / root / folder / "0.png", p)
    (tmp_path / "names.json").write_text(json.dumps({"my_tench": {"wnid": fx.wnid(0), "name": "tench"},
                                                     "my_goldfish": fx.wnid(1)}))
    for root in ("a", "b"):
        code, out, err = roz_cli("eval", "-m", "timm:fake@none", "-d", "folder", "-r", str(tmp_path / root),
                                 "--label", f"mine-{root}", "--option", f"class_names={tmp_path / 'names.json'}",
                                 "-o", str(tmp_path / "run"), "--workers", "0")
        assert code == 0, (out, err)
    df = api.results(tmp_path / "run").set_index("dataset")
    assert df.loc["mine-a", "top1"] == pytest.approx(100.0) and df.loc["mine-b", "top1"] == pytest.approx(50.0)
