"""Tests for vi_helpers.widgets._aggplot: blitting equals a full redraw, and the limit rule."""

from __future__ import annotations

import numpy as np
import pytest

from vi_helpers.widgets._aggplot import AggPlot, needs_limit, new_figure, normal_pdf


def line_plot():
    fig = new_figure(200, 120)
    ax = fig.add_axes((0.1, 0.1, 0.8, 0.8))
    ax.plot([0, 1], [0, 1], color="tab:blue")
    (moving,) = ax.plot([0, 1], [1, 0], color="tab:orange")
    return AggPlot(fig, [moving]), moving


def test_blitted_png_equals_a_full_redraw_and_skips_it(pixels, monkeypatch):
    plot, moving = line_plot()
    first = plot.png()
    assert pixels(first).shape == (120, 200, 3)
    full_draws = []
    draw = plot.canvas.draw
    monkeypatch.setattr(plot.canvas, "draw", lambda: full_draws.append(1) or draw())
    moving.set_ydata([0.5, 0.2])
    blitted = plot.png()
    assert full_draws == [] and blitted != first
    plot.invalidate()
    np.testing.assert_array_equal(pixels(blitted), pixels(plot.png()))
    assert full_draws == [1]


@pytest.mark.parametrize(
    "current, low, high, slack, want",
    [
        ((0.0, 1.0), 0.2, 0.8, 3.0, None),  # fits and fills enough: keep
        ((0.0, 1.0), -0.1, 0.8, 3.0, (-0.1 - 0.135, 0.8 + 0.135)),  # leaves the view
        ((0.0, 10.0), 0.0, 1.0, 3.0, (-0.15, 1.15)),  # fills less than 1/3
        ((0.0, 10.0), 0.0, 4.0, 3.0, None),
        ((0.0, 10.0), 0.0, 4.0, 2.0, (-0.6, 4.6)),
    ],
)
def test_needs_limit(current, low, high, slack, want):
    got = needs_limit(current, low, high, slack=slack)
    if want is None:
        assert got is None
    else:
        assert got == pytest.approx(want)


def test_normal_pdf_integrates_to_one_and_peaks_at_the_mean():
    z = np.linspace(-10.0, 12.0, 20001)
    p = normal_pdf(z, 1.0, 1.5)
    assert np.trapezoid(p, z) == pytest.approx(1.0, abs=1e-9)
    assert z[p.argmax()] == pytest.approx(1.0, abs=1e-3)
    assert p.max() == pytest.approx(1.0 / (1.5 * np.sqrt(2.0 * np.pi)))
