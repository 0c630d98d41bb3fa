"""Tests for vi_helpers.checkpoint: round trips, atomic saves, refusing pickles that run code."""

from __future__ import annotations

import os
import pickle
import re
import shlex

import pytest
import safetensors.torch
import torch
from safetensors import safe_open

from vi_helpers import checkpoint
from vi_helpers.checkpoint import load_checkpoint, read_checkpoint_metadata, save_checkpoint
from vi_helpers.models import LinearGaussianVAE, VariationalAutoencoder

D = 12


def make_vae(seed: int = 0, **kwargs) -> VariationalAutoencoder:
    torch.manual_seed(seed)
    kwargs = {"likelihood": "mse", **kwargs}
    model = VariationalAutoencoder(D, 8, 3, **kwargs)
    if isinstance(getattr(model, "obs_log_var", None), torch.nn.Parameter):
        with torch.no_grad():
            model.obs_log_var.fill_(-0.7)  # away from its init, so a lost value would show
    return model


MODELS = {
    "vae-mse": lambda s=0: make_vae(s),
    "vae-bernoulli": lambda s=0: make_vae(s, likelihood="bernoulli", beta=2.0),
    "vae-gaussian-learned": lambda s=0: make_vae(s, likelihood="gaussian", free_bits=0.1),
    "vae-gaussian-fixed": lambda s=0: make_vae(s, likelihood="gaussian", obs_log_var=-1.5),
    "linear": lambda s=0: (torch.manual_seed(s), LinearGaussianVAE(D, 3))[1],
}


def outputs(model, x) -> list[torch.Tensor]:
    """Deterministic outputs that depend on every parameter."""
    with torch.no_grad():
        mean, log_var = model.encode(x)
        z = torch.randn(x.shape[0], 3, generator=torch.Generator().manual_seed(1))
        x_hat = model.decode(z)
        out = [mean, log_var, x_hat, model.log_likelihood(x, x_hat)]
        if isinstance(model, LinearGaussianVAE):
            out += [model.analytic_elbo(x), model.exact_log_likelihood(x)]
        else:
            out.append(model.elbo(x, n_samples=3, generator=torch.Generator().manual_seed(2)))
    return out


@pytest.fixture
def x():
    return torch.rand(5, D, generator=torch.Generator().manual_seed(0))


# ---------------------------------------------------------------------------- round trip
@pytest.mark.parametrize("which", list(MODELS))
def test_round_trip_rebuilds_identical_model(tmp_path, x, which):
    model = MODELS[which]()
    path = save_checkpoint(model, tmp_path / "m.safetensors", metadata={"epochs": 3})
    loaded = load_checkpoint(path)
    assert type(loaded) is type(model) and loaded is not model
    assert loaded.config == model.config
    own, got = model.state_dict(), loaded.state_dict()
    assert own.keys() == got.keys()
    for k in own:
        assert torch.equal(own[k], got[k]), k
    for a, b in zip(outputs(model, x), outputs(loaded, x), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("which", list(MODELS))
def test_load_into_a_given_model(tmp_path, x, which):
    model = MODELS[which](0)
    save_checkpoint(model, tmp_path / "m.st")
    other = MODELS[which](1)  # same config, other weights
    assert not torch.equal(outputs(other, x)[0], outputs(model, x)[0])
    assert load_checkpoint(tmp_path / "m.st", other) is other
    for a, b in zip(outputs(model, x), outputs(other, x), strict=True):
        assert torch.equal(a, b)


def test_file_is_plain_safetensors_with_the_documented_metadata(tmp_path):
    model = make_vae(likelihood="bernoulli")
    meta = {"epochs": 10, "elbo": -95.5, "notes": ["warm-up", None], "nested": {"a": 1}}
    save_checkpoint(model, tmp_path / "m.st", metadata=meta)
    # read back with safetensors itself, not with our code
    tensors = safetensors.torch.load_file(tmp_path / "m.st")
    assert tensors.keys() == model.state_dict().keys()
    with safe_open(tmp_path / "m.st", "pt") as f:
        raw = f.metadata()
    assert raw["model_class"] == "VariationalAutoencoder"
    info = read_checkpoint_metadata(tmp_path / "m.st")
    assert info["metadata"] == meta
    assert info["model_class"] == "VariationalAutoencoder"
    assert info["config"] == model.config
    assert info["format"] == checkpoint.FORMAT
    assert oct((tmp_path / "m.st").stat().st_mode & 0o777) == oct(0o644)


def test_fine_tuning_with_another_beta_is_allowed(tmp_path, x):
    save_checkpoint(make_vae(0, beta=1.0), tmp_path / "m.st")
    other = make_vae(1, beta=4.0, free_bits=0.5)
    load_checkpoint(tmp_path / "m.st", other)
    assert other.beta == 4.0
    assert torch.equal(outputs(other, x)[0], outputs(make_vae(0), x)[0])


# ------------------------------------------------------------------------------ atomicity
def _boom(*args, **kwargs):
    raise OSError("simulated disk failure")


@pytest.mark.parametrize("where", ["serialize", "fsync", "replace"])
def test_failed_save_leaves_old_file_intact(tmp_path, x, monkeypatch, where):
    path = tmp_path / "m.st"
    old = make_vae(0)
    save_checkpoint(old, path, metadata={"version": "old"})
    before = path.read_bytes()
    if where == "serialize":
        monkeypatch.setattr(safetensors.torch, "save", _boom)
    else:
        monkeypatch.setattr(checkpoint.os, where, _boom)
    with pytest.raises(OSError, match="simulated"):
        save_checkpoint(make_vae(1), path, metadata={"version": "new"})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert read_checkpoint_metadata(path)["metadata"] == {"version": "old"}
    assert torch.equal(outputs(load_checkpoint(path), x)[0], outputs(old, x)[0])
    assert os.listdir(tmp_path) == ["m.st"]  # no temporary file left behind


def test_failed_save_to_a_new_path_creates_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint.os, "replace", _boom)
    with pytest.raises(OSError, match="simulated"):
        save_checkpoint(make_vae(), tmp_path / "new.st")
    assert os.listdir(tmp_path) == []


def test_save_overwrites_atomically(tmp_path, x):
    path = tmp_path / "m.st"
    save_checkpoint(make_vae(0), path)
    save_checkpoint(make_vae(1), path)
    assert torch.equal(outputs(load_checkpoint(path), x)[0], outputs(make_vae(1), x)[0])
    assert os.listdir(tmp_path) == ["m.st"]


# ------------------------------------------------------------------ malicious and foreign
class RunsCode:
    """Unpickling this would run a shell command that writes a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"echo pwned > {shlex.quote(str(self.marker))}",))


@pytest.mark.parametrize(
    "how",
    ["torch.save", "torch.save-in-state-dict", "torch.save-legacy", "pickle-p2", "pickle-p4"],
)
@pytest.mark.parametrize("with_model", [False, True])
def test_pickle_that_runs_code_is_refused(tmp_path, how, with_model):
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pt"
    payload = RunsCode(marker)
    if how == "torch.save":
        torch.save(payload, path)
    elif how == "torch.save-in-state-dict":
        state = dict(make_vae().state_dict())
        state["decoder.decoder.0.weight"] = payload
        torch.save(state, path)
    elif how == "torch.save-legacy":
        torch.save(payload, path, _use_new_zipfile_serialization=False)
    else:
        with open(path, "wb") as f:
            pickle.dump(payload, f, protocol=int(how[-1]))
    model = make_vae() if with_model else None
    with pytest.raises(ValueError, match="refusing to load") as info:
        load_checkpoint(path, model)
    msg = str(info.value)
    assert str(path) in msg and "would run code" in msg and "system" in msg
    assert not marker.exists()
    with pytest.raises(ValueError, match="not a safetensors"):
        read_checkpoint_metadata(path)
    assert not marker.exists()


def test_plain_state_dict_from_torch_save_loads_into_a_model(tmp_path, x):
    model = make_vae(0)
    torch.save(model.state_dict(), tmp_path / "seed.pt")
    torch.save({"model_state_dict": model.state_dict(), "epoch": 3}, tmp_path / "wrapped.pt")
    for name in ("seed.pt", "wrapped.pt"):
        other = make_vae(1)
        load_checkpoint(tmp_path / name, other)
        assert torch.equal(outputs(other, x)[0], outputs(model, x)[0])
    with pytest.raises(ValueError, match="model="):
        load_checkpoint(tmp_path / "seed.pt")


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all" * 5, "truncated"])
def test_garbage_and_truncated_files_are_value_errors_naming_the_path(tmp_path, content):
    path = tmp_path / "bad.st"
    if content == "truncated":
        save_checkpoint(make_vae(), path)
        blob = path.read_bytes()
        path.write_bytes(blob[: len(blob) - 100])
    else:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=re.escape(str(path))) as info:
        load_checkpoint(path, make_vae())
    assert "refusing" not in str(info.value)  # not mistaken for a malicious pickle


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "nope.st"))):
        load_checkpoint(tmp_path / "nope.st")
    with pytest.raises(FileNotFoundError, match="nope.st"):
        read_checkpoint_metadata(tmp_path / "nope.st")
    with pytest.raises(FileNotFoundError, match="folder"):
        save_checkpoint(make_vae(), tmp_path / "no" / "such" / "dir" / "m.st")


# ---------------------------------------------------------------------------- mismatches
def test_mismatched_sizes_are_refused_naming_the_parameter(tmp_path, x):
    save_checkpoint(VariationalAutoencoder(D, 8, 3), tmp_path / "m.st")
    smaller = VariationalAutoencoder(D, 5, 3)
    before = {k: v.clone() for k, v in smaller.state_dict().items()}
    with pytest.raises(ValueError, match=r"'encoder\.encoder\.0\.weight'.*\(8, 12\).*\(5, 12\)"):
        load_checkpoint(tmp_path / "m.st", smaller)
    for k, v in smaller.state_dict().items():  # nothing was half-loaded
        assert torch.equal(v, before[k])
    torch.save(VariationalAutoencoder(D, 8, 2).state_dict(), tmp_path / "m.pt")
    with pytest.raises(ValueError, match=r"'encoder\.mean\.weight'"):
        load_checkpoint(tmp_path / "m.pt", VariationalAutoencoder(D, 8, 3))


def test_missing_or_unexpected_parameters_are_named(tmp_path):
    save_checkpoint(make_vae(likelihood="gaussian"), tmp_path / "g.st")  # has obs_log_var
    with pytest.raises(ValueError, match="unexpected parameter.*obs_log_var"):
        load_checkpoint(tmp_path / "g.st", make_vae(likelihood="mse"))


def test_other_class_or_config_is_refused(tmp_path):
    save_checkpoint(make_vae(likelihood="bernoulli"), tmp_path / "b.st")
    mse = make_vae(1, likelihood="mse")  # same shapes, different meaning of x_hat
    before = {k: v.clone() for k, v in mse.state_dict().items()}
    with pytest.raises(ValueError, match="likelihood='bernoulli' saved vs 'mse'"):
        load_checkpoint(tmp_path / "b.st", mse)
    for k, v in mse.state_dict().items():
        assert torch.equal(v, before[k])
    save_checkpoint(LinearGaussianVAE(D, 3), tmp_path / "lin.st")
    with pytest.raises(ValueError, match="LinearGaussianVAE.*VariationalAutoencoder"):
        load_checkpoint(tmp_path / "lin.st", make_vae())


def test_unknown_class_needs_a_model(tmp_path):
    lin = torch.nn.Linear(3, 2)
    save_checkpoint(lin, tmp_path / "lin.st")
    with pytest.raises(ValueError, match="'Linear'.*model="):
        load_checkpoint(tmp_path / "lin.st")
    other = load_checkpoint(tmp_path / "lin.st", torch.nn.Linear(3, 2))
    assert torch.equal(other.weight, lin.weight) and torch.equal(other.bias, lin.bias)


@pytest.mark.parametrize(
    "kwargs, exc, name",
    [
        ({"model": "not a model"}, TypeError, "model"),
        ({"metadata": ["a"]}, TypeError, "metadata"),
        ({"metadata": {"a": object()}}, TypeError, "metadata"),
        ({"metadata": {"a": float("nan")}}, TypeError, "metadata"),
        ({"path": 3}, TypeError, "path"),
    ],
)
def test_save_bad_arguments(tmp_path, kwargs, exc, name):
    args = {"model": make_vae(), "path": tmp_path / "m.st", **kwargs}
    with pytest.raises(exc, match=name):
        save_checkpoint(args.pop("model"), args.pop("path"), **args)
    assert not (tmp_path / "m.st").exists()


def test_load_bad_model_argument(tmp_path):
    save_checkpoint(make_vae(), tmp_path / "m.st")
    with pytest.raises(TypeError, match="model"):
        load_checkpoint(tmp_path / "m.st", model={"not": "a module"})


# -- issue 11 -----------------------------------------------------------------------------------
@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_map_location_cuda_without_cuda_says_so(tmp_path):
    path = save_checkpoint(LinearGaussianVAE(4, 2), tmp_path / "m.safetensors")
    with pytest.raises(ValueError, match=r"map_location='cuda'.*CUDA is not available"):
        load_checkpoint(path, map_location="cuda")


def test_a_killed_save_leaves_no_temporary_file_behind(tmp_path):
    """A SIGKILL between mkstemp and the rename leaves .<name>.*.tmp; the next save removes it."""
    path = tmp_path / "m.safetensors"
    stale = tmp_path / ".m.safetensors.abc123.tmp"
    stale.write_bytes(b"half a checkpoint")
    other = tmp_path / ".other.safetensors.abc123.tmp"  # another file's: not ours to remove
    other.write_bytes(b"x")
    save_checkpoint(LinearGaussianVAE(4, 2), path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [other.name, path.name]


def test_a_plain_safetensors_file_is_named_as_such(tmp_path):
    """It used to say the file "holds a None"."""
    path = tmp_path / "plain.safetensors"
    safetensors.torch.save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(ValueError, match="without a model class.*pass model="):
        load_checkpoint(path)
