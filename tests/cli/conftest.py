import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "foundation"))
import tinymodels  # noqa: E402


@pytest.fixture(scope="session")
def clifx(tmp_path_factory):
    """An ImageFolder of 4 wnids x 3 images and a tiny timm checkpoint (32 px input)."""
    root = tmp_path_factory.mktemp("cli")
    data = tinymodels.make_imagefolder(root / "val", n=3)
    spec, path = tinymodels.timm_checkpoint(root / "timm")
    return {"root": root, "data": data, "model": spec, "model_path": path}


@pytest.fixture
def roz_cli(monkeypatch, capsys):
    """Run ``roz ARGS`` in this process through ``roz.cli.main`` (its error printer and exit codes)."""
    from roz import cli

    def run(*args):
        monkeypatch.setattr(sys, "argv", ["roz", *map(str, args)])
        code = 0
        try:
            cli.main()
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        out, err = capsys.readouterr()
        return code, out, err

    return run
