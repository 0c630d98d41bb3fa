r"""The prior sampler: a seeded grid of decoded draws :math:`z\sim\mathcal N(0, I)`."""

from __future__ import annotations

import ipywidgets as widgets
import torch

from .._validate import check_decoder_model, check_nonnegative_int, check_positive_int
from ._base import Decoder, InteractiveWidget, image_widget
from ._png import grid_png, grid_scale, png_size


class PriorSampler(InteractiveWidget):
    r"""A grid of decoded draws :math:`z_i\sim\mathcal N(0,I)`, reproducible by seed.

    The draws for seed ``s`` are
    ``torch.randn(n, L, generator=torch.Generator().manual_seed(s))``, decoded
    with ``model.decode`` and tiled row by row (``nrow`` per row). "new samples"
    increments the seed; typing a seed shows its draws.

    Args:
        model: a VAE (``decode`` and ``latent_size``).
        n: number of draws (>= 1).
        seed: starting seed (>= 0).
        nrow: images per row (default ``ceil(sqrt(n))``).
        scale, image_shape: as in :class:`~vi_helpers.widgets.LatentExplorer`
            (default scale: about 256 px for the grid).

    Attributes:
        seed_box (``BoundedIntText``), button (``Button``), image, seed (current).
    """

    def __init__(
        self,
        model,
        *,
        n: int = 16,
        seed: int = 0,
        nrow: int | None = None,
        scale: int | None = None,
        image_shape: tuple[int, int] | None = None,
    ):
        latent = check_decoder_model("model", model)
        self.n = check_positive_int("n", n)
        seed = check_nonnegative_int("seed", seed)
        if nrow is not None:
            nrow = check_positive_int("nrow", nrow)
        self.model = model
        self.latent_size = latent
        self.nrow = nrow
        self._decoder = Decoder(model, image_shape)
        self.image_shape = self._decoder.image_shape
        self.scale = grid_scale(self.n, nrow, self.image_shape, scale)
        self.seed_box = widgets.BoundedIntText(
            value=seed,
            min=0,
            max=2**31 - 1,
            description="seed",
            layout=widgets.Layout(width="180px"),
        )
        self.button = widgets.Button(
            description="new samples", layout=widgets.Layout(width="120px")
        )
        self.image = image_widget(self._grid(seed), "vi-prior-samples")
        w = png_size(self.image.value)[0]
        self.widget = widgets.VBox(
            [widgets.HBox([self.seed_box, self.button]), self.image],
            layout=widgets.Layout(width=f"{max(w, 320) + 20}px"),
        )
        self.widget.add_class("vi-prior-sampler")
        self.seed_box.observe(self._on_seed, names="value")
        self.button.on_click(self._on_click)

    @property
    def seed(self) -> int:
        """The seed of the draws shown."""
        return int(self.seed_box.value)

    def draws(self, seed: int) -> torch.Tensor:
        """The ``(n, L)`` codes shown for ``seed``."""
        gen = torch.Generator().manual_seed(check_nonnegative_int("seed", seed))
        return torch.randn(self.n, self.latent_size, generator=gen)

    def _grid(self, seed: int) -> bytes:
        pics = self._decoder.decode_images(self.draws(seed))
        return grid_png(pics, nrow=self.nrow, scale=self.scale)

    def _on_seed(self, change) -> None:
        self.image.value = self._grid(int(change["new"]))

    def _on_click(self, _button) -> None:
        self.seed_box.value = self.seed + 1

    def _repr_args(self) -> str:
        return f"n={self.n}, latent_size={self.latent_size}"

    def _static_rows(self):
        return [[self.image.value]]
