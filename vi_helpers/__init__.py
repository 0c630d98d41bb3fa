"""vi_helpers: the tested code behind *Variational Inference, from KL to VAE*.

The seed API is importable from the top level::

    from vi_helpers import (VariationalDistribution, GenerativeModel,
                            VariationalAutoencoder, train_model)

Everything else lives in one module per concept (``kl``, ``elbo``,
``estimators``, ``models``, ``train``, ``data``, ``evaluate``, ``plots``,
``widgets``, ``checkpoint``, ...). Importing the package has no side effects:
no files are written, no global RNG or thread setting is touched.
"""

from .models import GenerativeModel, VariationalAutoencoder, VariationalDistribution
from .train import train_model  # noqa: E402

__all__ = [
    "VariationalDistribution",
    "GenerativeModel",
    "VariationalAutoencoder",
    "train_model",
]
__version__ = "0.1.0"
