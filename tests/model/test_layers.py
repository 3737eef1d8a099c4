"""Edge-path pieces against plain autograd references: same values and gradients."""

import torch

from hampart.model.layers import EdgeGeometry, edge_frame_input, scatter_sum
from hampart.model.so2 import EdgeFrame


def _reference_edge_input(x, geom, scale):
    """The earlier code path: per-l ``[x_i, x_j] * scale`` kept by autograd, then rotated."""
    lmax = geom.frame.lmax
    sizes = [2 * l + 1 for l in range(lmax + 1)]
    xi = x.index_select(0, geom.receiver).split(sizes, dim=1)
    xj = x.index_select(0, geom.sender).split(sizes, dim=1)
    pieces = [torch.cat([a, b], dim=-1) * s[:, None] for a, b, s in zip(xi, xj, scale.unbind(1))]
    return geom.frame.rotate_in(pieces)


def test_edge_input_and_scatter_equal_plain_autograd():
    gen = torch.Generator().manual_seed(0)
    n, m, c, lmax, mmax = 7, 40, 3, 4, 2
    sender = torch.randint(n, (m,), generator=gen)
    receiver = (sender + 1 + torch.randint(n - 1, (m,), generator=gen)) % n
    vec = torch.randn(m, 3, generator=gen, dtype=torch.float64)
    geom = EdgeGeometry(sender, receiver, n, EdgeFrame(vec, lmax, mmax, torch.float64),
                        torch.zeros(m, 1, dtype=torch.float64), torch.ones(m, dtype=torch.float64))
    x = torch.randn(n, (lmax + 1) ** 2, c, generator=gen, dtype=torch.float64, requires_grad=True)
    scale = torch.randn(m, lmax + 1, 2 * c, generator=gen, dtype=torch.float64,
                        requires_grad=True)
    probe = torch.randn(m, (lmax + 1) ** 2, c, generator=gen, dtype=torch.float64)

    def run(edge_input, scatter):
        y = edge_input(x, geom, scale)  # (m, K_m, 2C)
        summed = scatter(y[:, :, :c] * y[:, :, c:] + probe[:, :y.shape[1]], receiver, n)
        loss = summed.square().sum()
        return [loss.detach(), *torch.autograd.grad(loss, [x, scale])]

    def index_add(src, index, size):
        return src.new_zeros((size,) + src.shape[1:]).index_add_(0, index, src)

    def recomputed(*args):
        return edge_frame_input(*args, recompute=True)

    new, old = run(recomputed, scatter_sum), run(_reference_edge_input, index_add)
    for a, b in zip(new, old):
        assert torch.allclose(a, b, rtol=1e-12, atol=1e-12)
    with torch.no_grad():  # without gradients nothing is recomputed: the plain path
        assert torch.equal(edge_frame_input(x, geom, scale), _reference_edge_input(x, geom, scale))
