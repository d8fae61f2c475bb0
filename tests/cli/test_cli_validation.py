"""Issue 13: every bad option or config value is reported before anything runs, all problems in one
error, exit code 2, no traceback and no unit written."""

import pytest
import yaml

from roz import api
from roz.engine.plan import plan_units
from roz.errors import ConfigError


def _units(out):
    return sorted((out / "units").glob("*.json")) if (out / "units").is_dir() else []


def _eval_args(clifx, out, *extra):
    return ["eval", "-m", clifx["model"], "-d", "imagefolder", "-r", clifx["data"], "-o", out, "--workers", "0", *extra]


@pytest.mark.parametrize("flags, problem", [
    (["-b", "0"], "batch_size: Input should be greater than 0"),
    (["-b", "-2"], "batch_size: Input should be greater than 0"),
    (["--workers", "-1"], "workers: Input should be greater than or equal to 0"),
    (["--device", "foo"], "device 'foo' is not cpu, cuda, cuda:N or mps"),
    (["--limit", "0"], "limit: Input should be greater than 0"),
    (["--part-size", "-5"], "part_size: Input should be greater than 0"),
])
def test_bad_flag_exits_2_before_running(clifx, tmp_path, roz_cli, flags, problem):
    out = tmp_path / "run"
    code, _, err = roz_cli(*_eval_args(clifx, out, *flags))
    assert code == 2, err
    assert problem in err and "Traceback" not in err
    assert not _units(out)


def test_cuda_without_gpu_is_refused(clifx, tmp_path, roz_cli, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code, _, err = roz_cli(*_eval_args(clifx, tmp_path / "run", "--device", "cuda"))
    assert code == 2 and "no CUDA GPU is visible" in err
    assert not _units(tmp_path / "run")


def test_every_problem_in_one_error(clifx, tmp_path, roz_cli):
    code, _, err = roz_cli(*_eval_args(clifx, tmp_path / "run", "-b", "0", "--device", "foo", "--limit", "-3",
                                       "--shift", "corruption:fgo:3"))
    assert code == 2
    assert "4 problem(s)" in err
    for where in ("batch_size:", "device:", "limit:", "shifts[0].shift:"):
        assert where in err
    assert not _units(tmp_path / "run")


def test_run_config_errors_listed_and_nothing_runs(clifx, tmp_path, roz_cli):
    out = tmp_path / "run"
    cfg = {"out": str(out), "seed": "abc", "limit": "ten", "models": [{"spec": clifx["model"], "name": "vit"}],
           "datasets": [{"name": "imagefolder", "root": str(clifx["data"])}],
           # the first attack is fine; earlier code ran the clean unit before failing on the second
           "attacks": [{"name": "fgsm", "eps": "8/255"}, {"name": "fgsm", "eps": "big"}]}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    code, _, err = roz_cli("run", path, "--workers", "0")
    assert code == 2 and "Traceback" not in err
    assert "seed:" in err and "limit:" in err and "attacks[1].eps: eps 'big' is not a number" in err
    assert "attacks[0]" not in err  # 8/255 is accepted
    assert not out.exists()


def _cfg(clifx, out, **kw):
    return {"out": str(out), "models": [{"spec": clifx["model"], "name": "vit"}],
            "datasets": [{"name": "imagefolder", "root": str(clifx["data"])}], **kw}


@pytest.mark.parametrize("kw, problem", [
    ({"limit": -3}, "limit: Input should be greater than 0"),
    ({"limit": 0}, "limit: Input should be greater than 0"),
    ({"seed": "abc"}, "seed: Input should be a valid integer"),
    ({"heads": ["full", "fulll"]}, "heads[1]: Input should be 'full' or 'subset'"),
    ({"batch_size": 0, "part_size": -1}, "part_size: Input should be greater than 0"),
    ({"models": [{"spec": "resnet50"}]}, "models[0].spec: model spec 'resnet50' has no source prefix"),
    ({"datasets": [{"name": "imagefoldr", "root": "/nonexistent"}]}, "did you mean imagefolder"),
    ({"attacks": [{"name": "pgdd"}]}, "unknown attack 'pgdd'"),
    ({"attacks": [{"name": "pgd", "eps": 8}]}, "eps [8.0] outside [0, 1]"),
    ({"attacks": [{"name": "pgd", "stepz": 3}]}, "unknown parameter(s) ['stepz']"),
    ({"shifts": ["fog"]}, "unknown shift 'fog'"),
    ({"shift_datasets": ["imagenet-r"]}, "shift_datasets: ['imagenet-r'] not in this config"),
])
def test_config_problem_raises_before_anything_runs(clifx, tmp_path, kw, problem):
    out = tmp_path / "run"
    with pytest.raises(ConfigError) as e:
        api.run(_cfg(clifx, out, **kw), settings={"workers": 0})
    assert problem in e.value.what
    assert not out.exists()


def test_eps_fraction_and_lone_heads_string(clifx, tmp_path):
    units = plan_units(_cfg(clifx, tmp_path, heads="full", attacks=[{"name": "fgsm", "eps": ["8/255", 0.5]}]))
    assert [u.head for u in units if not u.attack] == ["full"]  # not ['f', 'u', 'l', 'l']
    (attack,) = [u for u in units if u.attack]
    assert dict(attack.attack)["eps"] == (8 / 255, 0.5)


def test_dataset_root_missing_and_bad_model_listed_together(tmp_path):
    with pytest.raises(ConfigError) as e:
        plan_units({"models": ["nope", {"spec": "timm:x", "role": "clip"}],
                    "datasets": [{"name": "imagefolder", "root": str(tmp_path / "missing")}]})
    what = e.value.what
    assert "3 problem(s)" in what
    assert "models[0].spec" in what and "models[1].role" in what and "does not exist" in what
