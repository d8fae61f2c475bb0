"""Corpus formats (folder, path list, webdataset tar, LAION-layout embeddings), resumable sharded
embedding, and the encoder/dimension refusal."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageDraw

from roz.errors import RozError
from roz.overlap.corpus import EmbeddingCorpus, open_corpus
from roz.overlap.encoders import check_compatible, load_encoder
from roz.overlap.shards import embed_corpus, shard_complete
from support.tinymodels import openclip_checkpoint

N = 11


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    spec, _ = openclip_checkpoint(tmp_path_factory.mktemp("enc"))
    return load_encoder(spec)


@pytest.fixture(scope="module")
def formats(tmp_path_factory):
    """The same N JPEG files as a folder, a CSV list, a Parquet list and two webdataset shards."""
    import webdataset

    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    folder = root / "folder"
    folder.mkdir()
    keys = [f"{i:06d}" for i in range(N)]
    for k in keys:
        im = Image.new("RGB", (40, 36), tuple(int(c) for c in rng.integers(0, 255, 3)))
        ImageDraw.Draw(im).ellipse([tuple(rng.uniform(0, 20, 2)), tuple(rng.uniform(20, 36, 2))],
                                   fill=tuple(int(c) for c in rng.integers(0, 255, 3)))
        im.save(folder / f"{k}.jpg", quality=90)
    pd.DataFrame({"path": [f"folder/{k}.jpg" for k in keys], "key": keys,
                  "caption": [f"image <b>{k}</b>" for k in keys]}).to_csv(root / "list.csv", index=False)
    pd.DataFrame({"filepath": [str(folder / f"{k}.jpg") for k in keys]}).to_parquet(root / "list.parquet")
    tars = root / "tars"
    tars.mkdir()
    for s, part in enumerate((keys[:6], keys[6:])):
        with webdataset.TarWriter(str(tars / f"{s:05d}.tar")) as w:
            for k in part:
                w.write({"__key__": k, "jpg": (folder / f"{k}.jpg").read_bytes(), "txt": f"caption {k}",
                         "json": json.dumps({"key": k}).encode()})
    return {"folder": folder, "csv": root / "list.csv", "parquet": root / "list.parquet", "webdataset": tars,
            "keys": keys}


def test_every_corpus_format_gives_the_same_embeddings(formats, encoder, tmp_path):
    direct = encoder.embed([Image.open(formats["folder"] / f"{k}.jpg") for k in formats["keys"]])
    got = {}
    for name in ("folder", "csv", "parquet", "webdataset"):
        corpus = open_corpus(formats[name])
        emb = embed_corpus(corpus, encoder, tmp_path / name, shard_size=4, batch_size=3)
        assert emb.n == N and emb.dim == direct.shape[1] and len(emb.emb_files) == 3
        assert emb.encoder == encoder.name
        got[name] = emb.take(np.arange(N))
    # precomputed embeddings in LAION's layout, written by another tool (no ROZ sidecar): encoder given
    laion = tmp_path / "laion"
    (laion / "img_emb").mkdir(parents=True)
    (laion / "metadata").mkdir()
    np.save(laion / "img_emb" / "img_emb_0000.npy", direct[:7].astype(np.float16))
    np.save(laion / "img_emb" / "img_emb_0001.npy", direct[7:].astype(np.float16))
    pd.DataFrame({"image_path": formats["keys"][:7], "caption": ["x"] * 7}).to_parquet(laion / "metadata" / "metadata_0000.parquet")
    pd.DataFrame({"image_path": formats["keys"][7:], "caption": ["y"] * 4}).to_parquet(laion / "metadata" / "metadata_0001.parquet")
    pre = open_corpus(laion, encoder=encoder.name)
    assert pre.kind == "embeddings" and pre.n == N
    got["precomputed"] = pre.take(np.arange(N))
    for name, arr in got.items():
        np.testing.assert_array_equal(arr, got["folder"], err_msg=name)
    np.testing.assert_allclose(got["folder"].astype(np.float32), direct, atol=2e-3)
    assert pre.metadata([8])[0]["key"] == formats["keys"][8]
    assert open_corpus(tmp_path / "webdataset").metadata([7])[0]["caption"] == "caption 000007"


def test_precomputed_embeddings_refuse_another_encoder_or_dimension(formats, encoder, tmp_path):
    emb = embed_corpus(open_corpus(formats["folder"]), encoder, tmp_path / "e", shard_size=100)
    check_compatible(encoder.info(), emb.info())  # same encoder: fine
    with pytest.raises(RozError, match="encoder mismatch"):
        check_compatible({**encoder.info(), "encoder": "openclip:RN50x16@openai"}, emb.info())
    with pytest.raises(RozError, match="dimension mismatch"):
        check_compatible({**encoder.info(), "dim": 512}, emb.info())
    with pytest.raises(RozError, match="were made with"):
        EmbeddingCorpus(tmp_path / "e", encoder="openclip:ViT-B-32@openai")
    (tmp_path / "e" / "metadata" / "metadata_0000.parquet").unlink()
    with pytest.raises(RozError, match="do not pair up"):
        EmbeddingCorpus(tmp_path / "e")
    with pytest.raises(RozError, match="made differently"):
        embed_corpus(open_corpus(formats["folder"]), encoder, tmp_path / "e", shard_size=50)


class _Crashing:
    """The encoder, but the process "dies" (raises) on the ``crash_at``-th batch; counts images."""

    def __init__(self, encoder, crash_at=None):
        self.inner, self.crash_at, self.calls, self.images = encoder, crash_at, 0, 0
        self.name, self.dim = encoder.name, encoder.dim

    def embed(self, images):
        self.calls += 1
        if self.crash_at is not None and self.calls == self.crash_at:
            raise KeyboardInterrupt("killed")
        self.images += len(images)
        return self.inner.embed(images)

    def info(self):
        return self.inner.info()


def test_embedding_job_resumes_from_its_last_complete_shard(formats, encoder, tmp_path):
    corpus = open_corpus(formats["webdataset"])
    ref = embed_corpus(corpus, encoder, tmp_path / "ref", shard_size=3, batch_size=2).take(np.arange(N))
    first = _Crashing(encoder, crash_at=5)  # batches of 2 in shards of 3: shards 0 and 1 done, crash inside shard 2
    with pytest.raises(KeyboardInterrupt):
        embed_corpus(corpus, first, tmp_path / "job", shard_size=3, batch_size=2)
    assert shard_complete(tmp_path / "job", 1) and not shard_complete(tmp_path / "job", 2)
    assert not list((tmp_path / "job").rglob("*.tmp"))  # nothing half-written under any name
    second = _Crashing(encoder)
    out = embed_corpus(corpus, second, tmp_path / "job", shard_size=3, batch_size=2)
    assert second.images == N - 6  # shards 0 and 1 were not embedded again
    np.testing.assert_array_equal(out.take(np.arange(N)), ref)
    side = json.loads((tmp_path / "job" / "roz_embeddings.json").read_text())
    assert side["complete"] and side["shards_reused"] == 2 and side["encoder"] == encoder.name


def test_path_list_without_a_path_column_is_refused(tmp_path):
    pd.DataFrame({"url": ["http://x/1.jpg"]}).to_csv(tmp_path / "l.csv", index=False)
    with pytest.raises(RozError, match="no path column"):
        open_corpus(tmp_path / "l.csv")
    with pytest.raises(RozError, match="does not exist"):
        open_corpus(tmp_path / "missing")


def test_detect_refuses_precomputed_embeddings_of_unknown_or_other_encoder(formats, tmp_path):
    from roz.overlap.pipeline import ImageSet, detect

    laion = tmp_path / "laion"
    (laion / "img_emb").mkdir(parents=True)
    (laion / "metadata").mkdir()
    np.save(laion / "img_emb" / "img_emb_0000.npy", np.eye(N, 768, dtype=np.float16))
    pd.DataFrame({"image_path": formats["keys"]}).to_parquet(laion / "metadata" / "metadata_0000.parquet")
    tests = {"t": ImageSet(formats["folder"])}
    with pytest.raises(RozError, match="do not say which encoder"):
        detect(tests, laion, encoder="tiny", threshold=0.9, cache_dir=tmp_path / "c")
    with pytest.raises(RozError, match="encoder mismatch"):
        detect(tests, laion, encoder="tiny", corpus_encoder="openclip:ViT-B-32@openai", threshold=0.9,
               cache_dir=tmp_path / "c")
    out = detect(tests, laion, encoder="tiny", corpus_encoder="tiny", threshold=0.99, cache_dir=tmp_path / "c")
    assert out["protocol"]["corpus"]["kind"] == "embeddings" and len(out["duplicates"]["t"]) == N


def test_embeddings_of_other_weights_under_the_same_spec_are_never_reused(formats, tmp_path):
    """A ``local:``/``openclip:...@PATH`` spec names a file whose contents can change (a new
    release's checkpoint): the cache folder, the shard sidecar and the compatibility check all
    follow the weights' sha256, not only the spec string."""
    from roz.overlap.pipeline import cache_root

    spec, path = openclip_checkpoint(tmp_path / "w", seed=0)
    old = load_encoder(spec)
    corpus = open_corpus(formats["folder"])
    emb = embed_corpus(corpus, old, tmp_path / "e", shard_size=100)
    assert emb.info()["weights_sha256"] == old.weights_sha256 is not None
    openclip_checkpoint(tmp_path / "w", seed=1)  # the same path, other weights
    new = load_encoder(spec)
    assert new.name == old.name and new.weights_sha256 != old.weights_sha256
    assert cache_root(corpus, new.cache_key) != cache_root(corpus, old.cache_key)
    with pytest.raises(RozError, match="weights mismatch"):
        check_compatible(new.info(), emb.info())
    with pytest.raises(RozError, match="made differently"):
        embed_corpus(corpus, new, tmp_path / "e", shard_size=100)
