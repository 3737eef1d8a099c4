"""hampart.dft.library: CP2K basis and potential files parsed into shells and valences."""

import os

import pytest

from hampart.basis import builtin_basis
from hampart.dft.library import (basis_for, basis_shells, potential_for, read_basis_entries,
                                 read_potential_entries)
from hampart.errors import InputError

BASIS_FILE = "/usr/share/cp2k/BASIS_MOLOPT"
POTENTIAL_FILE = "/usr/share/cp2k/GTH_POTENTIALS"
needs_cp2k_data = pytest.mark.skipif(not os.path.isfile(BASIS_FILE),
                                     reason="CP2K's data files (Debian cp2k-data) not installed")

# A two-element excerpt in CP2K's format (coefficients shortened), with a comment, a set line
# carrying shell labels as some files do, and a multi-set entry.
MINI_BASIS = """# comment line
 Si SZV-MOLOPT-SR-GTH SZV-MOLOPT-SR-GTH-q4
 1
 2 0 1 2 1 1
      1.25  0.22  0.06
      0.50 -0.02 -0.21
 Hf DZVP-MOLOPT-SR-GTH DZVP-MOLOPT-SR-GTH-q12
 1
 2 0 3 2 3 2 2 1     5s 6s 7s 5p 6p 5d 6d 4f
      2.6  0.7  0.1 -0.8 -0.3  0.2 -0.04 -0.5  0.1
      2.5 -0.1  0.1  0.5  0.2 -0.1  0.04  0.1 -0.1
 O  TWOSET
 2
 2 1 1 1 1
      1.0 1.0
 2 0 0 1 2
      3.0 1.0 0.5
"""
MINI_POTENTIAL = """#
Si GTH-PBE-q4 GTH-PBE
    2    2
     0.44  1  -6.26
Pt GTH-PBE-q10
    1    0    9
     0.61  1  11.3
#
Pt GTH-PBE-q18 GTH-PBE
    3    6    9
     0.50  2  8.81  -0.29
"""


@pytest.fixture
def files(tmp_path):
    (tmp_path / "BASIS").write_text(MINI_BASIS)
    (tmp_path / "POT").write_text(MINI_POTENTIAL)
    return tmp_path / "BASIS", tmp_path / "POT"


def test_shells_in_cp2k_order_from_the_set_lines(files):
    basis, _ = files
    assert basis_for("Si", "SZV-MOLOPT-SR-GTH", basis).shells == (0, 1)
    hf = basis_for("Hf", "DZVP-MOLOPT-SR-GTH-q12", basis)  # found by its alias too
    assert hf.shells == (0, 0, 0, 1, 1, 2, 2, 3) and hf.q == 12
    two = basis_for("O", "TWOSET", basis)  # set by set: the p set first, then the s set
    assert two.shells == (1, 0, 0) and two.q is None
    assert len(read_basis_entries(basis)) == 3


def test_potential_valence_matches_the_basis_q(files):
    _, pot = files
    assert potential_for("Pt", 18, pot).names[0] == "GTH-PBE-q18"
    assert potential_for("Pt", 10, pot).q == 10
    assert potential_for("Pt", None, pot).q == 18  # the one aliased plain GTH-PBE
    assert potential_for("Si", 4, pot).q == 4
    assert {e.q for e in read_potential_entries(pot)} == {4, 10, 18}


def test_missing_basis_or_potential_names_element_and_file(files):
    basis, pot = files
    with pytest.raises(InputError, match=r"BASIS: no basis set 'SZV-MOLOPT-SR-GTH' for Hf "
                                         r"\(it has DZVP-MOLOPT-SR-GTH\)"):
        basis_for("Hf", "SZV-MOLOPT-SR-GTH", basis)
    with pytest.raises(InputError, match="no basis set at all for this element"):
        basis_for("Ge", "SZV-MOLOPT-SR-GTH", basis)
    with pytest.raises(InputError, match=r"POT: no pseudopotential GTH-PBE-q12 for Pt"):
        potential_for("Pt", 12, pot)
    with pytest.raises(InputError, match="cannot read CP2K data file"):
        basis_for("Si", "SZV", files[0].parent / "absent")


def test_malformed_entry_names_the_line(tmp_path):
    (tmp_path / "B").write_text(" Si SZV\n 1\n 2 0 x 1 1\n")
    with pytest.raises(InputError, match="line 1: basis entry 'Si SZV' is malformed"):
        read_basis_entries(tmp_path / "B")


@needs_cp2k_data
@pytest.mark.parametrize("name", ["SZV", "DZVP"])
def test_builtin_bases_equal_cp2ks_file(name):
    builtin = builtin_basis(name)
    parsed = basis_shells(f"{name}-MOLOPT-SR-GTH", builtin.elements, BASIS_FILE)
    assert parsed.shells == builtin.shells


@needs_cp2k_data
def test_real_files_valences():
    q = {el: potential_for(el, basis_for(el, "SZV-MOLOPT-SR-GTH", BASIS_FILE).q,
                           POTENTIAL_FILE).q for el in ("H", "O", "Si", "Ge", "Sb", "Te", "Hf",
                                                        "Pt")}
    assert q == {"H": 1, "O": 6, "Si": 4, "Ge": 4, "Sb": 5, "Te": 6, "Hf": 12, "Pt": 18}
