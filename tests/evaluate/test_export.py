"""Export to sisl: orbital phases, a TSHS round trip, and Gamma-point eigenvalues from sisl equal
to hampart's."""

import numpy as np
import pytest
import scipy.sparse as sp

sisl = pytest.importorskip("sisl")  # the `sisl` extra; CI installs it with `test`

from hampart.basis import load_basis  # noqa: E402
from hampart.cli import main  # noqa: E402
from hampart.errors import InputError  # noqa: E402
from hampart.evaluate.metrics import HARTREE_EV  # noqa: E402
from hampart.evaluate.spectrum import solve  # noqa: E402
from hampart.generate import (SyntheticParams, generate, make_structure,  # noqa: E402
                              synthetic_hamiltonian)
from hampart.io.csr import read_matrix, write_matrix  # noqa: E402
from hampart.evaluate.export import to_sisl, write_sisl  # noqa: E402


def test_sisl_harmonics_are_ours_times_minus_one_to_the_m():
    """sisl (SIESTA) lists m = -l..l like CP2K and us, with the Condon-Shortley phase (-1)^m."""
    import torch
    from e3nn import o3
    from sisl._core.orbital import _rspherical_harm  # the functions sisl's orbitals use

    from hampart.so3 import orbital_from_e3nn

    rng = np.random.default_rng(0)
    points = rng.normal(size=(40, 3))
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    theta, cos_phi = np.arctan2(points[:, 1], points[:, 0]), points[:, 2]
    for l in range(4):
        ours = o3.spherical_harmonics(l, torch.as_tensor(points), normalize=True).numpy() \
            @ orbital_from_e3nn(l).numpy().T
        theirs = np.stack([_rspherical_harm(l, m, theta, cos_phi) for m in range(-l, l + 1)], 1)
        phase = np.array([(-1.0) ** abs(m) for m in range(-l, l + 1)])
        assert np.abs(theirs - ours * phase).max() < 1e-12, l


@pytest.mark.parametrize("with_overlap", [True, False])
def test_tshs_round_trip_and_gamma_eigenvalues(tmp_path, synthetic_overlap, with_overlap):
    """HfO2 with a ghost (no orbitals) and Hf d shells: matrices come back equal (in eV, with
    sisl's phases), sisl's Gamma-point eigenvalues equal hampart's."""
    s = make_structure("hfo2", seed=1, size=(2, 2, 2), vacancies=0.1)
    assert (s.numbers == 0).any()
    basis = load_basis("SZV")
    H = synthetic_hamiltonian(s, basis, SyntheticParams(interaction_radius=4.0))
    S = synthetic_overlap(H) if with_overlap else None
    path = write_sisl(tmp_path / "hfo2.TSHS", H, S, s, basis)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hfo2.TSHS"]
    back = sisl.get_sile(path).read_hamiltonian()
    geometry = back.geometry
    assert geometry.na == int((s.numbers > 0).sum()) and back.no == H.shape[0]
    assert list(geometry.lattice.nsc) == [1, 1, 1]
    assert np.allclose(geometry.lattice.cell, s.cell)
    assert np.allclose(geometry.xyz, s.positions[s.numbers > 0])
    counts = basis.orbital_counts(s.numbers)
    assert np.array_equal(np.diff(geometry.firsto), counts[counts > 0])  # TSHS keeps no species
    # sisl's phase: (-1)^m on every orbital, built here from the shells, independently
    D = sp.diags(np.concatenate([[(-1.0) ** abs(m) for l in basis.shells_of(z)
                                  for m in range(-l, l + 1)] for z in s.numbers]))
    assert abs(back.Hk(format="csr") - HARTREE_EV * (D @ H @ D)).max() < 1e-12
    want_S = sp.identity(H.shape[0]) if S is None else D @ S @ D
    assert abs(back.Sk(format="csr") - want_S).max() < 1e-15
    ours = HARTREE_EV * solve(H, S).values
    assert np.abs(np.sort(back.eigh()) - ours).max() < 1e-9
    # the object itself carries l, m and zeta in CP2K's order: Hf s, s, p(y, z, x), d
    hf = to_sisl(H, S, s, basis).geometry.atoms[int(np.flatnonzero(s.numbers == 72)[0])]
    assert [(o.l, o.m, o.zeta) for o in hf.orbitals] == [
        (0, 0, 1), (0, 0, 2), (1, -1, 1), (1, 0, 1), (1, 1, 1),
        (2, -2, 1), (2, -1, 1), (2, 0, 1), (2, 1, 1), (2, 2, 1)]


def test_export_command(tmp_path, synthetic_overlap, capsys):
    from hampart.evaluate.commands import ExportConfig, run_export

    data = generate("si", seed=0, out=tmp_path / "si", size=(2, 2, 2), interaction_radius=4.0)
    H = read_matrix(tmp_path / "si" / "H.npz")
    write_matrix(tmp_path / "si" / "S.npz", synthetic_overlap(H))
    out = tmp_path / "si.TSHS"
    assert run_export(ExportConfig(f"{data}/H.npz", str(data), str(out), to="sisl")) == 0
    assert "with S" in capsys.readouterr().out
    back = sisl.get_sile(str(out)).read_hamiltonian()
    assert not back.orthogonal and back.no == H.shape[0]
    ours = HARTREE_EV * solve(H, read_matrix(tmp_path / "si" / "S.npz")).values
    assert np.abs(np.sort(back.eigh()) - ours).max() < 1e-9
    assert main(["export", f"{data}/H.npz", "--reference", str(data), "--out",
                 str(tmp_path / "si.nc")]) == 2
    assert "TSHS" in capsys.readouterr().err and not (tmp_path / "si.nc").exists()
    write_matrix(tmp_path / "S_small.npz", sp.identity(10, format="csr"))
    with pytest.raises(InputError, match="10 orbitals"):
        run_export(ExportConfig(f"{data}/H.npz", str(data), str(tmp_path / "x.TSHS"),
                                overlap=str(tmp_path / "S_small.npz")))
    assert not (tmp_path / "x.TSHS").exists()
