import numpy as np
import pytest
import torch
from PIL import ImageEnhance

from roz.overlap import hashing
from roz.overlap.index import CosineIndex, HammingIndex

from support.overlap_fixtures import random_image


def test_dct_matrix_orthonormal():
    c = hashing.dct_matrix(32)
    np.testing.assert_allclose(c @ c.T, np.eye(32), atol=1e-10)
    # DC row is constant, so a constant image has only a DC coefficient
    x = np.full((32, 32), 7.0)
    d = c @ x @ c.T
    assert abs(d[0, 0] - 7.0 * 32) < 1e-9 and np.abs(d.ravel()[1:]).max() < 1e-9


def test_phash_invariances_and_codes():
    rng = np.random.default_rng(0)
    ims = [random_image(rng) for _ in range(40)]
    codes = hashing.hash_pil(ims)
    assert codes.shape == (40, 8) and codes.dtype == np.uint8
    # half the bits set (median split of 64 coefficients)
    assert (np.unpackbits(codes, axis=1).sum(1) == 32).all()
    # a global contrast change (brightness x 0.8 with no clipping) keeps the code almost exactly
    dim = hashing.hash_pil([ImageEnhance.Brightness(im).enhance(0.8) for im in ims])
    assert np.median(hashing.hamming(dim, codes)) <= 2
    # distinct random images are far apart
    d = hashing.hamming(codes[:, None], codes[None])
    assert d[~np.eye(40, dtype=bool)].min() >= 8


def test_hamming_matches_bit_count():
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 256, (50, 8), dtype=np.uint8), rng.integers(0, 256, (50, 8), dtype=np.uint8)
    ref = (np.unpackbits(a, axis=1) != np.unpackbits(b, axis=1)).sum(1)
    np.testing.assert_array_equal(hashing.hamming(a, b), ref)
    idx = HammingIndex(b)
    dist, ids = idx.search(a, 3)
    np.testing.assert_array_equal(dist[:, 0], hashing.hamming(a[:, None], b[None]).min(1))
    # k larger than the index: padded
    dist, ids = HammingIndex(b[:2]).search(a[:1], 4)
    assert ids[0, 2] == -1 and dist[0, 2] == 65


def test_tensor_and_pil_paths_agree():
    rng = np.random.default_rng(2)
    ims = [random_image(rng) for _ in range(10)]
    x = torch.stack([torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1) for im in ims]).float() / 255
    d = hashing.hamming(hashing.hash_tensor(x), hashing.hash_pil(ims))
    assert d.max() <= 10 and np.median(d) <= 4


def test_alignment_boxes():
    boxes = hashing.alignment_boxes((0.03, 0.06))
    assert len(boxes) == 19 and boxes[0] == (0.0, 0.0, 1.0, 1.0)
    for left, t, r, b in boxes[1:]:
        assert (r - left) == pytest.approx(b - t) and 0.93 < r - left < 0.98
    with pytest.raises(ValueError):
        hashing.alignment_boxes((0.7,))


def test_cosine_index_flat_and_ivf():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2000, 16)).astype(np.float32)
    q = x[:50] + 0.01 * rng.normal(size=(50, 16)).astype(np.float32)
    for kind in ("flat", "ivf"):
        idx = CosineIndex(x, kind=kind, nlist=16, nprobe=16)
        s, i = idx.search(q, 2)
        np.testing.assert_array_equal(i[:, 0], np.arange(50))
        assert (s[:, 0] > 0.99).all() and (s[:, 0] <= 1.0001).all()
    assert CosineIndex(x, kind="ivf", nlist=16).describe()["exact"] is False
