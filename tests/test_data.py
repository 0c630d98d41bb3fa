"""Tests for vi_helpers.data: digits, synthetic sets, IDX, MNIST (checksums, download), batches."""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import re
import struct
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn import datasets as skd

from vi_helpers import data

# Resolved from this file, not the working directory: <repo>/../shared/data/mnist.
MNIST_DIR = Path(__file__).resolve().parents[2] / "shared/data/mnist"

# Published facts used as independent references (not read from vi_helpers.data):
# md5 of the uncompressed MNIST files, and the class counts of the two splits.
MNIST_RAW_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
MNIST_COUNTS = {
    "train": [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
    "test": [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
}


def md5(b: bytes) -> str:
    return hashlib.md5(b).hexdigest()


def rows_sorted(x: torch.Tensor, y: torch.Tensor) -> list[tuple]:
    """The rows of [x, y] as a sorted list: a multiset to compare splits."""
    return sorted(map(tuple, torch.cat([x, y[:, None].float()], 1).tolist()))


# ------------------------------------------------------------------------------ digits
def test_digits_all_equals_sklearn_over_16():
    x, y = data.load_digits(split="all")
    bunch = skd.load_digits()
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert x.shape == (1797, 64) and y.shape == (1797,)
    np.testing.assert_array_equal(x.numpy(), (bunch.data / 16.0).astype(np.float32))
    np.testing.assert_array_equal(y.numpy(), bunch.target)
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0


@pytest.mark.parametrize("test_fraction, n_test", [(0.2, 359), (0.5, 898), (0.1, 180)])
def test_digits_split_sizes_disjoint_and_union(test_fraction, n_test):
    x_tr, y_tr = data.load_digits(split="train", test_fraction=test_fraction, seed=3)
    x_te, y_te = data.load_digits(split="test", test_fraction=test_fraction, seed=3)
    x_all, y_all = data.load_digits(split="all")
    assert x_te.shape == (n_test, 64) and x_tr.shape == (1797 - n_test, 64)
    assert y_te.shape == (n_test,) and y_tr.shape == (1797 - n_test,)
    # as multisets, train + test == all, which with the sizes above means a partition
    both = rows_sorted(torch.cat([x_tr, x_te]), torch.cat([y_tr, y_te]))
    assert both == rows_sorted(x_all, y_all)
    assert 0.0 <= float(x_tr.min()) and float(x_tr.max()) <= 1.0


def test_digits_split_is_deterministic_and_seed_dependent():
    a = data.load_digits(split="test", seed=7)
    b = data.load_digits(split="test", seed=7)
    c = data.load_digits(split="test", seed=8)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_digits_binarize_thresholds_strictly_above_half():
    x, _ = data.load_digits(split="all", binarize=True)
    reference = (skd.load_digits().data / 16.0 > 0.5).astype(np.float32)
    np.testing.assert_array_equal(x.numpy(), reference)
    assert set(x.unique().tolist()) == {0.0, 1.0}


@pytest.mark.parametrize(
    "kwargs, exc, name",
    [
        ({"split": "val"}, ValueError, "split"),
        ({"test_fraction": 0.0}, ValueError, "test_fraction"),
        ({"test_fraction": 1.0}, ValueError, "test_fraction"),
        ({"test_fraction": -0.1}, ValueError, "test_fraction"),
        ({"test_fraction": "0.2"}, TypeError, "test_fraction"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": 1.5}, TypeError, "seed"),
    ],
)
def test_digits_bad_arguments(kwargs, exc, name):
    with pytest.raises(exc, match=name):
        data.load_digits(**kwargs)


# --------------------------------------------------------------------------- synthetic
@pytest.mark.parametrize("name", data.SYNTHETIC_NAMES)
@pytest.mark.parametrize("n", [1, 7, 400])
def test_synthetic_shapes_dtypes_and_label_counts(name, n):
    x, y = data.make_synthetic(name, n, seed=1)
    assert x.shape == (n, 2) and x.dtype == torch.float32
    assert y.shape == (n,) and y.dtype == torch.int64
    assert bool(torch.isfinite(x).all())
    k = {"moons": 2, "circles": 2, "pinwheel": 5, "gaussian_mixture": 8}[name]
    counts = torch.bincount(y, minlength=k).tolist()
    assert len(counts) == k and sum(counts) == n
    if name in ("moons", "circles"):  # scikit-learn puts n // 2 points in class 0
        assert counts == [n // 2, n - n // 2]
    else:  # balanced to within one
        assert max(counts) - min(counts) <= 1


@pytest.mark.parametrize("name", data.SYNTHETIC_NAMES)
def test_synthetic_is_seeded(name):
    a = data.make_synthetic(name, 50, seed=4)
    b = data.make_synthetic(name, 50, seed=4)
    c = data.make_synthetic(name, 50, seed=5)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_moons_and_circles_are_sklearns():
    x, y = data.make_synthetic("moons", 100, noise=0.2, seed=3)
    xr, yr = skd.make_moons(n_samples=100, noise=0.2, random_state=3)
    np.testing.assert_allclose(x.numpy(), xr, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(y.numpy(), yr)
    x, y = data.make_synthetic("circles", 100, noise=0.0, seed=3)
    radius = x.norm(dim=1)
    torch.testing.assert_close(radius[y == 0], torch.ones(50))
    torch.testing.assert_close(radius[y == 1], torch.full((50,), 0.5))


def test_pinwheel_without_noise_sits_on_the_arm_angles():
    # noise = 0: every point of arm k is (1, 0) rotated by -(2 pi k / 5 + 0.25 e)
    x, y = data.make_synthetic("pinwheel", 20, noise=0.0)
    theta = 2 * math.pi * y.double() / 5 + 0.25 * math.e
    expected = torch.stack([torch.cos(theta), -torch.sin(theta)], 1).float()
    torch.testing.assert_close(x, expected)


def test_pinwheel_radial_spread_matches_noise():
    # radius = |(1 + e_r, e_t)|, e_r ~ N(0, 0.3^2), e_t ~ N(0, 0.05^2): mean ~ 1.0012,
    # std ~ 0.3; with n = 4000 the SE of the mean is 0.3 / sqrt(4000) = 0.0047 -> 5 SE = 0.024
    x, _ = data.make_synthetic("pinwheel", 4000, seed=0)
    r = x.double().norm(dim=1)
    assert abs(float(r.mean()) - 1.0) < 0.024
    # SE of a std estimate ~ sigma / sqrt(2 n) = 0.0034; 5 SE = 0.017
    assert abs(float(r.std()) - 0.3) < 0.017


def test_gaussian_mixture_centres_and_spread():
    x, y = data.make_synthetic("gaussian_mixture", 16, noise=0.0)
    angle = 2 * math.pi * y.double() / 8
    torch.testing.assert_close(x, (2 * torch.stack([angle.cos(), angle.sin()], 1)).float())
    x, y = data.make_synthetic("gaussian_mixture", 8000, noise=0.25, seed=2)
    for k in range(8):
        pts = x[y == k].double()  # 1000 points per class
        centre = 2 * torch.tensor([math.cos(2 * math.pi * k / 8), math.sin(2 * math.pi * k / 8)])
        # SE of the mean 0.25 / sqrt(1000) = 0.0079 -> 5 SE = 0.04
        assert float((pts.mean(0) - centre).abs().max()) < 0.04
        # SE of the std 0.25 / sqrt(2000) = 0.0056 -> 5 SE = 0.028
        assert float((pts.std(0) - 0.25).abs().max()) < 0.028


@pytest.mark.parametrize(
    "args, kwargs, exc, name",
    [
        (("spiral", 10), {}, ValueError, "name"),
        (("moons", 0), {}, ValueError, "n"),
        (("moons", 2.5), {}, TypeError, "n"),
        (("circles", 10), {"noise": -0.1}, ValueError, "noise"),
        (("pinwheel", 10), {"noise": float("nan")}, ValueError, "noise"),
        (("gaussian_mixture", 10), {"seed": -3}, ValueError, "seed"),
    ],
)
def test_synthetic_bad_arguments(args, kwargs, exc, name):
    with pytest.raises(exc, match=name):
        data.make_synthetic(*args, **kwargs)


# ---------------------------------------------------------------------------------- IDX
IDX_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C,
             np.float32: 0x0D, np.float64: 0x0E}  # fmt: skip


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode an array as IDX, written straight from the spec."""
    code = IDX_CODES[array.dtype.type]
    head = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return head + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write(path: Path, payload: bytes, gz: bool) -> Path:
    path.write_bytes(gzip.compress(payload) if gz else payload)
    return path


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize(
    "array",
    [
        np.arange(10, dtype=np.uint8),  # 1-D labels
        np.random.default_rng(0).integers(0, 256, (4, 28, 28)).astype(np.uint8),  # images
        np.array([[-3, 7], [300, -30000]], dtype=np.int16),
        np.array([-(2**31), 2**31 - 1, 5], dtype=np.int32),
        np.array([-128, 0, 127], dtype=np.int8),
        np.array([[0.5, -1.25e-3]], dtype=np.float32),
        np.array([math.pi, -math.e], dtype=np.float64),
    ],
    ids=["labels-u8", "images-u8", "i16", "i32", "i8", "f32", "f64"],
)
def test_read_idx_round_trip(tmp_path, array, gz):
    path = write(tmp_path / ("a.idx.gz" if gz else "a.idx"), idx_bytes(array), gz)
    got = data.read_idx(path)
    assert got.shape == array.shape and got.dtype == array.dtype
    np.testing.assert_array_equal(got, array)
    got[...] = 0  # a writable copy, not a view of a read-only buffer


def test_read_idx_detects_gzip_by_content_not_name(tmp_path):
    array = np.arange(6, dtype=np.uint8).reshape(2, 3)
    path = write(tmp_path / "plain-name", idx_bytes(array), gz=True)
    np.testing.assert_array_equal(data.read_idx(path), array)


GOOD = idx_bytes(np.arange(12, dtype=np.uint8).reshape(3, 4))


@pytest.mark.parametrize(
    "payload, message",
    [
        (b"\x01" + GOOD[1:], "bad magic"),
        (GOOD[:2] + b"\x07" + GOOD[3:], "bad magic"),  # unknown type code
        (GOOD[:3] + b"\x00", "bad magic"),  # zero dimensions
        (GOOD[:2], "no magic"),
        (GOOD[:9], "truncated"),  # header cut inside the second size
        (GOOD[:-1], "truncated"),
        (GOOD + b"\x00", "too long"),
    ],
    ids=["first-byte", "type", "ndim0", "short", "header", "data", "trailing"],
)
@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_refuses_bad_files_naming_the_path(tmp_path, payload, message, gz):
    path = write(tmp_path / "bad.idx", payload, gz)
    with pytest.raises(ValueError, match=message) as info:
        data.read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_corrupt_gzip_and_missing_file(tmp_path):
    path = tmp_path / "cut.gz"
    path.write_bytes(gzip.compress(GOOD)[:-6])  # gzip stream without its trailer
    with pytest.raises(ValueError, match=re.escape(str(path))):
        data.read_idx(path)
    with pytest.raises(FileNotFoundError, match="nothere"):
        data.read_idx(tmp_path / "nothere")


# ------------------------------------------------------------------- MNIST, real files
@pytest.fixture(scope="module")
def mnist_dir() -> Path:
    if not MNIST_DIR.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but the MNIST files are missing from {MNIST_DIR}")
        pytest.skip(f"MNIST files not found at {MNIST_DIR} (the shared data folder)")
    return MNIST_DIR


@pytest.fixture(scope="module")
def mnist_test(mnist_dir):
    return data.load_mnist(mnist_dir, split="test")


def raw_of(path: Path) -> bytes:
    return gzip.decompress(path.read_bytes())


def test_shared_mnist_files_have_the_published_content(mnist_dir):
    for stem, want in MNIST_RAW_MD5.items():
        assert md5(raw_of(mnist_dir / f"{stem}.gz")) == want


@pytest.mark.parametrize("split", ["train", "test"])
def test_load_mnist_real(mnist_dir, mnist_test, split):
    x, y = mnist_test if split == "test" else data.load_mnist(mnist_dir, split=split)
    n = 60000 if split == "train" else 10000
    assert x.shape == (n, 784) and x.dtype == torch.float32
    assert y.shape == (n,) and y.dtype == torch.int64
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    assert torch.bincount(y, minlength=10).tolist() == MNIST_COUNTS[split]
    assert sum(MNIST_COUNTS[split]) == n
    # independent decode: skip the 16-byte image header and 8-byte label header
    prefix = "train" if split == "train" else "t10k"
    pixels = np.frombuffer(raw_of(mnist_dir / f"{prefix}-images-idx3-ubyte.gz"), np.uint8, -1, 16)
    labels = np.frombuffer(raw_of(mnist_dir / f"{prefix}-labels-idx1-ubyte.gz"), np.uint8, -1, 8)
    np.testing.assert_array_equal((x * 255).round().to(torch.uint8).numpy().ravel(), pixels)
    np.testing.assert_array_equal(y.numpy(), labels)


def test_load_mnist_binarize_thresholds(mnist_test, mnist_dir):
    xb, yb = data.load_mnist(mnist_dir, split="test", binarize=True)
    x, y = mnist_test
    assert torch.equal(xb, (x > 0.5).float()) and torch.equal(yb, y)


def copy_test_split(src: Path, dst: Path, *, uncompressed: bool) -> None:
    for stem in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        if uncompressed:
            (dst / stem).write_bytes(raw_of(src / f"{stem}.gz"))
        else:
            (dst / f"{stem}.gz").write_bytes((src / f"{stem}.gz").read_bytes())


def test_load_mnist_accepts_uncompressed_and_recompressed_files(mnist_dir, mnist_test, tmp_path):
    # the shared .gz files are not byte-identical to the published ones (their gz md5
    # differs), so the uncompressed checksum is what accepts them; same for these copies
    (tmp_path / "raw").mkdir()
    copy_test_split(mnist_dir, tmp_path / "raw", uncompressed=True)
    x, y = data.load_mnist(tmp_path / "raw", split="test")
    assert torch.equal(x, mnist_test[0]) and torch.equal(y, mnist_test[1])
    (tmp_path / "gz1").mkdir()
    for stem in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        blob = gzip.compress(raw_of(mnist_dir / f"{stem}.gz"), compresslevel=1)
        (tmp_path / "gz1" / f"{stem}.gz").write_bytes(blob)
    x, y = data.load_mnist(tmp_path / "gz1", split="test")
    assert torch.equal(x, mnist_test[0]) and torch.equal(y, mnist_test[1])


def test_load_mnist_refuses_a_corrupted_copy(mnist_dir, tmp_path):
    copy_test_split(mnist_dir, tmp_path, uncompressed=True)
    labels = tmp_path / "t10k-labels-idx1-ubyte"
    blob = bytearray(labels.read_bytes())
    blob[100] = (blob[100] + 1) % 10  # still valid IDX and a valid label: only md5 sees it
    labels.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match="checksum mismatch") as info:
        data.load_mnist(tmp_path, split="test")
    msg = str(info.value)
    assert str(labels) in msg
    assert md5(bytes(blob)) in msg  # the file's checksum...
    assert MNIST_RAW_MD5["t10k-labels-idx1-ubyte"] in msg  # ...and the expected one
    assert "ec29112dd5afa0611ce80d1b7f02629c" in msg  # the published .gz checksum too


def test_load_mnist_refuses_a_corrupted_gzip(mnist_dir, tmp_path):
    copy_test_split(mnist_dir, tmp_path, uncompressed=False)
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match=re.escape(str(path))):
        data.load_mnist(tmp_path, split="test")


# --------------------------------------------------------- MNIST, arguments and caching
@pytest.fixture
def no_network(monkeypatch):
    def refuse(url, timeout):
        raise AssertionError(f"no download was asked for, yet {url} was opened")

    monkeypatch.setattr(data, "_urlopen", refuse)


def test_load_mnist_missing_files_never_download(tmp_path, no_network):
    with pytest.raises(FileNotFoundError, match="root=") as info:
        data.load_mnist(tmp_path, split="test")
    assert "download=True" in str(info.value) and str(tmp_path) in str(info.value)


def test_load_mnist_default_cache_is_computed_at_call_time(tmp_path, monkeypatch, no_network):
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / ".cache/vi_helpers"))):
        data.load_mnist(kind="fashion_mnist")
    assert not (tmp_path / ".cache").exists()  # looking created nothing


@pytest.mark.parametrize(
    "kwargs, exc, name",
    [
        ({"split": "val"}, ValueError, "split"),
        ({"kind": "kmnist"}, ValueError, "kind"),
        ({"download": "yes"}, TypeError, "download"),
        ({"root": "a", "cache_dir": "b"}, ValueError, "cache_dir"),
    ],
)
def test_load_mnist_bad_arguments(kwargs, exc, name, no_network):
    with pytest.raises(exc, match=name):
        data.load_mnist(**kwargs)


# ---------------------------------------------------------------- MNIST, mocked download
TINY_STEMS = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


@pytest.fixture
def tiny_mirrors(tmp_path, monkeypatch):
    """Two file:// mirrors: 'bad' serves corrupted files, 'good' the right ones.

    The checksum table is replaced by the checksums of these tiny files, so the
    real verification code runs on them; every opened URL is recorded."""
    rng = np.random.default_rng(1)
    arrays = {
        TINY_STEMS[0]: rng.integers(0, 256, (3, 28, 28)).astype(np.uint8),
        TINY_STEMS[1]: np.array([7, 0, 3], dtype=np.uint8),
    }
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir()
    bad.mkdir()
    table = {"mnist": {}, "fashion_mnist": {}}
    for stem, array in arrays.items():
        raw = idx_bytes(array)
        blob = gzip.compress(raw, mtime=0)
        (good / f"{stem}.gz").write_bytes(blob)
        wrong = bytearray(raw)
        wrong[-1] ^= 1
        (bad / f"{stem}.gz").write_bytes(gzip.compress(bytes(wrong), mtime=0))
        table["mnist"][stem] = (md5(blob), md5(raw))
        table["fashion_mnist"][stem] = (md5(blob), None)
    monkeypatch.setattr(data, "_CHECKSUMS", table)
    mirrors = (bad.as_uri() + "/", (tmp_path / "absent").as_uri() + "/", good.as_uri() + "/")
    monkeypatch.setattr(data, "_MIRRORS", {"mnist": mirrors, "fashion_mnist": mirrors})
    opened = []

    def recording_urlopen(url, timeout):
        opened.append(url)
        return urllib.request.urlopen(url, timeout=timeout)

    monkeypatch.setattr(data, "_urlopen", recording_urlopen)
    return {"arrays": arrays, "opened": opened, "good": good, "bad": bad, "tmp": tmp_path}


@pytest.mark.parametrize("kind", ["mnist", "fashion_mnist"])
def test_download_tries_mirrors_verifies_and_caches(tiny_mirrors, kind):
    cache = tiny_mirrors["tmp"] / "cache" / kind
    x, y = data.load_mnist(split="test", kind=kind, download=True, cache_dir=cache)
    images, labels = tiny_mirrors["arrays"].values()
    torch.testing.assert_close(x, torch.from_numpy(images.reshape(3, 784)).float() / 255)
    assert y.tolist() == [7, 0, 3]
    # each file: the corrupted mirror, the missing one, then the good one
    assert [u.split("/")[-2] for u in tiny_mirrors["opened"]] == ["bad", "absent", "good"] * 2
    assert sorted(p.name for p in cache.iterdir()) == sorted(f"{s}.gz" for s in TINY_STEMS)
    for stem in TINY_STEMS:  # the good bytes, not the bad
        assert (cache / f"{stem}.gz").read_bytes() == (
            tiny_mirrors["good"] / f"{stem}.gz"
        ).read_bytes()
    n_opened = len(tiny_mirrors["opened"])
    data.load_mnist(split="test", kind=kind, download=True, cache_dir=cache)
    assert len(tiny_mirrors["opened"]) == n_opened  # cached: nothing fetched again


def test_download_failure_suggests_root_and_writes_nothing(tiny_mirrors, monkeypatch):
    bad = tiny_mirrors["bad"].as_uri() + "/"
    monkeypatch.setattr(data, "_MIRRORS", {"mnist": (bad, bad)})
    cache = tiny_mirrors["tmp"] / "cache"
    with pytest.raises(RuntimeError, match="root=") as info:
        data.load_mnist(split="test", download=True, cache_dir=cache)
    assert "checksum mismatch" in str(info.value)
    assert not cache.exists() or list(cache.iterdir()) == []


def test_fashion_uncompressed_file_has_no_published_checksum(tiny_mirrors):
    folder = tiny_mirrors["tmp"] / "fashion"
    folder.mkdir()
    for stem in TINY_STEMS:
        (folder / stem).write_bytes(raw_of(tiny_mirrors["good"] / f"{stem}.gz"))
    with pytest.raises(ValueError, match="no checksum is published"):
        data.load_mnist(folder, split="test", kind="fashion_mnist")
    assert tiny_mirrors["opened"] == []


def test_download_of_the_real_files_through_a_file_mirror(
    mnist_dir, mnist_test, tmp_path, monkeypatch
):
    # real checksum table; the "mirror" is the shared folder, opened with urllib
    monkeypatch.setattr(data, "_MIRRORS", {"mnist": (mnist_dir.as_uri() + "/",)})
    x, y = data.load_mnist(split="test", download=True, cache_dir=tmp_path)
    assert torch.equal(x, mnist_test[0]) and torch.equal(y, mnist_test[1])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{s}.gz" for s in TINY_STEMS)


# ------------------------------------------------------------------- dynamic_binarize
def test_dynamic_binarize_mean_matches_intensity():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(500, 784, generator=gen)
    b = data.dynamic_binarize(x, generator=gen)
    assert b.shape == x.shape and b.dtype == x.dtype
    assert set(b.unique().tolist()) <= {0.0, 1.0}
    # Var(mean b | x) = sum x (1 - x) / N^2; allow 5 standard errors
    se = float((x * (1 - x)).sum().sqrt() / x.numel())
    assert abs(float(b.mean() - x.mean())) < 5 * se
    # per pixel value: a constant 0.3 image, 100000 draws, SE = sqrt(.21 / 1e5) = 0.00145
    b = data.dynamic_binarize(torch.full((100, 1000), 0.3), generator=gen)
    assert abs(float(b.mean()) - 0.3) < 5 * 0.00145


def test_dynamic_binarize_seeded_is_static_and_extremes_are_exact():
    x = torch.rand(50, 64, generator=torch.Generator().manual_seed(1))
    a = data.dynamic_binarize(x, generator=torch.Generator().manual_seed(0))
    b = data.dynamic_binarize(x, generator=torch.Generator().manual_seed(0))
    c = data.dynamic_binarize(x, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.equal(a, c)
    edge = torch.tensor([[0.0, 1.0, 0.0, 1.0]]).repeat(1000, 1)
    assert torch.equal(data.dynamic_binarize(edge), edge)


def test_dynamic_binarize_pixels_independent_bernoulli():
    """Each pixel's frequency over many draws vs its intensity, and the pairwise
    co-occurrence of two pixels vs the product (independence), within 5 SE."""
    gen = torch.Generator().manual_seed(3)
    p = torch.tensor([0.05, 0.3, 0.5, 0.9])
    draws = data.dynamic_binarize(p.expand(200_000, 4).contiguous(), generator=gen)
    se = (p * (1 - p) / 200_000).sqrt()
    assert ((draws.mean(0) - p).abs() < 5 * se).all()
    both = (draws[:, 1] * draws[:, 2]).mean()
    assert abs(float(both) - 0.15) < 5 * math.sqrt(0.15 * 0.85 / 200_000)


@pytest.mark.parametrize(
    "x, exc",
    [
        (torch.tensor([0.5, 1.5]), ValueError),
        (torch.tensor([-0.1, 0.5]), ValueError),
        (torch.tensor([float("nan"), 0.5]), ValueError),
        (torch.tensor([float("inf"), 0.5]), ValueError),
        (torch.empty(0, 4), ValueError),
        (torch.tensor([0, 1]), TypeError),
        ([0.5], TypeError),
    ],
)
def test_dynamic_binarize_bad_input(x, exc):
    with pytest.raises(exc, match="x"):
        data.dynamic_binarize(x)


# ------------------------------------------------------------------------------ batches
def test_batches_in_order_cover_everything():
    x = torch.arange(30.0).reshape(10, 3)
    out = list(data.batches(x, 4, shuffle=False))
    assert [b.shape for b in out] == [(4, 3), (4, 3), (2, 3)]
    assert torch.equal(torch.cat(out), x)


def test_batches_shuffled_follow_randperm_of_the_generator():
    x = torch.arange(70.0).reshape(35, 2)
    out = list(data.batches(x, 8, generator=torch.Generator().manual_seed(5)))
    assert [b.shape[0] for b in out] == [8, 8, 8, 8, 3]
    order = torch.randperm(35, generator=torch.Generator().manual_seed(5))
    assert torch.equal(torch.cat(out), x[order])
    assert not torch.equal(torch.cat(out), x)


def test_batches_validates_before_iterating():
    with pytest.raises(ValueError, match="batch_size"):
        data.batches(torch.zeros(4, 2), 0)  # no next() needed: the error is eager
    with pytest.raises(TypeError, match="batch_size"):
        data.batches(torch.zeros(4, 2), 2.0)
    with pytest.raises(TypeError, match="x"):
        data.batches([[1.0, 2.0]], 1)
    with pytest.raises(ValueError, match="x"):
        data.batches(torch.tensor(1.0), 1)


def test_minibatches_reiterable_with_a_fresh_order_per_pass():
    x = torch.arange(40.0).reshape(20, 2)
    batches = data.Minibatches(x, 6, generator=torch.Generator().manual_seed(3))
    assert len(batches) == 4
    ref = torch.Generator().manual_seed(3)
    passes = []
    for _ in range(2):
        order = torch.randperm(20, generator=ref)  # one randperm per pass, from the generator
        epoch = list(batches)
        assert [b.shape[0] for b in epoch] == [6, 6, 6, 2]
        assert torch.equal(torch.cat(epoch), x[order])
        passes.append(torch.cat(epoch))
    assert not torch.equal(passes[0], passes[1])
    assert torch.equal(torch.cat(list(data.Minibatches(x, 7, shuffle=False))), x)


def test_minibatches_draw_the_order_when_a_pass_starts():
    g = torch.Generator().manual_seed(0)
    batches = data.Minibatches(torch.zeros(5, 1), 2, generator=g)
    state = g.get_state()
    it = iter(batches)
    assert not torch.equal(g.get_state(), state)  # drawn at iter(), before the first batch
    assert len(list(it)) == 3


# -- issue 11: a download that never answers ends, and says which mirrors it tried ---------------
def test_download_from_a_silent_server_ends_and_names_the_mirrors(tmp_path, monkeypatch):
    """A proxy that accepts the connection and never answers used to block 2 x 60 s in silence."""
    import socket
    import time

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)  # the kernel accepts connections; nothing ever answers
    try:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        monkeypatch.setattr(data, "_MIRRORS", {"mnist": (url, url + "second/")})
        start = time.monotonic()
        with pytest.raises(RuntimeError) as err:
            data.load_mnist(tmp_path, split="test", download=True, timeout=0.5)
        elapsed = time.monotonic() - start
    finally:
        silent.close()
    message = str(err.value)
    assert "2 mirror(s) tried" in message and "no answer (timed out)" in message
    assert url in message and url + "second/" in message and "root=" in message
    assert elapsed < 10  # two mirrors x 0.5 s, with room for a loaded machine
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_root_must_be_a_folder(tmp_path):
    """Root cause 8: a file as root said "not found"."""
    f = tmp_path / "mnist.gz"
    f.write_bytes(b"")
    with pytest.raises(ValueError, match="root must be a folder"):
        data.load_mnist(f)
    with pytest.raises(TypeError, match="root must be a folder path"):
        data.load_mnist(3)
