"""Tests for vi_helpers.optim: backtracking gradient descent against known minima."""

from __future__ import annotations

import math

import pytest
import torch

from vi_helpers.optim import DescentResult, gradient_descent_backtracking

DT = torch.float64


def test_quadratic_reaches_the_closed_form_minimum():
    # f(a, b) = 3 (a - 1)^2 + 0.5 (b + 2)^2 + (a - 1)(b + 2): minimum at (1, -2), value 0
    def f(a, b):
        return 3 * (a - 1) ** 2 + 0.5 * (b + 2) ** 2 + (a - 1) * (b + 2)

    result = gradient_descent_backtracking(f, torch.tensor([5.0, 5.0], dtype=DT), tol=1e-10)
    assert isinstance(result, DescentResult)
    torch.testing.assert_close(result.theta, torch.tensor([1.0, -2.0], dtype=DT), atol=1e-9, rtol=0)
    assert result.grad_norm < 1e-10
    assert result.path.shape[1] == 2 and torch.equal(result.path[0], torch.tensor([5.0, 5.0], dtype=DT))
    torch.testing.assert_close(result.path[-1], result.theta)


def test_objective_never_increases_along_the_path():
    # Rosenbrock: curved valley, minimum at (1, 1); fixed-step descent oscillates, backtracking cannot
    def rosenbrock(a, b):
        return (1 - a) ** 2 + 100 * (b - a**2) ** 2

    result = gradient_descent_backtracking(rosenbrock, torch.tensor([-1.2, 1.0], dtype=DT), n_steps=20_000)
    values = torch.stack([rosenbrock(*t) for t in result.path])
    assert (values.diff() <= 0).all()
    assert float(values[-1]) < 1e-8
    torch.testing.assert_close(result.theta, torch.tensor([1.0, 1.0], dtype=DT), atol=1e-4, rtol=0)


def test_gaussian_negative_log_likelihood_gives_the_sample_moments():
    # minimizing the NLL of N(m, s^2) over (m, log s) gives the sample mean and the (biased) sd
    x = torch.tensor([0.3, -1.2, 2.0, 0.7, 1.1], dtype=DT)

    def nll(m, log_s):
        return (log_s + 0.5 * ((x - m) / log_s.exp()) ** 2).sum()

    result = gradient_descent_backtracking(nll, torch.tensor([0.0, 0.0], dtype=DT), tol=1e-10)
    assert math.isclose(float(result.theta[0]), float(x.mean()), abs_tol=1e-9)
    assert math.isclose(float(result.theta[1].exp()), float(x.std(unbiased=False)), abs_tol=1e-8)


def test_n_steps_caps_the_path_and_start_is_untouched():
    theta0 = torch.tensor([3.0], dtype=DT)
    result = gradient_descent_backtracking(lambda a: (a - 1) ** 4, theta0, n_steps=5)
    assert result.path.shape == (6, 1)
    assert result.grad_norm > 1e-7  # not converged in 5 steps
    assert torch.equal(theta0, torch.tensor([3.0], dtype=DT))


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"n_steps": 0}, ValueError),
        ({"tol": 0.0}, ValueError),
        ({"shrink": 1.0}, ValueError),
        ({"c": 1.5}, ValueError),
    ],
)
def test_invalid_arguments(kwargs, error):
    with pytest.raises(error):
        gradient_descent_backtracking(lambda a: a**2, torch.tensor([1.0], dtype=DT), **kwargs)


def test_invalid_start_and_objective():
    with pytest.raises(ValueError):
        gradient_descent_backtracking(lambda a: a**2, torch.tensor(1.0, dtype=DT))
    with pytest.raises(TypeError):
        gradient_descent_backtracking("not callable", torch.tensor([1.0], dtype=DT))
