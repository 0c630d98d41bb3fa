"""Tests for vi_helpers.widgets._base: the display contract of every widget (mime bundle, repr,
static PNG fallback) and text boxes that fit their text."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import torch
from PIL import Image

from vi_helpers import widgets as vw
from vi_helpers.models import ConjugateGaussianModel

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(scope="module")
def all_widgets(model2, labelled_digits, sweep):
    x, y = labelled_digits
    ex = vw.LatentExplorer(model2)
    return {
        "LatentExplorer(latent_size=2)": ex,
        "LatentMap(n=359, latent_size=2)": vw.LatentMap(model2, x, y, explorer=ex),
        "Interpolation(latent_size=2, steps=8)": vw.Interpolation(model2, x[0], x[1]),
        "PriorSampler(n=16, latent_size=2)": vw.PriorSampler(model2),
        "KLExplorer(components=2)": vw.KLExplorer(),
        "ELBOGapExplorer(n=3)": vw.ELBOGapExplorer(ConjugateGaussianModel(), torch.ones(3)),
        "EstimatorVarianceExplorer(k=0, mu=1)": vw.EstimatorVarianceExplorer(),
        "BetaExplorer(n_betas=3)": vw.BetaExplorer(sweep()),
    }


@pytest.mark.parametrize(
    "name",
    [
        "LatentExplorer(latent_size=2)",
        "LatentMap(n=359, latent_size=2)",
        "Interpolation(latent_size=2, steps=8)",
        "PriorSampler(n=16, latent_size=2)",
        "KLExplorer(components=2)",
        "ELBOGapExplorer(n=3)",
        "EstimatorVarianceExplorer(k=0, mu=1)",
        "BetaExplorer(n_betas=3)",
    ],
)
def test_mimebundle_has_widget_view_text_and_png(all_widgets, name):
    import ipywidgets

    w = all_widgets[name]
    assert isinstance(w.widget, ipywidgets.Box)
    assert w.widget.layout.width and w.widget.layout.width.endswith("px")
    data, metadata = w._repr_mimebundle_()
    assert set(data) == {WIDGET_VIEW, "text/plain", "image/png"}
    assert data[WIDGET_VIEW]["model_id"] == w.widget.model_id
    assert data["text/plain"] == name == repr(w)
    png = base64.b64decode(data["image/png"])
    with Image.open(io.BytesIO(png)) as im:
        assert im.format == "PNG"
        assert metadata["image/png"] == {"width": im.width, "height": im.height}
    only_text, _ = w._repr_mimebundle_(include={"text/plain"})
    assert set(only_text) == {"text/plain"}


def test_static_png_shows_the_current_picture(model2, pixels):
    ex = vw.LatentExplorer(model2)
    ex.sliders[0].value = 1.0
    data, _ = ex._repr_mimebundle_()
    static = pixels(base64.b64decode(data["image/png"]))
    np.testing.assert_array_equal(static[..., 0], pixels(ex.image.value))


def test_ipython_display_formatter_uses_the_bundle(model2):
    from IPython.core.formatters import DisplayFormatter

    ex = vw.LatentExplorer(model2)
    data, metadata = DisplayFormatter().format(ex)
    assert data["text/plain"] == "LatentExplorer(latent_size=2)"
    assert WIDGET_VIEW in data and "image/png" in data


def test_callbacks_print_nothing(model2, labelled_digits, capsys):
    x, y = labelled_digits
    ex = vw.LatentExplorer(model2)
    lm = vw.LatentMap(model2, x, y, explorer=ex)
    ex.sliders[0].value = 0.7
    lm.index_slider.value = 9
    lm.next_button.click()
    kx = vw.KLExplorer()
    kx.sigma_slider.value = 2.0
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


def test_nbconvert_html_falls_back_to_the_png(model2):
    """Without saved widget state, nbconvert's HTML shows the bundle's PNG."""
    import nbformat
    from nbconvert import HTMLExporter

    ex = vw.LatentExplorer(model2)
    data, metadata = ex._repr_mimebundle_()
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("explorer", execution_count=1)
    cell.outputs = [
        nbformat.v4.new_output("execute_result", data=data, metadata=metadata, execution_count=1)
    ]
    nb.cells = [cell]
    html, _ = HTMLExporter().from_notebook_node(nb)
    assert f'src="data:image/png;base64,{data["image/png"]}"' in html


#: ipywidgets 8 gives the content of an HTML widget
#: ``line-height: var(--jp-widgets-inline-height)``, which is 28px.
LINE_HEIGHT_PX = 28


@pytest.mark.parametrize(
    "name",
    [
        "LatentExplorer(latent_size=2)",
        "LatentMap(n=359, latent_size=2)",
        "Interpolation(latent_size=2, steps=8)",
        "KLExplorer(components=2)",
        "ELBOGapExplorer(n=3)",
        "EstimatorVarianceExplorer(k=0, mu=1)",
        "BetaExplorer(n_betas=3)",
    ],
)
def test_info_box_is_tall_enough_for_its_text(all_widgets, name):
    """Every text line is visible: the box is at least lines x 28 px high (issue 15)."""
    info = all_widgets[name].info
    lines = info.value.count("\n") + 1
    assert info.layout.height.endswith("px")
    assert int(info.layout.height.removesuffix("px")) >= lines * LINE_HEIGHT_PX, info.value


# -- issue 11: a model that gives NaN is named, not an internal variable --------------------------
def test_widgets_name_the_model_when_it_gives_nan():
    from vi_helpers.models import VariationalAutoencoder

    torch.manual_seed(0)
    model = VariationalAutoencoder(4, 8, 2)
    with torch.no_grad():
        model.decoder.decoder[-1].bias.fill_(float("nan"))
    with pytest.raises(ValueError, match="model has NaN or infinite weights"):
        vw.PriorSampler(model, n=4)

    class NanDecoder(VariationalAutoencoder):
        def decode(self, z):
            return torch.full((*z.shape[:-1], 4), float("nan"))

    with pytest.raises(ValueError, match="model.decode returned NaN"):
        vw.LatentExplorer(NanDecoder(4, 8, 2))
