"""The partition picture: three projections, markers sized by the atom count, a legend with
each part's owned atoms and the selected part's halo."""

from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from hampart.errors import InputError  # noqa: E402
from hampart.partition import partition_arrays  # noqa: E402
from hampart.partition.plot import marker_area, partition_figure, plot_partitions  # noqa: E402

from partition_helpers import random_structure  # noqa: E402


@pytest.fixture(scope="module")
def parts():
    numbers, positions, cell = random_structure(96, seed=2)
    s = SimpleNamespace(numbers=numbers, positions=positions, cell=cell, pbc=np.ones(3, bool))
    arrays, info = partition_arrays(s, 4.0, "metis", 4, 1)
    return arrays, np.bincount(info["owner"], minlength=4)


def test_three_projections_and_a_legend_of_part_sizes(parts, tmp_path):
    arrays, sizes = parts
    fig = partition_figure(arrays, selected=1)
    try:
        panels = [ax for ax in fig.axes if ax.collections]
        assert [ax.get_title() for ax in panels] == ["xy projection", "xz projection",
                                                     "yz projection"]
        owners, rings = panels[0].collections
        assert len(owners.get_offsets()) == 96
        assert np.allclose(owners.get_sizes(), marker_area(96)) and marker_area(96) >= 50
        n_halo = int((arrays[1]["node_hop"] > 0).sum())
        assert len(rings.get_offsets()) == n_halo
        assert (rings.get_sizes() > owners.get_sizes()[0]).all()  # rings around the points
        texts = [t.get_text() for ax in fig.axes if ax.get_legend()
                 for t in ax.get_legend().get_texts()]
        assert texts == [f"part {k}: {sizes[k]} atoms" for k in range(4)] + \
            [f"halo of part 1: {n_halo} atoms"]
    finally:
        plt.close(fig)
    png = plot_partitions(arrays, tmp_path / "parts.png")
    assert png.read_bytes()[:4] == b"\x89PNG" and not list(tmp_path.glob("*.tmp.png"))


def test_marker_area_shrinks_with_atoms_and_stays_visible():
    areas = [marker_area(n) for n in (10, 96, 1_000, 10_000, 1_000_000)]
    assert areas == sorted(areas, reverse=True) and areas[-1] >= 1.0 and areas[0] <= 90.0


def test_bad_axes_and_part_refused(parts, tmp_path):
    arrays, _ = parts
    with pytest.raises(InputError, match="two of x, y, z"):
        plot_partitions(arrays, tmp_path / "p.png", axes=("xy", "xx"))
    with pytest.raises(InputError, match="not in 0..3"):
        plot_partitions(arrays, tmp_path / "p.png", selected=4)
    assert not list(tmp_path.iterdir())
    fig = partition_figure(arrays, axes="xz")  # one projection still works
    assert sum(1 for ax in fig.axes if ax.collections) == 1
    plt.close(fig)
