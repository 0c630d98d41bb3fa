r"""Data: small offline sets, MNIST / Fashion-MNIST with checksums, binarization, batches.

* :func:`load_digits` -- scikit-learn's 8x8 digits (ships with scikit-learn, no network).
* :func:`make_synthetic` -- 2-D toy sets: ``"moons"``, ``"circles"``, ``"pinwheel"``,
  ``"gaussian_mixture"``.
* :func:`read_idx` -- the IDX format of the MNIST files (raw or gzip).
* :func:`load_mnist` -- MNIST or Fashion-MNIST from a folder (checksums verified), or
  downloaded on request (``download=True`` only; never otherwise).
* :func:`dynamic_binarize` -- a Bernoulli draw of every pixel, :math:`\tilde x\sim\mathrm{Bern}(x)`.
* :func:`batches` -- vectorized minibatches of a tensor.

All loaders return ``(x, y)`` with ``x`` float32 of shape ``(N, D)`` scaled to
[0, 1] and ``y`` int64 of shape ``(N,)``.

Binarizing: ``binarize=True`` in the loaders *thresholds* at 0.5 (a pixel becomes
1 when its intensity is strictly greater than 0.5), which is deterministic. The
Bernoulli likelihood is better matched by *sampling*: :func:`dynamic_binarize`
draws a fresh binary image every epoch when training, and a test set binarized
once with a seeded generator, ``dynamic_binarize(x, generator=torch.Generator().manual_seed(0))``,
is the usual *statically* binarized test set.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import tempfile
import time
import urllib.request
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ._validate import (
    as_path,
    check_choice,
    check_nonnegative_float,
    check_nonnegative_int,
    check_positive_float,
    check_positive_int,
    check_tensor,
)

__all__ = [
    "load_digits",
    "make_synthetic",
    "SYNTHETIC_NAMES",
    "read_idx",
    "load_mnist",
    "dynamic_binarize",
    "batches",
    "Minibatches",
]

#: Names understood by :func:`make_synthetic`.
SYNTHETIC_NAMES = ("moons", "circles", "pinwheel", "gaussian_mixture")

#: Default ``noise`` of each synthetic set (see :func:`make_synthetic`).
_DEFAULT_NOISE = {"moons": 0.1, "circles": 0.05, "pinwheel": 0.3, "gaussian_mixture": 0.1}

_SPLITS = ("train", "test")
_KINDS = ("mnist", "fashion_mnist")

# File stems of the four standard files, per split.
_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

# (md5 of the published .gz file, md5 of the uncompressed bytes or None if not published).
# The .gz checksums are torchvision's (torchvision/datasets/mnist.py); the uncompressed
# MNIST checksums pin the content whatever gzip settings re-compressed it.
_CHECKSUMS = {
    "mnist": {
        "train-images-idx3-ubyte": (
            "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "6bbc9ace898e44ae57da46a324031adb",
        ),
        "train-labels-idx1-ubyte": (
            "d53e105ee54ea40749a09fcbcd1e9432",
            "a25bea736e30d166cdddb491f175f624",
        ),
        "t10k-images-idx3-ubyte": (
            "9fb629c4189551a2d022fa330f9573f3",
            "2646ac647ad5339dbf082846283269ea",
        ),
        "t10k-labels-idx1-ubyte": (
            "ec29112dd5afa0611ce80d1b7f02629c",
            "27ae3e4e09519cfbb04c329615203637",
        ),
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte": ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", None),
        "train-labels-idx1-ubyte": ("25c81989df183df01b3e8a0aad5dffbe", None),
        "t10k-images-idx3-ubyte": ("bef4ecab320f06d8554ea6380940ec79", None),
        "t10k-labels-idx1-ubyte": ("bb300cfdad3c16e7a12a480ee83cd310", None),
    },
}

# Tried in order; the first mirror whose file passes the checksum wins.
_MIRRORS = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://yann.lecun.com/exdb/mnist/",
    ),
    "fashion_mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
}

# IDX type codes (third byte of the magic number) -> big-endian NumPy dtype.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


# ----------------------------------------------------------------------------- digits
def _check_seed(seed) -> int:
    return check_nonnegative_int("seed", seed)


def _threshold(x: torch.Tensor) -> torch.Tensor:
    # strictly greater: an intensity of exactly 0.5 (8/16 in the digits) becomes 0
    return (x > 0.5).to(x.dtype)


def load_digits(
    *, split: str = "train", test_fraction: float = 0.2, seed: int = 0, binarize: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 1797 handwritten 8x8 digits, scaled to [0, 1].

    The data ship inside scikit-learn, so this works offline. Pixel counts run
    from 0 to 16 and are divided by 16.

    The split is a permutation drawn from ``torch.Generator().manual_seed(seed)``:
    the first ``round(test_fraction * 1797)`` permuted indices are the test set,
    the rest the training set, each kept in the original order. So ``"train"``
    and ``"test"`` are disjoint, their union is ``"all"``, and the same ``seed``
    gives the same split on every machine.

    Args:
        split: ``"train"``, ``"test"`` or ``"all"``.
        test_fraction: share of the examples in the test set, in (0, 1).
        seed: seed of the split permutation (an int >= 0).
        binarize: threshold at 0.5 (``x > 0.5`` becomes 1, else 0; see the module
            docstring for sampling instead).

    Returns:
        ``(x, y)``: ``x`` float32 ``(N, 64)`` in [0, 1], ``y`` int64 ``(N,)`` in 0..9.
    """
    split = check_choice("split", split, ("train", "test", "all"))
    test_fraction = check_nonnegative_float("test_fraction", test_fraction)
    seed = _check_seed(seed)
    from sklearn.datasets import load_digits as _sk_load_digits  # slow import: only when used

    bunch = _sk_load_digits()
    x = torch.as_tensor(bunch.data, dtype=torch.float32) / 16.0
    y = torch.as_tensor(bunch.target, dtype=torch.int64)
    n = x.shape[0]
    n_test = round(test_fraction * n)
    if not 0 < n_test < n:
        raise ValueError(
            f"test_fraction must leave both splits non-empty (0 < test_fraction < 1), "
            f"got {test_fraction}"
        )
    if split != "all":
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        idx = perm[:n_test] if split == "test" else perm[n_test:]
        idx = idx.sort().values
        x, y = x[idx], y[idx]
    if binarize:
        x = _threshold(x)
    return x, y


# -------------------------------------------------------------------------- synthetic
def make_synthetic(
    name: str, n: int, *, noise: float | None = None, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""A 2-D toy data set with class labels.

    * ``"moons"``: two interleaved half circles (``sklearn.datasets.make_moons``);
      ``noise`` is the std of added Gaussian noise (default 0.1). Labels 0/1, with
      ``n // 2`` zeros.
    * ``"circles"``: two concentric circles, radii 1 and 0.5
      (``sklearn.datasets.make_circles(factor=0.5)``); default noise 0.05. Labels 0
      (outer, ``n // 2`` points) and 1 (inner).
    * ``"pinwheel"``: Johnson et al. (2016), *Composing graphical models with
      neural networks*: 5 arms; a point of arm :math:`k` is
      :math:`R(\theta)\,(1+\epsilon_r,\ \epsilon_t)` with
      :math:`\epsilon_r\sim\mathcal N(0,\mathtt{noise}^2)`,
      :math:`\epsilon_t\sim\mathcal N(0,(\mathtt{noise}/6)^2)` and
      :math:`\theta=2\pi k/5+0.25\,e^{1+\epsilon_r}`, so arms curl outwards.
      Default noise 0.3 (their radial std; tangential 0.05). Unlike their code we
      do not multiply by 10, so the set has the same scale as the others.
    * ``"gaussian_mixture"``: 8 isotropic Gaussians with std ``noise`` (default
      0.1) centred on the circle of radius 2 at angles :math:`2\pi k/8`.

    For the pinwheel and the mixture, labels are ``arange(n) % K`` (balanced to
    within one), and points come in a random order.

    Args:
        name: one of :data:`SYNTHETIC_NAMES`.
        n: number of points (> 0).
        noise: see above (>= 0); ``None`` uses the default of ``name``.
        seed: random seed (int >= 0); the same seed gives the same points.

    Returns:
        ``(x, y)``: ``x`` float32 ``(n, 2)``, ``y`` int64 ``(n,)``.
    """
    name = check_choice("name", name, SYNTHETIC_NAMES)
    n = check_positive_int("n", n)
    noise = _DEFAULT_NOISE[name] if noise is None else check_nonnegative_float("noise", noise)
    seed = _check_seed(seed)
    if name in ("moons", "circles"):
        from sklearn.datasets import make_circles, make_moons

        if name == "moons":
            x, y = make_moons(n_samples=n, noise=noise, random_state=seed)
        else:
            x, y = make_circles(n_samples=n, noise=noise, factor=0.5, random_state=seed)
        return torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.int64)

    gen = torch.Generator().manual_seed(seed)
    n_classes = 5 if name == "pinwheel" else 8
    y = torch.arange(n) % n_classes
    base_angle = 2 * math.pi * y.double() / n_classes
    if name == "pinwheel":
        eps = torch.randn(n, 2, generator=gen, dtype=torch.float64)
        feat = eps * torch.tensor([noise, noise / 6.0], dtype=torch.float64)
        feat[:, 0] += 1.0
        angle = base_angle + 0.25 * torch.exp(feat[:, 0])
        c, s = torch.cos(angle), torch.sin(angle)
        # row vector times [[c, -s], [s, c]], as in the original einsum
        x = torch.stack([feat[:, 0] * c + feat[:, 1] * s, -feat[:, 0] * s + feat[:, 1] * c], 1)
    else:
        centres = 2.0 * torch.stack([torch.cos(base_angle), torch.sin(base_angle)], dim=1)
        x = centres + noise * torch.randn(n, 2, generator=gen, dtype=torch.float64)
    order = torch.randperm(n, generator=gen)
    return x[order].to(torch.float32), y[order].to(torch.int64)


# ------------------------------------------------------------------------------- IDX
def _parse_idx(data: bytes, path) -> np.ndarray:
    """Decode the bytes of an IDX file; ``path`` only names the file in errors."""
    if len(data) < 4:
        raise ValueError(f"{path} is not an IDX file: only {len(data)} byte(s), no magic number")
    zero0, zero1, code, ndim = data[0], data[1], data[2], data[3]
    if zero0 != 0 or zero1 != 0 or code not in _IDX_DTYPES or ndim == 0:
        raise ValueError(
            f"{path} is not an IDX file: bad magic number 0x{data[:4].hex()} (expected "
            "0x0000TTNN with type TT in 08,09,0b,0c,0d,0e and NN >= 1 dimensions)"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(
            f"{path} is truncated: its header needs {header} bytes for {ndim} dimension(s), "
            f"the file has {len(data)}"
        )
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[code]
    expected = header + math.prod(dims) * dtype.itemsize
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "too long"
        raise ValueError(
            f"{path} is {what}: dimensions {dims} of {dtype.name} need {expected} bytes, "
            f"the file has {len(data)}"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    return array.astype(dtype.newbyteorder("="))  # native byte order, and a writable copy


def _read_bytes(path: Path) -> tuple[bytes, bytes | None]:
    """Return (file bytes, decompressed bytes or None when the file is not gzip)."""
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":  # not gzip: the IDX bytes themselves
        return raw, None
    try:
        return raw, gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        raise ValueError(f"{path} is a corrupt or truncated gzip file: {err}") from err


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzip-compressed or not.

    The format: a 4-byte magic number ``0x00 0x00 TT NN`` where ``TT`` is the
    element type (0x08 unsigned byte, 0x09 signed byte, 0x0B int16, 0x0C int32,
    0x0D float32, 0x0E float64) and ``NN`` the number of dimensions; then ``NN``
    big-endian uint32 sizes; then the data, big-endian, row-major. Compression is
    detected from the gzip magic bytes, not from the file name.

    Args:
        path: the file.

    Returns:
        A NumPy array of shape given by the header and the matching native dtype
        (``uint8`` for MNIST).

    Raises:
        FileNotFoundError: no such file.
        ValueError: bad magic number, truncated or over-long data, corrupt gzip;
            the message names ``path``.
    """
    path = as_path("path", path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file {path} does not exist")
    raw, unzipped = _read_bytes(path)
    return _parse_idx(raw if unzipped is None else unzipped, path)


# ----------------------------------------------------------------------------- MNIST
def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _verified_idx_bytes(kind: str, stem: str, data: bytes, source) -> bytes:
    """Check ``data`` (a .gz or raw file of ``stem``) and return its IDX bytes.

    Accepted when the md5 of the .gz bytes is the published one, or the md5 of the
    uncompressed bytes is the known one: re-compressing a file changes the first
    but not the second.
    """
    want_gz, want_raw = _CHECKSUMS[kind][stem]
    is_gz = data[:2] == b"\x1f\x8b"
    got_file = _md5(data)
    if is_gz and got_file == want_gz:
        return gzip.decompress(data)
    unzipped = data
    if is_gz:
        try:
            unzipped = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as err:
            raise ValueError(
                f"checksum mismatch for {source}: md5 {got_file}, expected {want_gz} "
                f"(published md5 of {stem}.gz); the file is also not valid gzip ({err})"
            ) from err
    got_raw = _md5(unzipped)
    if want_raw is not None and got_raw == want_raw:
        return unzipped
    got = f"md5 {got_file}" + (f" (uncompressed md5 {got_raw})" if is_gz else "")
    want = f"{want_gz} for {stem}.gz" + (
        f" or {want_raw} for the uncompressed {stem}"
        if want_raw is not None
        else f" (no checksum is published for the uncompressed {kind} file; keep the .gz)"
    )
    raise ValueError(
        f"checksum mismatch for {source}: {got}, expected {want}. The file is corrupt or "
        "not the official one; delete it and fetch it again."
    )


def _urlopen(url: str, timeout: float):
    # one indirection, so that tests can serve files without a network
    return urllib.request.urlopen(url, timeout=timeout)


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename,
    so an interrupted download never leaves a half-written file under the real name."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


#: Longest silence (seconds) on a download connection before the mirror is given up.
STALL_TIMEOUT = 30.0


def _fetch(url: str, timeout: float) -> bytes:
    """The bytes at ``url`` within ``timeout`` seconds overall, with a progress line.

    The deadline is checked between chunks; a connection that stays silent (a proxy
    that accepts and never answers) is given up after ``min(timeout, STALL_TIMEOUT)``.
    """
    start = time.monotonic()
    chunks: list[bytes] = []
    with _urlopen(url, timeout=min(timeout, STALL_TIMEOUT)) as response:
        size = getattr(response, "headers", {}).get("Content-Length")
        with tqdm(total=int(size) if size and size.isdigit() else None, unit="B",
                  unit_scale=True, desc=f"downloading {url}", leave=False) as bar:
            while chunk := response.read(1 << 16):
                chunks.append(chunk)
                bar.update(len(chunk))
                if time.monotonic() - start > timeout:
                    raise TimeoutError(f"not complete after {timeout:g} s (timeout)")
    return b"".join(chunks)


def _download(kind: str, stem: str, folder: Path, timeout: float) -> Path:
    """Fetch ``stem.gz`` from the mirrors of ``kind`` into ``folder``; verified."""
    errors = []
    for mirror in _MIRRORS[kind]:
        url = f"{mirror}{stem}.gz"
        try:
            data = _fetch(url, timeout)
            _verified_idx_bytes(kind, stem, data, url)
        except (OSError, ValueError) as err:  # URLError and socket timeouts are OSErrors
            reason = "no answer (timed out)" if isinstance(err, TimeoutError) else err
            errors.append(f"  {url}: {reason if str(reason) else type(err).__name__}")
            continue
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{stem}.gz"
        _atomic_write(target, data)
        return target
    raise RuntimeError(
        f"could not download {stem}.gz for {kind} from any of the {len(errors)} mirror(s) "
        f"tried (each given {timeout:g} s at most):\n"
        + "\n".join(errors)
        + f"\nDownload the four files by hand and pass root='<folder with them>' "
        f"(files named {stem}.gz or {stem})."
    )


def _find(folder: Path, stem: str) -> Path | None:
    for name in (f"{stem}.gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def load_mnist(
    root: str | os.PathLike | None = None,
    *,
    split: str = "train",
    kind: str = "mnist",
    download: bool = False,
    cache_dir: str | os.PathLike | None = None,
    binarize: bool = False,
    timeout: float = 120.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST or Fashion-MNIST as flat float images in [0, 1], checksums verified.

    Files are looked for in ``root`` if given, else in ``cache_dir`` (default
    ``~/.cache/vi_helpers/<kind>``), named as published (``train-images-idx3-ubyte.gz``,
    ``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz``,
    ``t10k-labels-idx1-ubyte.gz``), gzip-compressed or not. A file is accepted
    when the md5 of the file is the published md5 of the ``.gz``, or the md5 of
    its uncompressed bytes is the known one (MNIST only: for Fashion-MNIST only
    the ``.gz`` checksums are published, so keep those files compressed).

    Nothing is downloaded unless ``download=True``. Then missing files are fetched
    with ``urllib`` from the mirrors in turn (MNIST: ossci-datasets S3, then
    yann.lecun.com; Fashion-MNIST: Zalando's S3) with a progress line, each mirror
    given ``timeout`` seconds per file, verified, and written atomically
    (temporary file + rename) into the same folder.

    Args:
        root: folder holding the files (typically a shared, read-only data folder).
        split: ``"train"`` (60000 images) or ``"test"`` (10000).
        kind: ``"mnist"`` or ``"fashion_mnist"``.
        download: fetch missing files from the internet.
        cache_dir: folder used when ``root`` is None; not both.
        binarize: threshold at 0.5 (intensity > 0.5 becomes 1); to sample instead,
            use :func:`dynamic_binarize`.
        timeout: seconds (> 0) one mirror may take to deliver one file before the
            next mirror is tried; a silent connection is given up after at most
            ``STALL_TIMEOUT`` (30 s).

    Returns:
        ``(x, y)``: ``x`` float32 ``(N, 784)`` (pixel / 255), ``y`` int64 ``(N,)`` in 0..9.

    Raises:
        FileNotFoundError: a file is missing and ``download`` is False.
        ValueError: a checksum does not match (the message names the file and both
            checksums), or a file is not valid IDX.
        RuntimeError: ``download=True`` and no mirror delivered a valid file in
            time (the message names every mirror tried and why it failed).
    """
    split = check_choice("split", split, _SPLITS)
    kind = check_choice("kind", kind, _KINDS)
    if not isinstance(download, bool):
        raise TypeError(f"download must be a bool, got {type(download).__name__}")
    timeout = check_positive_float("timeout", timeout)
    for name, value in (("root", root), ("cache_dir", cache_dir)):
        if value is not None and not isinstance(value, (str, os.PathLike)):
            raise TypeError(f"{name} must be a folder path or None, got {type(value).__name__}")
    if root is not None and cache_dir is not None:
        raise ValueError("pass root or cache_dir, not both (root is where the files are)")
    if root is not None:
        folder = Path(root).expanduser()
    elif cache_dir is not None:
        folder = Path(cache_dir).expanduser()
    else:  # computed here, not at import: importing the package touches no paths
        folder = Path.home() / ".cache" / "vi_helpers" / kind
    if folder.exists() and not folder.is_dir():
        which = "root" if root is not None else "cache_dir"
        raise ValueError(f"{which} must be a folder, got the file {folder}")

    arrays = []
    for stem in _FILES[split]:
        path = _find(folder, stem)
        if path is None:
            if not download:
                raise FileNotFoundError(
                    f"{stem}.gz (or {stem}) not found in {folder}. Pass root='<folder with the "
                    f"{kind} files>', or download=True to fetch them."
                )
            path = _download(kind, stem, folder, timeout)
        data = _verified_idx_bytes(kind, stem, path.read_bytes(), path)
        arrays.append(_parse_idx(data, path))
    images, labels = arrays
    n = labels.shape[0] if labels.ndim == 1 else -1
    if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.ndim != 1 or images.shape[0] != n:
        raise ValueError(
            f"{folder}: expected images (N, 28, 28) and labels (N,), "
            f"got {images.shape} and {labels.shape}"
        )
    x = torch.from_numpy(images).reshape(n, 28 * 28).to(torch.float32) / 255.0
    y = torch.from_numpy(labels).to(torch.int64)
    if binarize:
        x = _threshold(x)
    return x, y


# ------------------------------------------------------------------ binarize, batches
def dynamic_binarize(x: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Sample a binary image from the pixel intensities: :math:`\tilde x_d\sim\mathrm{Bern}(x_d)`.

    For training a Bernoulli VAE on MNIST, pass this as ``transform`` so that a
    fresh binarization is drawn every epoch (it acts as data augmentation and
    avoids the over-fitting of one fixed binarization). For a *static* test set,
    call it once with a seeded generator:
    ``dynamic_binarize(x_test, generator=torch.Generator().manual_seed(0))``.

    Args:
        x: intensities in [0, 1], any shape, floating dtype.
        generator: optional ``torch.Generator`` (on ``x``'s device).

    Returns:
        A tensor of 0.0 and 1.0 of the shape, dtype and device of ``x``;
        :math:`\mathbb E[\tilde x]=x`.
    """
    # one reduction validates the usual case (NaN fails both comparisons); the
    # detailed checks only run to explain a failure
    valid = (isinstance(x, torch.Tensor) and x.is_floating_point() and x.numel() > 0
             and x.device.type != "meta")
    if valid:
        lo, hi = torch.aminmax(x)
        valid = bool((lo >= 0) & (hi <= 1))
    if not valid:
        check_tensor("x", x, nonnegative=True)
        raise ValueError(
            f"x must hold intensities in [0, 1], got maximum {float(x.max()):.4g}; "
            "scale it first (e.g. pixel / 255)"
        )
    # P(u < x) = x for u ~ U[0, 1): the same law as torch.bernoulli(x), at about 40%
    # of its cost on a CPU (benchmarks/README.md); x = 0 and x = 1 stay exact
    u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return (u < x).to(x.dtype)


class Minibatches:
    """Re-iterable minibatches of a tensor: every pass visits each row once.

    Each ``iter()`` draws one ``torch.randperm`` (when the pass starts, from
    ``generator``) and yields ``ceil(N / batch_size)`` batches, each a single index
    operation, never a Python loop over examples. The last batch holds the
    remainder (``N % batch_size`` rows) if any. This is the one minibatching
    implementation of the package: :func:`vi_helpers.train.train_model` iterates
    it once per epoch, :func:`batches` is one pass of it.

    Args:
        x: ``(N, D)`` tensor (any number of trailing dimensions is fine). It is
            checked once, here, not on every pass.
        batch_size: rows per batch (> 0).
        shuffle: visit rows in a random order; ``False`` gives contiguous slices.
        generator: optional CPU ``torch.Generator`` for a repeatable order.
    """

    def __init__(
        self,
        x: torch.Tensor,
        batch_size: int,
        *,
        shuffle: bool = True,
        generator: torch.Generator | None = None,
    ):
        check_tensor("x", x, floating=False)
        if x.dim() == 0:
            raise ValueError("x must have a batch dimension, got a 0-d tensor")
        self.x = x
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.shuffle = bool(shuffle)
        self.generator = generator

    def __len__(self) -> int:
        return math.ceil(self.x.shape[0] / self.batch_size)

    def __iter__(self) -> Iterator[torch.Tensor]:
        n, x, size = self.x.shape[0], self.x, self.batch_size
        if not self.shuffle:
            return (x[start : start + size] for start in range(0, n, size))
        # drawn now, when the pass starts, not lazily at the first batch
        order = torch.randperm(n, generator=self.generator).to(x.device)
        return (x.index_select(0, order[start : start + size]) for start in range(0, n, size))


def batches(
    x: torch.Tensor,
    batch_size: int,
    *,
    shuffle: bool = True,
    generator: torch.Generator | None = None,
) -> Iterator[torch.Tensor]:
    """One pass of :class:`Minibatches`: split ``x`` into minibatches along its first dimension.

    The row order is drawn when this function is called (one ``torch.randperm``).

    Args:
        x: ``(N, D)`` tensor (any number of trailing dimensions is fine).
        batch_size: rows per batch (> 0).
        shuffle: visit rows in a random order; ``False`` gives contiguous slices.
        generator: optional CPU ``torch.Generator`` for a repeatable order.

    Returns:
        An iterator over ``ceil(N / batch_size)`` tensors of shape ``(B, D)``.
    """
    return iter(Minibatches(x, batch_size, shuffle=shuffle, generator=generator))
