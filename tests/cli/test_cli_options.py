"""Issue 12: a run config's settings apply unless a flag is given (flag > config > default)."""

import yaml

from roz import api
from roz.engine.options import RunOptions, default_device, resolve_options
from roz.engine.store import ResultStore


def _spy(monkeypatch):
    seen = []
    real = api.run_units

    def spy(units, run_dir, opts, **kw):
        seen.append((opts, units))
        return real(units, run_dir, opts, **kw)

    monkeypatch.setattr(api, "run_units", spy)
    return seen


def _config(tmp_path, clifx, **settings):
    cfg = {"out": str(tmp_path / "run"), "models": [{"spec": clifx["model"], "name": "vit"}],
           "datasets": [{"name": "imagefolder", "root": str(clifx["data"])}], "limit": 4, **settings}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_config_settings_apply_without_flags(clifx, tmp_path, roz_cli, monkeypatch):
    seen = _spy(monkeypatch)
    code, _, err = roz_cli("run", _config(tmp_path, clifx, batch_size=3, workers=0, device="cpu", amp=True,
                                          part_size=2))
    assert code == 0, err
    (opts, units), = seen
    assert (opts.batch_size, opts.workers, opts.device, opts.amp, opts.part_size) == (3, 0, "cpu", True, 2)
    assert all(u.amp for u in units)
    (rec,) = ResultStore(tmp_path / "run").records()
    assert rec.protocol["amp"] is True  # issue 12: it recorded amp: false


def test_flags_override_config(clifx, tmp_path, roz_cli, monkeypatch):
    seen = _spy(monkeypatch)
    code, _, err = roz_cli("run", _config(tmp_path, clifx, batch_size=3, workers=1, amp=True),
                           "-b", "5", "--workers", "0", "--no-amp", "--device", "cpu")
    assert code == 0, err
    (opts, units), = seen
    assert (opts.batch_size, opts.workers, opts.device, opts.amp) == (5, 0, "cpu", False)
    assert not any(u.amp for u in units)
    assert ResultStore(tmp_path / "run").records()[0].protocol["amp"] is False


def test_defaults_come_from_run_options(clifx, tmp_path, monkeypatch):
    seen = _spy(monkeypatch)
    api.evaluate(clifx["model"], "imagefolder", clifx["data"], out=tmp_path / "run", limit=4,
                 settings={"workers": 0})
    (opts, units), = seen
    from roz.engine.evaluate import DEFAULT_PART_SIZE

    assert (opts.batch_size, opts.amp, opts.part_size) == (RunOptions.batch_size, RunOptions.amp, DEFAULT_PART_SIZE)
    assert opts.device == default_device()
    assert units[0].head == "full" and units[0].seed == 0 and units[0].on_bad_image == "fail"


def test_resolve_options_precedence():
    config = {"device": "cuda:7", "amp": True, "batch_size": 32}
    assert resolve_options(config).device == "cuda:7"
    flags = {"device": "cpu", "amp": None}
    opts = resolve_options(config, flags)
    assert (opts.device, opts.amp, opts.batch_size) == ("cpu", True, 32)  # None = not given
    assert resolve_options().device == default_device()


def test_label_tells_two_custom_datasets_apart(clifx, tmp_path, roz_cli):
    out = tmp_path / "run"
    for label in ("mine-a", "mine-b"):
        code, _, err = roz_cli("eval", "-m", clifx["model"], "-d", "imagefolder", "-r", clifx["data"], "-o", out,
                               "--label", label, "--limit", "4", "--workers", "0")
        assert code == 0, err
    names = sorted(u.dataset.name for u in ResultStore(out).records())
    assert names == ["mine-a", "mine-b"]
    code, printed, _ = roz_cli("results", out)
    assert code == 0 and "mine-a" in printed and "mine-b" in printed


def test_force_unit_flag_recomputes_only_that_unit(clifx, tmp_path, roz_cli):
    import yaml

    out = tmp_path / "run"
    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml.safe_dump({"out": str(out), "models": [{"spec": clifx["model"], "name": "tiny"}],
                                   "datasets": [{"name": "imagefolder", "root": str(clifx["data"])}],
                                   "shifts": ["none", "corruption:fog:1"], "workers": 0}))
    code, _, err = roz_cli("run", cfg)
    assert code == 0, err
    before = {p.name: p.stat().st_mtime_ns for p in (out / "units").glob("*.json")}
    target = sorted(before)[0][: -len(".json")]
    code, _, err = roz_cli("run", cfg, "--force-unit", target)
    assert code == 0, err
    after = {p.name: p.stat().st_mtime_ns for p in (out / "units").glob("*.json")}
    changed = [n for n in before if after[n] != before[n]]
    assert changed == [f"{target}.json"]
    code, _, err = roz_cli("run", cfg, "--force-unit", "no-such-unit")
    assert code == 2 and "no-such-unit" in err
