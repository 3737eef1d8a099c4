"""Label a structure with CP2K: run it, read H and S, write a dataset directory.

``label_cp2k(structure, out, settings, cores)`` writes, atomically (nothing is left behind when
anything fails: CP2K runs inside the temporary directory that is renamed at the end)::

    out/structure.xyz   the structure, as given
    out/H.npz           Kohn-Sham H at Gamma, Hartree, CP2K's orbital order (= hampart's)
    out/S.npz           overlap S, same layout
    out/basis.yaml      shells per element, parsed from CP2K's basis file (CP2K's order)
    out/meta.json       CP2K version, input sha256, energy (Hartree), SCF converged and steps,
                        valence electrons, basis, potentials, cutoffs (Ry), wall seconds
    out/cp2k/           hampart.inp (the input) and hampart.log (CP2K's output)

CP2K is ``$HAMPART_CP2K`` or ``cp2k.psmp`` on the PATH, started with ``OMP_NUM_THREADS=1`` as
``mpirun -n N cp2k.psmp -i hampart.inp -o hampart.log`` (one core: without mpirun). The mpirun
must be the one of the MPI CP2K was built with (Debian: Open MPI, /usr/bin/mpirun.openmpi);
``$HAMPART_MPIRUN`` overrides the search. A foreign mpirun would start N unrelated serial
copies: the log's process count is checked and such a run refused.

:func:`read_cp2k_run` turns an existing CP2K run directory (``*-KS_SPIN_1-*.csr``,
``*-S_SPIN_1-*.csr`` and its log) into the matrices and facts, refusing spin-polarised or
k-point runs and unconverged SCF.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass

from ..errors import InputError
from ..io.atomic import atomic_directory, check_output_directory
from ..io.csr import read_csr, write_matrix
from ..io.dataset import BASIS_FILE, HAMILTONIAN_FILE, META_FILE, STRUCTURE_FILE, check_matrix
from ..io.structure import Structure, read_structure, write_structure
from .cp2k_input import PROJECT, CP2KSettings, make_input

__all__ = ["find_cp2k", "find_mpirun", "run_cp2k", "parse_log", "read_cp2k_run", "label_cp2k",
           "Cp2kRun", "OVERLAP_FILE", "INPUT_NAME", "LOG_NAME"]

OVERLAP_FILE = "S.npz"
INPUT_NAME, LOG_NAME = f"{PROJECT}.inp", f"{PROJECT}.log"

_INSTALL = ("install CP2K (Debian/Ubuntu: apt-get install cp2k) or set "
            "HAMPART_CP2K=/path/to/cp2k.psmp")


def find_cp2k() -> str:
    """Path of the CP2K executable: ``$HAMPART_CP2K``, else ``cp2k.psmp`` on the PATH."""
    given = os.environ.get("HAMPART_CP2K")
    if given:
        if not (os.path.isfile(given) and os.access(given, os.X_OK)):
            raise InputError(f"HAMPART_CP2K={given}", "is not an executable file", _INSTALL)
        return given
    found = shutil.which("cp2k.psmp") or shutil.which("cp2k.popt")
    if found is None:
        raise InputError("cp2k.psmp", "CP2K is not installed (not on the PATH)", _INSTALL)
    return found


def find_mpirun() -> str:
    """``$HAMPART_MPIRUN``, else Open MPI's mpirun (Debian's CP2K uses Open MPI), else the
    first ``mpirun`` on the PATH."""
    given = os.environ.get("HAMPART_MPIRUN")
    if given:
        return given
    for name in ("mpirun.openmpi", "mpirun", "mpiexec"):
        found = shutil.which(name)
        if found:
            return found
    raise InputError("mpirun", "not found", "install an MPI (apt-get install openmpi-bin), set "
                     "HAMPART_MPIRUN, or run on one core (--cores 1)")


_SCF_FIX = ("raise --max-scf, use --scf diag (smearing), or check the structure (overlapping "
            "atoms, wrong cell)")

# ---------------------------------------------------------------------------------- the log
_STEP = re.compile(r"^\s*(\d+)\s+\S.*?\s(\d+\.\d+(?:E[-+]\d+)?)\s+(-?\d+\.\d+)\s+"
                   r"(-?\d+\.\d+E[-+]\d+)\s*$")


@dataclass(frozen=True)
class Cp2kRun:
    """What a CP2K log says: version, processes, energy (Hartree), SCF converged / steps,
    electrons, whether it was spin-polarised or used k-points, and an error text if CP2K
    aborted."""

    version: str | None
    processes: int | None
    energy: float | None
    converged: bool
    scf_steps: int | None
    electrons: int | None
    spin_polarised: bool
    kpoints: bool
    error: str | None


def _abort_message(text: str) -> str | None:
    """The words of CP2K's [ABORT] box (its ascii art and frame dropped), or None."""
    lines = text.splitlines()
    start = next((k for k, line in enumerate(lines) if "[ABORT]" in line), None)
    if start is None:
        return None
    words = []
    for line in lines[start:]:
        if re.fullmatch(r"\s*\*{10,}\s*", line):
            break
        inner = line.strip().strip("*").replace("[ABORT]", "")
        inner = re.sub(r"^[\s\\/|_O]+", "", inner).strip()  # the figure at the left
        if inner:
            words.append(inner)
    return " ".join(words) or "CP2K aborted"


def parse_log(text: str) -> Cp2kRun:
    """Facts from CP2K's output text (2023.1 wording)."""
    def last(pattern, cast=str):
        found = re.findall(pattern, text, flags=re.MULTILINE)
        return cast(found[-1]) if found else None

    converged = last(r"\*\*\* SCF run converged in\s+(\d+) steps", int)
    not_converged = "SCF run NOT converged" in text or "Leaving inner SCF loop" in text and \
        converged is None
    error = _abort_message(text)
    return Cp2kRun(
        version=last(r"CP2K\| version string:\s+(.+?)\s*$"),
        processes=last(r"GLOBAL\| Total number of message passing processes\s+(\d+)", int),
        energy=last(r"ENERGY\| Total FORCE_EVAL \( QS \) energy \[a\.u\.\]:\s+(\S+)", float),
        converged=converged is not None and not not_converged,
        scf_steps=converged,
        electrons=last(r"^\s*Number of electrons:\s+(\d+)", int),
        spin_polarised=bool(re.search(r"DFT\| Spin unrestricted|DFT\| .*\bLSD\b|\bUKS\b\s*$",
                                      text, flags=re.MULTILINE)),
        kpoints=bool(re.search(r"^\s*BRILLOUIN\|", text, flags=re.MULTILINE)),
        error=error,
    )


def _progress(log_path, stop: threading.Event, max_scf: int, show: bool):
    """Follow the log while CP2K runs: one tqdm bar over SCF steps with energy and convergence."""
    if not show:
        return
    from tqdm import tqdm

    bar = tqdm(total=max_scf, desc="CP2K SCF", unit="step", leave=False)
    position = 0
    try:
        while not stop.is_set():
            if os.path.exists(log_path):
                with open(log_path, errors="replace") as f:
                    f.seek(position)
                    chunk = f.read()
                    cut = chunk.rfind("\n") + 1  # whole lines only; the rest next time
                    position += len(chunk[:cut].encode(errors="replace"))
                for line in chunk[:cut].splitlines():
                    m = _STEP.match(line)
                    if m:
                        bar.n = min(int(m.group(1)), max_scf)
                        bar.set_postfix(E=f"{float(m.group(3)):.8f}",
                                        conv=f"{float(m.group(2)):.1e}")
            stop.wait(0.5)
    finally:
        bar.close()


def run_cp2k(input_text: str, workdir, cores: int = 1, progress: bool = True,
             max_scf: int = 200, source: str = "structure") -> tuple[Cp2kRun, float]:
    """Run CP2K on ``input_text`` in ``workdir`` (``hampart.inp`` -> ``hampart.log``).

    Returns the parsed log and the wall seconds. InputError when CP2K is missing, stops with an
    error, runs on a different number of processes than asked (wrong mpirun), or its SCF
    does not converge; ``source`` (the structure) is named in the SCF message.
    """
    if int(cores) < 1:
        raise InputError(f"--cores {cores}", "must be at least 1", "give --cores 1 or more")
    exe = find_cp2k()
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, INPUT_NAME), "w") as f:
        f.write(input_text)
    command = [exe, "-i", INPUT_NAME, "-o", LOG_NAME]
    if cores > 1:
        command = [find_mpirun(), "-n", str(int(cores))] + command
    env = dict(os.environ, OMP_NUM_THREADS="1")
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # Open MPI refuses root unless told
        env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    log_path = os.path.join(workdir, LOG_NAME)
    stop = threading.Event()
    follower = threading.Thread(target=_progress, args=(log_path, stop, max_scf, progress),
                                daemon=True)
    t0 = time.perf_counter()
    follower.start()
    try:
        proc = subprocess.run(command, cwd=workdir, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, errors="replace")
    finally:
        stop.set()
        follower.join()
    seconds = time.perf_counter() - t0
    text = open(log_path, errors="replace").read() if os.path.exists(log_path) else ""
    run = parse_log(text)
    if "SCF run NOT converged" in text or (run.energy is not None and not run.converged):
        steps = [m for m in map(_STEP.match, text.splitlines()) if m]
        last = f" (step {steps[-1].group(1)}: convergence {float(steps[-1].group(2)):.2e})" \
            if steps else ""
        raise InputError(source, f"CP2K's SCF did not converge{last}; nothing written",
                         _SCF_FIX)
    if proc.returncode != 0 or run.error:
        why = run.error or " | ".join((proc.stdout.strip().splitlines() or ["no output"])[-3:])
        raise InputError(" ".join(command), f"CP2K stopped with status {proc.returncode}: {why}",
                         "fix the structure or the settings CP2K names (the run directory is "
                         "removed; write the input with hampart.dft.make_input to rerun it)")
    if cores > 1 and run.processes not in (None, cores):
        raise InputError(command[0], f"started {run.processes} CP2K process(es) per copy instead "
                         f"of one run on {cores}: this mpirun belongs to another MPI than CP2K's",
                         "set HAMPART_MPIRUN to the mpirun of CP2K's MPI (Debian: "
                         "/usr/bin/mpirun.openmpi)")
    return run, seconds


def _one(workdir, pattern, what):
    found = sorted(glob.glob(os.path.join(workdir, pattern)))
    if len(found) != 1:
        raise InputError(workdir, f"{len(found)} {what} files ({pattern}), expected one",
                         "run CP2K with RUN_TYPE ENERGY and KS_CSR_WRITE / S_CSR_WRITE")
    return found[0]


def _read_symmetrised(path, n_orbitals=None):
    """A full CP2K CSR matrix made exactly symmetric, ``(M + M^T) / 2``, and the largest
    ``|M_ij - M_ji|`` it had. CP2K stores each off-site block once (mirrored exactly) but
    integrates on-site blocks on the grid in full: those differ from their transpose by up to
    about the SCF tolerance. An asymmetry above 1e-4 (Hartree) means a broken file."""
    M = read_csr(path, n_orbitals=n_orbitals, triangle="full", check_symmetric=False)
    worst = float(abs(M - M.T).max()) if M.nnz else 0.0
    if worst > 1e-4:
        raise InputError(path, f"matrix is not symmetric (max |M_ij - M_ji| = {worst:.3g})",
                         "rerun CP2K; a Kohn-Sham or overlap matrix is symmetric")
    M = ((M + M.T) * 0.5).tocsr()
    M.sum_duplicates()
    return M, worst


def read_cp2k_run(workdir, log_name: str | None = None):
    """``(H, S, Cp2kRun, asymmetry)`` of a finished CP2K run directory: H and S made exactly
    symmetric, ``asymmetry`` = {"H": max |H_ij - H_ji|, "S": ...} as written (Hartree, -).
    Refuses spin-polarised output, k-points, and an SCF that did not converge (one line each)."""
    workdir = os.fspath(workdir)
    logs = [os.path.join(workdir, log_name)] if log_name else sorted(
        glob.glob(os.path.join(workdir, "*.log")) + glob.glob(os.path.join(workdir, "*.out")))
    if len(logs) != 1 or not os.path.isfile(logs[0]):
        raise InputError(workdir, f"found {len(logs)} CP2K log files (*.log, *.out)",
                         "keep exactly one CP2K output file beside the .csr files")
    run = parse_log(open(logs[0], errors="replace").read())
    if glob.glob(os.path.join(workdir, "*-KS_SPIN_2-*.csr")) or run.spin_polarised:
        raise InputError(logs[0], "spin-polarised run (UKS/LSD, KS_SPIN_2 matrices)",
                         "label with a spin-restricted run (UKS F, no MULTIPLICITY)")
    if run.kpoints:
        raise InputError(logs[0], "run with k-points: its CSR files are not the Gamma-point H",
                         "run at the Gamma point (no &KPOINTS section)")
    if not run.converged:
        raise InputError(logs[0], "the SCF did not converge"
                         + (f" ({run.error})" if run.error else ""),
                         _SCF_FIX)
    H, h_asym = _read_symmetrised(_one(workdir, "*-KS_SPIN_1-*.csr", "Kohn-Sham matrix"))
    S, s_asym = _read_symmetrised(_one(workdir, "*-S_SPIN_1-*.csr", "overlap matrix"),
                                  n_orbitals=H.shape[0])
    return H, S, run, {"H": h_asym, "S": s_asym}


def label_cp2k(structure, out, settings: CP2KSettings = CP2KSettings(), cores: int = 1,
               replace: bool = False, progress: bool = True) -> str:
    """Label ``structure`` (a path or a :class:`~hampart.io.structure.Structure`) with CP2K and
    write the dataset directory ``out`` (layout in the module docstring); returns its path."""
    check_output_directory(out, replace)  # refuse before the expensive part
    if int(cores) < 1:
        raise InputError(f"--cores {cores}", "must be at least 1", "give --cores 1 or more")
    if not isinstance(structure, Structure):
        structure = read_structure(structure)
    source = structure.source or "structure"
    made = make_input(structure.numbers, structure.positions, structure.cell, structure.pbc,
                      settings, source=source)
    find_cp2k()  # a missing CP2K is said before a temporary directory appears
    with atomic_directory(out, replace=replace) as tmp:
        workdir = os.path.join(tmp, "cp2k")
        run, seconds = run_cp2k(made.text, workdir, cores=cores, progress=progress,
                                max_scf=settings.max_scf, source=source)
        H, S, run, asymmetry = read_cp2k_run(workdir, LOG_NAME)
        if run.electrons is not None and run.electrons != made.electrons:
            raise InputError(source, f"CP2K counted {run.electrons} electrons, the potentials "
                             f"give {made.electrons}", "check the potential file (CP2K_DATA_DIR)")
        check_matrix(H, structure, made.basis, source=f"{workdir}: KS matrix")
        check_matrix(S, structure, made.basis, source=f"{workdir}: overlap matrix", overlap=True)
        for path in glob.glob(os.path.join(workdir, "*")):  # keep only the input and the log
            if os.path.basename(path) not in (INPUT_NAME, LOG_NAME):
                os.remove(path)
        write_structure(os.path.join(tmp, STRUCTURE_FILE), structure)
        write_matrix(os.path.join(tmp, HAMILTONIAN_FILE), H)
        write_matrix(os.path.join(tmp, OVERLAP_FILE), S)
        made.basis.to_yaml(os.path.join(tmp, BASIS_FILE))
        meta = {
            "generator": "cp2k", "cp2k_version": run.version, "cp2k_processes": run.processes,
            "input_sha256": made.sha256, "structure": structure.source,
            "atoms": structure.n_atoms, "orbitals": int(H.shape[0]),
            "energy_hartree": run.energy, "scf_converged": run.converged,
            "scf_steps": run.scf_steps, "electrons": made.electrons,
            "basis": made.basis.name, "potentials": made.potentials, "functional": "PBE",
            "kpoints": "gamma", "cutoff_ry": settings.cutoff, "rel_cutoff_ry": settings.rel_cutoff,
            "scf": settings.scf, "eps_scf": settings.eps_scf, "eps_default": settings.eps_default,
            "smearing_kelvin": settings.smearing_kelvin if settings.scf == "diag" else None,
            "cores": int(cores), "wall_seconds": round(seconds, 2),
            # largest |M_ij - M_ji| CP2K wrote (on-site blocks); the stored M is (M + M^T) / 2
            "symmetrised_max_asymmetry": asymmetry,
        }
        with open(os.path.join(tmp, META_FILE), "w") as f:  # last: marks a whole set
            json.dump(meta, f, indent=1)
            f.write("\n")
    return os.fspath(out)
