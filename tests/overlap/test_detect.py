import time

import pytest

from roz.overlap import OverlapDetector, evaluate_detection, find_overlap, world_detection
from roz.overlap.calibrate import load_ground_truth


def test_phash_ncc_recovers_planted(world, test_paths, phash_detector):
    t0 = time.perf_counter()
    df = phash_detector.query(test_paths)
    print(f"query {len(test_paths)} tests: {time.perf_counter() - t0:.2f}s")
    ev = evaluate_detection(df, world / "corpus" / "planted_duplicates.json")
    print("phash+ncc", {k: ev[k] for k in ("precision", "recall", "tp", "fp", "fn", "pair_accuracy")})
    assert ev["n_true"] == 50 and ev["n_truth_records_matched"] == 50
    assert ev["precision"] >= 0.9 and ev["recall"] >= 0.9
    assert ev["pair_accuracy"] >= 0.95  # the reported corpus file is the planted copy
    assert list(df.columns) == ["test_index", "test_file", "corpus_index", "corpus_file", "similarity", "hamming",
                                "is_duplicate", "ok"]
    assert df.attrs["protocol"]["threshold"] == pytest.approx(0.94)


@pytest.mark.parametrize("method,verify", [("phash", None), ("dhash", "ncc")])
def test_other_hash_variants(world, test_paths, corpus_paths, method, verify):
    df = find_overlap(test_paths[::2], corpus_paths, method=method, verify=verify)  # half the tests: time
    ev = evaluate_detection(df, world / "corpus" / "planted_duplicates.json")
    print(method, verify, {k: ev[k] for k in ("precision", "recall")})
    assert ev["precision"] >= 0.85 and ev["recall"] >= 0.85


def test_embedding_detector_tiny_encoder(world, test_paths, corpus_paths):
    det = OverlapDetector("embedding").fit(corpus_paths)
    df = det.query(test_paths)  # threshold=None: synthetic calibration
    cal = det.calibration
    assert cal["source"] == "synthetic" and cal["met_target"]
    ev = evaluate_detection(df, load_ground_truth(world / "corpus" / "planted_duplicates.json"))
    print("embedding(tiny)", {k: ev[k] for k in ("precision", "recall")}, "thr", cal["threshold"])
    assert ev["precision"] >= 0.9 and ev["recall"] >= 0.9


def test_embedding_with_encode_image_module(test_paths, corpus_paths):
    import torch

    class Enc(torch.nn.Module):  # a "zero-shot model": encode_image on [0, 1] pixels
        input_size = 32

        def encode_image(self, x):
            assert x.shape[-1] == 32 and 0 <= float(x.min()) and float(x.max()) <= 1
            return torch.nn.functional.avg_pool2d(x, 4).flatten(1) - 0.5

    df = find_overlap(test_paths[:20], corpus_paths[:50], method="embedding", threshold=0.99, encoder=Enc())
    assert df["similarity"].between(-1.0001, 1.0001).all()
    assert df.attrs["protocol"]["embedding"]["call"] == "encode_image"


def test_exact_copies_and_bad_files(tmp_path, test_paths, corpus_paths):
    import shutil

    corpus = list(corpus_paths[:30])
    shutil.copy(test_paths[3], tmp_path / "exact.png")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    corpus += [tmp_path / "exact.png", tmp_path / "broken.png"]
    tests = list(test_paths[:5]) + [tmp_path / "broken.png"]
    df = find_overlap(tests, corpus)
    assert df.loc[3, "is_duplicate"] and df.loc[3, "corpus_file"].endswith("exact.png")
    assert df.loc[3, "similarity"] > 0.999 and df.loc[3, "hamming"] == 0
    assert not df.loc[5, "ok"] and not df.loc[5, "is_duplicate"] and df.loc[5, "corpus_index"] == -1
    assert df.attrs["skipped_corpus_files"] == [str(tmp_path / "broken.png")]
    from roz.errors import DataError

    with pytest.raises(DataError, match="cannot decode"):
        find_overlap(tests, corpus[:3], on_bad_image="fail")


def test_world_detection_layout(world, phash_detector):
    out = world_detection(world, splits=("mini-r",), detector=phash_detector)
    ev = out["mini-r"]["detection"]
    assert ev["precision"] >= 0.9 and ev["recall"] >= 0.9
