"""hampart.dft.cp2k_input: the CP2K input text (kinds, ghosts, cell, SCF) without running CP2K."""

import os
import re

import numpy as np
import pytest

from hampart.dft import CP2KSettings, make_input
from hampart.dft.cp2k_input import cp2k_basis_name
from hampart.errors import InputError

pytestmark = pytest.mark.skipif(not os.path.isfile("/usr/share/cp2k/BASIS_MOLOPT"),
                                reason="CP2K's data files (Debian cp2k-data) not installed")

CELL = np.diag([10.0, 11.0, 12.0])


def hfo2(numbers=(72, 8, 8, -8)):
    pos = np.array([[5.0, 5.0, 5.0], [6.7, 5.1, 5.2], [3.3, 5.2, 4.9], [5.1, 6.9, 5.0]])
    return np.array(numbers), pos[:len(numbers)]


def section(text, name):
    m = re.search(rf"&{name}\b.*?&END {name}", text, flags=re.DOTALL)
    assert m, name
    return m.group(0)


def test_kinds_potentials_by_valence_and_ghost_kind():
    numbers, pos = hfo2()
    made = make_input(numbers, pos, CELL, True)
    t = made.text
    assert "&KIND Hf\n      ELEMENT Hf\n      BASIS_SET SZV-MOLOPT-SR-GTH\n" \
           "      POTENTIAL GTH-PBE-q12" in t
    oxygen = re.search(r"&KIND O\n.*?&END KIND", t, flags=re.DOTALL).group(0)
    assert "POTENTIAL GTH-PBE-q6" in oxygen
    ghost = re.search(r"&KIND O_ghost.*?&END KIND", t, flags=re.DOTALL).group(0)
    assert "ELEMENT O" in ghost and "BASIS_SET SZV-MOLOPT-SR-GTH" in ghost
    assert "GHOST" in ghost and "POTENTIAL" not in ghost
    coords = section(t, "COORD").splitlines()[1:-1]
    assert [c.split()[0] for c in coords] == ["Hf", "O", "O", "O_ghost"]
    assert np.array_equal(np.array([[float(x) for x in c.split()[1:]] for c in coords]), pos)
    # electrons from the potentials of real atoms only; orbitals include the ghost's
    assert made.electrons == 12 + 6 + 6
    assert made.n_orbitals == 10 + 4 + 4 + 4
    assert made.basis.shells == {72: (0, 0, 1, 2), 8: (0, 1)}
    assert made.potentials == {"Hf": "GTH-PBE-q12", "O": "GTH-PBE-q6"}
    assert len(made.sha256) == 64


def test_ghost_of_an_element_without_real_atoms_needs_no_potential():
    made = make_input([14, -8], [[0, 0, 0], [2.0, 0, 0]], CELL, True)
    assert "&KIND O_ghost" in made.text and "&KIND O\n" not in made.text
    assert made.electrons == 4 and made.potentials == {"Si": "GTH-PBE-q4"}


def test_cell_matrices_and_periodicity():
    numbers, pos = hfo2((72, 8, 8))
    cell = np.array([[10.0, 0, 0], [1.5, 11.0, 0], [0.3, -0.2, 12.0]])
    t = make_input(numbers, pos, cell, True).text
    c = section(t, "CELL")
    rows = [[float(x) for x in line.split()[1:]] for line in c.splitlines()
            if line.split()[0] in "ABC"]
    assert np.array_equal(np.array(rows), cell) and "PERIODIC XYZ" in c
    assert "&POISSON" not in t
    m = make_input(numbers, pos, cell, False).text
    assert "PERIODIC NONE" in section(m, "CELL")
    assert "POISSON_SOLVER WAVELET" in section(m, "POISSON")


def test_gamma_pbe_full_csr_and_no_spin():
    numbers, pos = hfo2((72, 8, 8))
    t = make_input(numbers, pos, CELL, True, CP2KSettings(cutoff=400, rel_cutoff=60)).text
    assert "&KPOINTS" not in t and "UKS F" in t and "&XC_FUNCTIONAL PBE" in t
    for name in ("KS_CSR_WRITE", "S_CSR_WRITE"):
        s = section(t, name)
        assert "UPPER_TRIANGULAR F" in s and "THRESHOLD 0.0" in s and "REAL_SPACE F" in s
    mgrid = section(t, "MGRID")
    assert "CUTOFF 400" in mgrid and "REL_CUTOFF 60" in mgrid


def test_scf_diag_default_and_ot_option():
    numbers, pos = hfo2((72, 8, 8))
    diag = section(make_input(numbers, pos, CELL, True).text, "SCF")
    assert "ALGORITHM STANDARD" in diag and "BROYDEN_MIXING" in diag
    assert "METHOD FERMI_DIRAC" in diag and "ELECTRONIC_TEMPERATURE [K] 300" in diag
    added = int(re.search(r"ADDED_MOS (\d+)", diag).group(1))
    assert 0 < added <= 18 - 12  # 12 occupied of 18 orbitals
    ot = section(make_input(numbers, pos, CELL, True, CP2KSettings(scf="ot")).text, "SCF")
    assert "&OT ON" in ot and "SMEAR" not in ot and "DIAGONALIZATION" not in ot


def test_dzvp_basis_by_short_name():
    assert cp2k_basis_name("dzvp") == "DZVP-MOLOPT-SR-GTH"
    assert cp2k_basis_name("TZVP-MOLOPT-GTH") == "TZVP-MOLOPT-GTH"
    numbers, pos = hfo2()
    made = make_input(numbers, pos, CELL, True, CP2KSettings(basis="DZVP-MOLOPT-SR-GTH"))
    assert made.basis.shells[72] == (0, 0, 0, 1, 1, 2, 2, 3)
    assert made.n_orbitals == 26 + 3 * 13


@pytest.mark.parametrize("numbers, pbc, cell, settings, message", [
    ([72, 0], True, CELL, CP2KSettings(), "atom 1 is a ghost without orbitals"),
    ([72, 8], [True, True, False], CELL, CP2KSettings(), "periodic along"),
    ([72, 8], True, np.zeros((3, 3)), CP2KSettings(), "has no cell"),
    ([72, 8], True, CELL, CP2KSettings(basis="NOPE"), "no basis set 'NOPE' for O"),
    ([72, 8], True, CELL, CP2KSettings(scf="cg"), "unknown SCF method"),
    ([72, 8], True, CELL, CP2KSettings(cutoff=-1), "cutoffs must be positive"),
    ([1, 8], True, CELL, CP2KSettings(scf="ot"), "7 valence electrons"),
])
def test_refusals(numbers, pbc, cell, settings, message):
    with pytest.raises(InputError, match=re.escape(message)):
        make_input(numbers, [[5.0, 5, 5], [6.5, 5, 5]], cell, pbc, settings, source="s.xyz")
