"""End to end: `roz run` on a config listing the eight natural-shift datasets (fixture roots) with
one scripted model gives one result row per dataset with the right metric names and the
hand-computed values, and `roz results` prints them in the paper's order."""

from __future__ import annotations

import pytest
import yaml

from support import natural_fixtures as fx

EIGHT = ["imagenet-val", "imagenetv2-matched-frequency", "imagenet-sketch", "imagenet-r", "imagenet-a",
         "objectnet", "imagenet-vid-robust", "ytbb-robust"]


def _fake_rozmodel(spec, **kw):
    from roz.models.base import wrap_module

    # identity normalisation, 16-px input: the solid fixture colours survive resize / crop
    return wrap_module(fx.FakeModel(), "imagenet-1k", input_size=16, resize_size=16,
                       mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), name=kw.get("name") or "fake")


@pytest.fixture
def eight_roots(tmp_path):
    roots, expected = {}, {}
    roots["imagenet-val"] = fx.make_imagenet_val_folders(tmp_path / "val")
    expected["imagenet-val"] = fx.VAL_EXPECTED
    roots["imagenetv2-matched-frequency"] = fx.make_imagenetv2(tmp_path / "v2")
    expected["imagenetv2-matched-frequency"] = fx.V2_EXPECTED
    roots["imagenet-sketch"] = fx.make_sketch(tmp_path / "sketch")
    expected["imagenet-sketch"] = fx.SKETCH_EXPECTED
    roots["imagenet-r"] = fx.make_imagenet_r_a(tmp_path / "r", "r")
    expected["imagenet-r"] = fx.RA_EXPECTED
    roots["imagenet-a"] = fx.make_imagenet_r_a(tmp_path / "a", "a")
    expected["imagenet-a"] = fx.RA_EXPECTED
    roots["objectnet"] = fx.make_objectnet(tmp_path / "objectnet")
    expected["objectnet"] = fx.OBJECTNET_EXPECTED
    roots["imagenet-vid-robust"], expected["imagenet-vid-robust"] = fx.make_vid(tmp_path / "vid")
    roots["ytbb-robust"], expected["ytbb-robust"] = fx.make_ytbb(tmp_path / "ytbb")
    return roots, expected


def test_roz_run_eight_datasets(tmp_path, eight_roots, monkeypatch):
    pytest.importorskip("typer")
    import roz.engine.jobs as jobs  # where the runner builds its models
    from rich.console import Console
    from typer.testing import CliRunner

    import roz.cli as cli
    from roz import api

    monkeypatch.setattr(jobs, "create_model", _fake_rozmodel)
    monkeypatch.setattr(cli.common, "console", Console(width=400, force_terminal=False))
    roots, expected = eight_roots
    order = list(reversed(EIGHT))  # config order must not matter
    cfg = {"out": str(tmp_path / "run"), "models": [{"spec": "timm:fake@none", "name": "fake"}],
           "datasets": [{"name": n, "root": str(roots[n]),
                         **({"options": {"allow_partial": True}} if n in ("imagenet-r", "imagenet-a") else {})}
                        for n in order]}
    cfg_path = tmp_path / "run.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    cr = CliRunner()
    r = cr.invoke(cli.app, ["run", str(cfg_path), "--workers", "0", "--batch-size", "4"])
    assert r.exit_code == 0, (r.output, r.exception)

    df = api.results(tmp_path / "run")
    assert list(df["dataset"]) == EIGHT  # one row per dataset, paper order
    for _, row in df.iterrows():
        name = row["dataset"]
        if name in ("imagenet-vid-robust", "ytbb-robust"):
            assert {"pm0", "pm10"} <= {c for c in df.columns if row[c] == row[c]}
        else:
            assert row["top1"] == row["top1"] and row["top5"] == row["top5"]
        for k, v in expected[name].items():
            assert row[k] == pytest.approx(v), (name, k)

    r = cr.invoke(cli.app, ["results", str(tmp_path / "run")])
    assert r.exit_code == 0, r.output
    pos = [r.output.find(n) for n in EIGHT]
    assert all(p >= 0 for p in pos) and pos == sorted(pos), r.output
