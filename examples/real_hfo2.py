"""Real amorphous HfO2 end to end: examples/real_si.py with ``--material hfo2``.

The same stages and results.json (see real_si.py): ``hampart amorphize hfo2`` (rigid-ion
melt-quench at 9.2 g/cm^3, 96 atoms) for a training and an unseen test cell, ``hampart label
--dft cp2k`` (PBE, SZV-MOLOPT-SR-GTH), ``hampart slice --images minimum`` (the 10.7 Angstrom cell
is under 2 r_cut), ``mpirun -n RANKS hampart train``, ``hampart predict`` and ``evaluate``.

    python examples/real_hfo2.py OUT                     # 2 cores: see docs/real-data.md
    python examples/real_hfo2.py OUT --train-data DIR --test-data DIR   # skip MD and CP2K
    python examples/real_hfo2.py table OUT/results.json  # the Markdown table of a run
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import real_si  # noqa: E402  (the shared driver, beside this file)

if __name__ == "__main__":
    sys.exit(real_si.main(material="hfo2"))
