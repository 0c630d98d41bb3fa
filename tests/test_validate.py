"""Tests for vi_helpers._validate: the argument checks, the VAE contract and eval_mode.

References: the messages must name the argument; math.log for LOG_2PI; the
Protocol's own annotations for the list of members check_vae looks for.
"""

from __future__ import annotations

import math
import typing

import numpy as np
import pytest
import torch

from vi_helpers import VariationalAutoencoder
from vi_helpers._validate import (
    LOG_2PI,
    VAE,
    VAE_MEMBERS,
    as_elementwise_tensors,
    as_float_tensor,
    check_finite_float,
    check_generator,
    check_input_size,
    check_model_input,
    check_optional,
    check_positive_float,
    check_vae,
    eval_mode,
)
from vi_helpers.models import LinearGaussianVAE


def test_log_2pi_is_defined_once_and_right():
    assert LOG_2PI == math.log(2 * math.pi)


@pytest.mark.parametrize("value, want", [(3, 3.0), (-2.5, -2.5), (np.float32(0.5), 0.5)])
def test_check_finite_float_accepts_real_numbers(value, want):
    assert check_finite_float("a", value) == want


@pytest.mark.parametrize(
    "value, exc", [(math.nan, ValueError), (-math.inf, ValueError), (True, TypeError),
                   ("1", TypeError), (torch.tensor(1.0), TypeError)]
)
def test_check_finite_float_refuses_naming_the_argument(value, exc):
    with pytest.raises(exc, match="mu0"):
        check_finite_float("mu0", value)


def test_check_generator():
    g = torch.Generator()
    assert check_generator(g) is g and check_generator(None) is None
    with pytest.raises(TypeError, match="generator"):
        check_generator(0)


def test_check_optional_keeps_none_and_checks_the_rest():
    assert check_optional(check_positive_float, "grad_clip", None) is None
    assert check_optional(check_positive_float, "grad_clip", 2) == 2.0
    with pytest.raises(ValueError, match="grad_clip"):
        check_optional(check_positive_float, "grad_clip", -1.0)


def test_check_input_size():
    x = torch.zeros(3, 4)
    assert check_input_size("x", x, 4) is x and check_input_size("x", x, None) is x
    with pytest.raises(ValueError, match=r"x must have last dimension 5 .*input_size.*\(3, 4\)"):
        check_input_size("x", x, 5)
    with pytest.raises(ValueError, match="batch 2"):
        check_input_size("batch 2", torch.tensor(1.0), 1)


def test_check_model_input_moves_to_the_model_dtype():
    model = LinearGaussianVAE(4, 2).double()
    out = check_model_input(model, torch.zeros(3, 4))
    assert out.dtype == torch.float64
    with pytest.raises(ValueError, match="x"):
        check_model_input(model, torch.zeros(4))
    with pytest.raises(ValueError, match="input_size"):
        check_model_input(model, torch.zeros(3, 5))


def test_vae_members_are_the_protocols():
    annotations = set(typing.get_type_hints(VAE))
    methods = {name for name in vars(VAE) if not name.startswith("_") and callable(vars(VAE)[name])}
    assert set(VAE_MEMBERS) == annotations | methods


@pytest.mark.parametrize("make", [lambda: VariationalAutoencoder(4, 8, 2),
                                  lambda: LinearGaussianVAE(4, 2)])
def test_both_vaes_satisfy_the_contract(make):
    model = make()
    assert check_vae(model) is model
    assert isinstance(model, VAE)


def test_check_vae_names_what_is_missing():
    class NoDecode(torch.nn.Module):
        input_size, latent_size, likelihood = 4, 2, "gaussian"
        decoder = torch.nn.Linear(2, 4)

        def encode(self, x):
            return x, x

    with pytest.raises(TypeError, match="'decode'"):
        check_vae(NoDecode())
    with pytest.raises(TypeError, match="torch.nn.Module"):
        check_vae(object())


@pytest.mark.parametrize("start_training", [True, False])
def test_eval_mode_switches_and_restores(start_training):
    model = torch.nn.Sequential(torch.nn.Dropout(0.5))
    model.train(start_training)
    with eval_mode(model) as m:
        assert m is model and not model.training
    assert model.training is start_training
    with pytest.raises(RuntimeError), eval_mode(model):
        raise RuntimeError("boom")
    assert model.training is start_training  # restored after an error too


def test_as_elementwise_tensors():
    a = torch.ones(2, 3, dtype=torch.float64)
    x, c = as_elementwise_tensors(x=a, c=2)
    assert x is a and c.shape == (2, 3) and c.dtype == torch.float64 and bool((c == 2).all())
    (only,) = as_elementwise_tensors(k=1.5)
    assert only.shape == () and only.dtype == torch.get_default_dtype()
    with pytest.raises(ValueError, match="b"):
        as_elementwise_tensors(a=a, b=torch.ones(3))
    with pytest.raises(ValueError, match="c"):
        as_elementwise_tensors(a=a, c=math.inf)
    with pytest.raises(TypeError, match="c"):
        as_elementwise_tensors(a=a, c="1")


def test_as_float_tensor_numpy_and_numbers():
    assert as_float_tensor("x", np.ones(2)).dtype == torch.float32
    assert float(as_float_tensor("x", 2)) == 2.0
    with pytest.raises(TypeError, match="x"):
        as_float_tensor("x", np.ones(2, dtype=np.int64))
    with pytest.raises(TypeError, match="x"):
        as_float_tensor("x", [1.0])


# -- issue 11: the dtype rule, devices, meta tensors, messages -----------------------------------
def test_float16_is_refused_with_the_fix_and_cast_where_data_meets_a_model():
    from vi_helpers._validate import check_tensor

    with pytest.raises(TypeError, match=r"x has dtype torch.float16.*x\.float\(\)"):
        check_tensor("x", torch.zeros(2, dtype=torch.float16))
    model = LinearGaussianVAE(4, 2)
    assert check_model_input(model, torch.zeros(3, 4, dtype=torch.float16)).dtype == torch.float32
    with pytest.raises(TypeError, match="model has float16 weights"):
        check_model_input(model.half(), torch.zeros(3, 4))


def test_check_same_dtype_names_the_argument_both_dtypes_and_the_fix():
    from vi_helpers._validate import check_same_dtype

    with pytest.raises(TypeError, match=r"^mu has dtype torch.float32 but model has "
                                        r"torch.float64; convert it: mu\.double\(\)$"):
        check_same_dtype("mu", torch.zeros(2), "model", torch.float64)


def test_meta_tensors_and_models_are_refused_before_item():
    """Root cause 3: tensors on the meta device reached .item()."""
    from vi_helpers._validate import check_tensor

    with pytest.raises(ValueError, match="x is on the meta device"):
        check_tensor("x", torch.zeros(2, device="meta"))
    with pytest.raises(ValueError, match="model is on the meta device"):
        check_vae(LinearGaussianVAE(4, 2).to("meta"))


def test_check_device():
    from vi_helpers._validate import check_device

    assert check_device("device", "cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="device must name a device"):
        check_device("device", "gpu")
    with pytest.raises(TypeError, match="device"):
        check_device("device", 1.5)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            check_device("map_location", torch.device("cuda"))


def test_shapes_print_as_python_tuples():
    """Root cause 8: a required shape printed as (2) instead of (2,)."""
    from vi_helpers._validate import check_tensor

    with pytest.raises(ValueError, match=r"must have shape \(2,\), got \(3,\)"):
        check_tensor("y", torch.zeros(3), shape=(2,))


def test_as_data_tensor_converts_floating_numpy_and_refuses_integers():
    from vi_helpers._validate import as_data_tensor

    assert as_data_tensor("x", np.zeros((2, 3))).dtype == torch.float64
    with pytest.raises(TypeError, match=r"torch\.from_numpy\(x\)\.float\(\)"):
        as_data_tensor("x", np.zeros((2, 3), dtype=np.uint8))
