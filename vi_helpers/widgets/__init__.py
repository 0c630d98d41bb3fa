r"""Interactive widgets (ipywidgets 8) for the notebooks, one widget a module.

VAE widgets (any model with ``decode(z)`` and ``latent_size``; the map and the
interpolation also need ``encode(x) -> (mean, log_var)``), notebook 6:

* :class:`LatentExplorer` (``latent_explorer``) -- move ``z`` with sliders and watch
  the decoded image live.
* :class:`LatentMap` (``latent_map``) -- the encoder means of a data set, one
  example's posterior ellipse, its original and its reconstruction, and the
  explorer's ``z``.
* :class:`Interpolation` (``interpolation``) -- decode along a linear or spherical
  path between two codes (:func:`lerp`, :func:`slerp`, from :mod:`vi_helpers.latent`).
* :class:`PriorSampler` (``prior_sampler``) -- a seeded grid of decoded draws
  :math:`z\sim\mathcal N(0, I)`.
* :class:`BetaExplorer` (``beta_explorer``, notebook 7) -- a precomputed beta sweep:
  rate, distortion, reconstructions.

Concept widgets for the early notebooks (``concepts``):

* :class:`KLExplorer` -- :math:`\mathrm{KL}(q\,\|\,p)` vs :math:`\mathrm{KL}(p\,\|\,q)` for a
  Gaussian ``q`` and a bimodal mixture ``p`` (see :func:`~vi_helpers.kl.kl_normal_mixture`).
* :class:`ELBOGapExplorer` -- :math:`\log p(x)=\mathrm{ELBO}(q)+\mathrm{KL}(q\,\|\,p(z\mid x))`
  in a conjugate Gaussian model.
* :class:`EstimatorVarianceExplorer` -- score-function vs pathwise gradients of
  :math:`\mathbb E_{\mathcal N(\mu,\sigma^2)}(z-k)^2`.

The private core: ``_png`` (PNG encoding, grids, scaling), ``_base`` (the
widget contract :class:`~vi_helpers.widgets._base.InteractiveWidget`, the
decoder wrapper, UI atoms) and ``_aggplot`` (the blitted Agg plot and the base
class of the concept explorers). A new widget is a module here that subclasses
``InteractiveWidget`` and is re-exported below.

How they are built, and why:

* Every widget keeps its ipywidgets container in ``.widget``. Callbacks only set
  widget *values* (``Image.value`` PNG bytes, ``HTML.value``): nothing is printed or
  plotted into an ``Output`` widget, so updates are cheap and never pile up.
* Decoded images are PNGs made with Pillow: a nearest-neighbour upscale by an
  integer ``scale`` at PNG ``compress_level=1`` (:func:`render_png`). Every ``Image``
  widget has a fixed pixel size, so pixels stay crisp and the layout never jumps;
  every text box is sized to its number of lines.
  The latent map is a cached palette image with markers drawn by Pillow; plots
  are written as unfiltered PNGs straight from the Agg buffer (faster than
  Pillow's adaptive row filters on large RGB pictures).
* Plots use one persistent Matplotlib figure per widget on the Agg canvas (no
  pyplot, no global state). Moving artists are updated with ``set_data`` /
  ``set_height`` and blitted onto a cached background; the full figure is only
  redrawn when an axis limit must change.
* Displaying a widget object gives a mime bundle with the live widget view, a
  deterministic ``text/plain`` (``"LatentExplorer(latent_size=2)"``, no addresses,
  so nbval can compare it) **and** an ``image/png`` of the current state. JupyterLab
  4 and Notebook 7 (the same rendermime and widget manager) rank the widget view
  first (its renderer is registered at rank -10, images at 90) and show the live
  widget for trusted outputs, i.e. those just computed. Renderers without a widget
  manager (nbconvert HTML without saved widget state, GitHub) fall back to the PNG,
  and so does JupyterLab for *untrusted* outputs (a notebook from disk that this
  user has not trusted), because the widget renderer is not marked safe. A
  trusted notebook reopened without running it shows "model not found" instead.
* Bad arguments raise ``TypeError``/``ValueError`` naming the argument when the
  widget is built, never later inside a callback.

Images are drawn dark-on-white like ``plots.plot_image_grid`` (``cmap="gray_r"``):
a pixel value ``v`` in [0, 1] (values outside are clipped) becomes the grey level
``round(255 * (1 - v))``.
"""

from ..kl import kl_normal_mixture
from ..latent import lerp, slerp
from ._png import render_png
from .beta_explorer import BetaExplorer
from .concepts import ELBOGapExplorer, EstimatorVarianceExplorer, KLExplorer
from .interpolation import Interpolation
from .latent_explorer import LatentExplorer
from .latent_map import LatentMap
from .prior_sampler import PriorSampler

__all__ = [
    "render_png",
    "slerp",
    "lerp",
    "kl_normal_mixture",
    "LatentExplorer",
    "LatentMap",
    "Interpolation",
    "PriorSampler",
    "KLExplorer",
    "ELBOGapExplorer",
    "EstimatorVarianceExplorer",
    "BetaExplorer",
]
