"""Bad data never gives a traceback (issue 13): errors from DataLoader workers, non-UTF-8 file
names, hostile model / dataset names."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from roz import api
from roz.datasets.filenames import file_path
from roz.engine.runner import RunOptions
from roz.engine.store import ResultStore
from roz.errors import DataError

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _copy_data(seqfx, tmp_path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(seqfx["data"], data)
    return data


def _cli(*args, cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": SRC, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("ROZ_DEBUG", None)
    return subprocess.run([sys.executable, "-c", "from roz.cli import main; main()", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_bad_image_in_a_worker_raises_the_one_line_data_error(seqfx, tmp_path):
    data = _copy_data(seqfx, tmp_path)
    bad = data / seqfx["wnids"][1] / "img_bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(DataError) as info:
        api.evaluate(seqfx["model"], "imagefolder", data, out=tmp_path / "r",
                     options=RunOptions(batch_size=2, workers=2, device="cpu"))
    err = info.value
    assert type(err) is DataError
    assert str(bad) in err.what and "\n" not in err.what
    assert "Caught" not in str(err) and "Traceback" not in str(err)
    assert err.hint and "--on-bad-image skip" in err.hint  # the hint survives the trip from the worker

    run = _cli("eval", "-m", seqfx["model"], "-d", "imagefolder", "-r", str(data), "-o", str(tmp_path / "c"),
               "--workers", "2", "--device", "cpu", "-b", "2", cwd=tmp_path)
    assert run.returncode == 2, run.stderr
    assert "Caught" not in run.stderr and "Traceback" not in run.stderr and "worker process" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(bad) in errors[0], run.stderr
    assert "hint: the file is truncated or not an image" in run.stderr


def test_bad_image_in_a_worker_is_skipped_and_listed(seqfx, tmp_path):
    data = _copy_data(seqfx, tmp_path)
    (data / seqfx["wnids"][0] / "img_bad.png").write_bytes(b"")
    (rec,) = api.evaluate(seqfx["model"], "imagefolder", data, out=tmp_path / "r", on_bad_image="skip",
                          options=RunOptions(batch_size=2, workers=2, device="cpu"))
    assert rec.metrics["n_skipped"] == 1 and rec.metrics["n"] == 8
    rows = ResultStore(tmp_path / "r").samples(rec.unit_id)
    assert list(rows.loc[~rows["ok"], "path"]) == [f"{seqfx['wnids'][0]}/img_bad.png"]


@pytest.mark.skipif(sys.platform != "linux", reason="non-UTF-8 file names are a POSIX (bytes) thing")
def test_a_non_utf8_file_name_evaluates_and_round_trips(seqfx, tmp_path):
    data = _copy_data(seqfx, tmp_path)
    (ref,) = api.evaluate(seqfx["model"], "imagefolder", data, out=tmp_path / "ref",
                          options=RunOptions(batch_size=4, workers=0, device="cpu"))
    wnid = seqfx["wnids"][2]
    os.rename(os.fsencode(data / wnid / "img_000.png"), os.fsencode(data / wnid) + b"/\xff\xfe.png")

    (rec,) = api.evaluate(seqfx["model"], "imagefolder", data, out=tmp_path / "r",
                          options=RunOptions(batch_size=4, workers=0, device="cpu"))
    rows = ResultStore(tmp_path / "r").samples(rec.unit_id).sort_values("index")
    assert rec.metrics["n"] == 8 and rec.metrics["n_skipped"] == 0
    escaped = [p for p in rows["path"] if "\\x" in p]
    assert escaped == [f"{wnid}/\\xff\\xfe.png"]  # the documented escaped form, valid UTF-8
    real = data / file_path(escaped[0])
    assert os.fsencode(real).endswith(b"/\xff\xfe.png") and real.is_file()
    assert rec.dataset.protocol["non_utf8_paths"] == 1

    # the renamed file is the same image: same predictions and metrics as the plain-named run
    ref_rows = ResultStore(tmp_path / "ref").samples(ref.unit_id).sort_values("index")
    by_name = dict(zip(ref_rows["path"], ref_rows["pred"]))
    by_name[f"{wnid}/\\xff\\xfe.png"] = by_name.pop(f"{wnid}/img_000.png")
    assert dict(zip(rows["path"], rows["pred"])) == by_name
    assert rec.metrics["top1"] == ref.metrics["top1"] and rec.metrics["top5"] == ref.metrics["top5"]

    # resuming from stored parts compares stored paths with the dataset's: still a match, nothing recomputed
    (again,) = api.evaluate(seqfx["model"], "imagefolder", data, out=tmp_path / "r",
                            options=RunOptions(batch_size=4, workers=0, device="cpu"))
    assert again.metrics == rec.metrics


def _all_files(root: Path) -> set[Path]:
    return {Path(d) / f for d, _, files in os.walk(root) for f in files}


def test_hostile_model_and_dataset_names_stay_inside_the_run_dir(seqfx, tmp_path):
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    data = _copy_data(seqfx, tmp_path)
    before = _all_files(tmp_path)
    name, label = "../../evil\nname/<script>x", "../../../data\x01set/..\n<b>" + "L" * 300
    run = _cli("eval", "-m", seqfx["model"], "-d", "imagefolder", "-r", str(data), "-o", "run",
               "--name", name, "--label", label, "--workers", "0", "--device", "cpu", cwd=work)
    assert run.returncode == 0, run.stderr
    (rec,) = api.evaluate(seqfx["model"], "imagefolder", data, out=work / "run", name="..\x00/" * 50,
                          label="/", options=RunOptions(workers=0, device="cpu"))
    report = _cli("report", "run", cwd=work)
    assert report.returncode == 0, report.stderr

    new = _all_files(tmp_path) - before
    assert new and all((work / "run") in f.parents for f in new), sorted(map(str, new))
    ids = [u.unit_id for u in ResultStore(work / "run").records()]
    assert len(ids) == 2 and all("/" not in u and "\x00" not in u and "\n" not in u and len(u) < 200 for u in ids)
    html = (work / "run" / "report" / "index.html").read_text()
    assert "<script>x" not in html and "<b>L" not in html
    assert "&lt;script&gt;x" in html and "&lt;b&gt;L" in html
