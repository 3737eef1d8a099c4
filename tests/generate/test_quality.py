import json

import numpy as np
import pytest

from hampart.generate.amorphous import diamond_supercell
from hampart.generate.quality import (Reference, analyse, coordination, density, first_peak,
                                      radial_distribution, summary_line, write_report)
from hampart.io.structure import Structure

SI_BOND = 5.431 * np.sqrt(3) / 4  # 2.3517 A, nearest-neighbour distance in diamond Si


def test_perfect_diamond_has_coordination_four_and_first_peak_at_the_bond_length():
    crystal = diamond_supercell("Si", 3, 5.431)
    counts = coordination(crystal, 2.85)
    assert counts.shape == (216,) and (counts == 4).all()
    report = analyse(crystal, 2.85, "Si", "Si")
    assert report.mean_coordination == 4.0
    assert report.coordination_fractions == {"4": 1.0}
    assert abs(report.first_peak - 2.35) < 0.025 and abs(report.first_peak - SI_BOND) < 0.025
    assert abs(report.min_distance - SI_BOND) < 1e-9
    assert abs(report.density - 2.329) < 0.002  # c-Si, g/cm^3


def test_rdf_counts_neighbour_shells():
    """Integrating rho 4 pi r^2 g(r) over the first shell gives its 4 atoms, the second 12."""
    crystal = diamond_supercell("Si", 3, 5.431)
    r, g = radial_distribution(crystal, rmax=5.0, dr=0.05)
    rho = crystal.n_atoms / abs(np.linalg.det(crystal.cell))
    dr = r[1] - r[0]
    n = np.cumsum(rho * 4 * np.pi * r ** 2 * g * dr)  # g uses exact shell volumes: close enough
    assert abs(n[np.searchsorted(r, 3.0)] - 4) < 0.05
    assert abs(n[np.searchsorted(r, 4.2)] - 16) < 0.2  # second shell: 12 at a/sqrt(2) = 3.84 A


def test_random_points_have_g_near_one():
    rng = np.random.default_rng(0)
    L = 20.0
    s = Structure(np.full(2000, 14), rng.random((2000, 3)) * L, np.eye(3) * L, True)
    r, g = radial_distribution(s, rmax=8.0, dr=0.1)
    assert abs(g[(r > 3) & (r < 8)].mean() - 1.0) < 0.03


def test_partial_rdf_and_coordination_by_element():
    from ase.build import bulk

    rocksalt = bulk("NaCl", "rocksalt", a=5.64, cubic=True).repeat(3)
    s = Structure(rocksalt.numbers, rocksalt.positions, rocksalt.cell.array, True)
    assert (coordination(s, 3.0, "Na", "Cl") == 6).all()
    assert (coordination(s, 3.0, "Na", "Na") == 0).all()
    r, g = radial_distribution(s, 6.0, 0.05, "Na", "Cl")
    assert abs(first_peak(r, g, 3.5) - 2.82) < 0.03


def test_first_peak_interpolates_between_bins():
    r = np.arange(0.025, 4, 0.05)
    g = np.exp(-((r - 2.37) / 0.1) ** 2)
    assert abs(first_peak(r, g, 3.0) - 2.37) < 0.01


def test_density_of_germanium_crystal():
    assert abs(density(diamond_supercell("Ge", 2, 5.658)) - 5.32) < 0.01


def test_report_files_and_summary(tmp_path):
    ref = Reference(2.35, 3.88, 2.285, "Laaziri et al. 1999", "Laaziri 1999")
    report = analyse(diamond_supercell("Si", 2, 5.431), 2.85, "Si", "Si", ref)
    paths = write_report(report, tmp_path, "c-Si")
    data = json.loads(open(paths["json"]).read())
    assert data["mean_coordination"] == 4.0 and data["reference"]["coordination"] == 3.88
    assert len(data["r"]) == len(data["g"]) == 160
    with open(paths["png"], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    line = summary_line(report)
    assert "coordination 4.00" in line and "4-fold 100.0%" in line and "5-fold 0.0%" in line
    assert "\n" not in line


def test_rdf_refuses_non_periodic():
    s = Structure([14, 14], [[0, 0, 0], [2.3, 0, 0]], np.zeros((3, 3)), False)
    with pytest.raises(ValueError):
        radial_distribution(s)
