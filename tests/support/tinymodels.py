"""Tiny, randomly initialised models of every adapter family, built offline in tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from roz.models.checkpoint import save_checkpoint

WNIDS = ["n01440764", "n01443537", "n01484850", "n01491361"]  # tench, goldfish, great white shark, tiger shark

OPENCLIP_CFG = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def make_imagefolder(root: Path, wnids=WNIDS, n: int = 5, size=(40, 48), seed: int = 0, ext: str = "JPEG") -> Path:
    rng = np.random.default_rng(seed)
    for c, w in enumerate(wnids):
        d = Path(root) / w
        d.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            a = rng.integers(0, 255, (*size, 3), dtype=np.uint8)
            a[..., c % 3] = np.clip(a[..., c % 3].astype(int) + 80, 0, 255)  # some class signal
            Image.fromarray(a).save(d / f"img_{i:03d}.{ext}")
    return Path(root)


def openclip_checkpoint(tmp: Path, seed: int = 0) -> tuple[str, Path]:
    """(spec, weights path) of a tiny open_clip model with a custom JSON config."""
    import open_clip

    (Path(tmp) / "configs").mkdir(parents=True, exist_ok=True)
    cfg = Path(tmp) / "configs" / "tiny-clip.json"  # not beside the weights: NAME.json there is the sidecar
    cfg.write_text(json.dumps(OPENCLIP_CFG))
    open_clip.add_model_config(cfg)
    torch.manual_seed(seed)
    model = open_clip.create_model("tiny-clip", pretrained=None)
    path = save_checkpoint(model.state_dict(), Path(tmp) / "tiny-clip.pt",
                           {"source": "openclip", "arch": "tiny-clip", "classes": WNIDS, "role": "zeroshot",
                            "templates": ["a photo of a {}.", "a drawing of a {}."]})
    return f"openclip:{cfg}@{path}", path


def timm_checkpoint(tmp: Path, seed: int = 0) -> tuple[str, Path]:
    import timm

    Path(tmp).mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    kwargs = {"img_size": 32}
    model = timm.create_model("test_vit", num_classes=len(WNIDS), **kwargs)
    path = save_checkpoint(model.state_dict(), Path(tmp) / "tiny-vit.pt",
                           {"source": "timm", "arch": "test_vit", "kwargs": kwargs, "classes": WNIDS, "role": "standard",
                            "preprocess": {"input_size": 32, "resize_size": 36, "interpolation": "bicubic",
                                           "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}})
    return f"timm:test_vit@{path}", path


def open_clip_bpe_files(out: Path) -> tuple[Path, Path]:
    """vocab.json + merges.txt for transformers' CLIPTokenizer, from open_clip's shipped BPE."""
    from open_clip.tokenizer import SimpleTokenizer

    tok = SimpleTokenizer()
    out.mkdir(parents=True, exist_ok=True)
    vocab = out / "vocab.json"
    names = {"<start_of_text>": "<|startoftext|>", "<end_of_text>": "<|endoftext|>"}
    vocab.write_text(json.dumps({names.get(k, k): v for k, v in tok.encoder.items()}))
    merges = sorted(tok.bpe_ranks.items(), key=lambda kv: kv[1])
    mfile = out / "merges.txt"
    mfile.write_text("#version: 0.2\n" + "\n".join(" ".join(pair) for pair, _ in merges) + "\n")
    return vocab, mfile


def hf_clip_dir(tmp: Path, seed: int = 0) -> Path:
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer

    d = Path(tmp) / "hf-tiny-clip"
    torch.manual_seed(seed)
    cfg = CLIPConfig(
        text_config={"vocab_size": 49408, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "max_position_embeddings": 77},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
                       "image_size": 32, "patch_size": 8},
        projection_dim=16,
    )
    CLIPModel(cfg).save_pretrained(d)
    vocab, merges = open_clip_bpe_files(Path(tmp) / "bpe")
    CLIPTokenizer(str(vocab), str(merges)).save_pretrained(d)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(d)
    return d


def assert_same_runs(a: dict, b: dict) -> None:
    """Two :func:`store_rows` results hold the same units with identical rows and metrics."""
    import pandas as pd

    assert sorted(a) == sorted(b) and a
    for uid in a:
        pd.testing.assert_frame_equal(a[uid][0], b[uid][0])
        assert a[uid][1] == b[uid][1], uid


def fail_shard(monkeypatch, span: tuple[int, int]) -> None:
    """Make the shard ``span`` of every unit raise a DataError (a shard that cannot be read now)."""
    from roz.engine import jobs
    from roz.errors import DataError

    real = jobs.execute_shard

    def broken(job, *a, **kw):
        if job.span == span:
            raise DataError(f"shard {span[0]}-{span[1]} cannot be read now")
        return real(job, *a, **kw)

    monkeypatch.setattr(jobs, "execute_shard", broken)


def store_rows(run) -> dict:
    """Every finished unit of a run: ``unit_id -> (per-sample rows sorted by index, metrics)``."""
    from roz.engine.store import ResultStore

    store = ResultStore(run)
    return {u.unit_id: (store.samples(u.unit_id).sort_values("index").reset_index(drop=True), u.metrics)
            for u in store.records()}
