"""The equivariant Hamiltonian network (DESIGN.md §4) and its losses.

See :mod:`hampart.model.network` for shapes and conventions: e3nn basis (y polar) inside, padded
orbital-basis blocks outside.
"""

from .loss import block_loss, masked_sse
from .network import (OFFICIAL_HYPERPARAMETERS, OFFICIAL_OPTIONS, PAPER_HYPERPARAMETERS,
                      HamiltonianModel)

__all__ = ["HamiltonianModel", "PAPER_HYPERPARAMETERS", "OFFICIAL_OPTIONS",
           "OFFICIAL_HYPERPARAMETERS", "masked_sse", "block_loss"]
