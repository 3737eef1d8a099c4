"""Stoichiometry transfer (the paper's Table 4): train on one vacancy fraction, predict others.

    python examples/stoichiometry.py --train DIR [DIR+DIR ...] --test DIR [DIR ...] --out OUT
    python examples/stoichiometry.py --make TRAIN.xyz TEST.xyz --train-vacancies 0.0625 0+0.125 \\
        --test-vacancies 0 0.0625 0.125 --cores 2 --out OUT      # CP2K labels made here
    python examples/stoichiometry.py --quick --out OUT            # synthetic HfO_x, minutes

Vacancies are ghost atoms that keep the orbitals of the element they replace (CP2K's GHOST:
basis functions, no potential, no electrons), so a vacancy's rows stay in H and S and the
network sees it as a species of its own (``O_ghost``, the paper's "V"). ``--make`` makes them
with :func:`hampart.generate.structures.make_vacancies` (``hampart vacancies``: that fraction
of the ``--element`` sites of each structure, in place, unrelaxed) and labels each with CP2K
(``hampart label --dft cp2k``) into OUT/data/, reusing labels already there.

One model per training set and seed (a set is one dataset, or several joined by "+" that
train one model together: ``0+0.125`` is the training structure at both fractions; METIS
parts at halo L, the paper's augmented
partitions; same epochs, learning rate and seeds for all) predicts every test dataset.
Reported per (training set, test set), mean +- spread over seeds: node and edge MAE (mE_h),
the node MAE of the vacancies (ghosts) alone, the eigenvalue L1 error of H c = E S c as
predicted and without the common shift, and the gap error. A model never trained on a ghost
species is refused on data that has it (recorded as such, not as a number).

Writes OUT/stoichiometry.md (table), OUT/stoichiometry.json (machine, versions, settings,
seeds, datasets, every run) and OUT/stoichiometry.png. Finished runs with the same settings
are reused. --quick: synthetic HfO_x cells (hampart generate, no S: orthogonal basis), a small
model, few epochs, r_cut 5: the mechanics in minutes, not physics.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import replace
from pathlib import Path

from hampart.distributed.trainer import load_model
from hampart.errors import InputError
from hampart.experiments import (Cell, Settings, check_dataset, environment, judge, mean_spread,
                                 run_cell, run_script, write_json, write_text)

QUICK_MODEL = {"lmax": 4, "mmax": 2, "channels": 8, "ff_hidden": 16, "heads": 1}
METRICS = [("node_mae_mEh", "node MAE (mE_h)"), ("ghost_node_mae_mEh", "vacancy node MAE (mE_h)"),
           ("edge_mae_mEh", "edge MAE (mE_h)"), ("eig_l1_pct", "eigenvalue L1 (%)"),
           ("eig_l1_aligned_percent", "L1 without the common shift (%)"),
           ("gap_error_meV", "gap error (meV)")]


def composition(directory) -> dict:
    """Atoms per element, vacancies (ghosts keeping orbitals) per element, their fraction of
    the element's sites, and for Hf-O data x of HfO_x (O atoms per Hf)."""
    from ase.data import chemical_symbols

    from hampart.io.structure import read_structure

    numbers = read_structure(Path(directory) / "structure.xyz").numbers
    atoms = {chemical_symbols[z]: int((numbers == z).sum()) for z in sorted(set(numbers.tolist()))
             if z > 0}
    ghosts = {chemical_symbols[-z]: int((numbers == z).sum()) for z in set(numbers.tolist())
              if z < 0}
    out = {"atoms": atoms, "vacancies": ghosts,
           "vacancy_fraction": {el: n / (n + atoms.get(el, 0)) for el, n in ghosts.items()}}
    if atoms.get("Hf") and "O" in atoms:
        out["x"] = atoms["O"] / atoms["Hf"]
    return out


def set_name(train: str) -> str:
    """The name of a training set: its datasets' stoichiometries joined by " + "."""
    return " + ".join(label_name(composition(d)) for d in train.split("+"))


def label_name(c: dict) -> str:
    if "x" in c:
        return f"HfO{c['x']:.4g}"
    return " ".join(f"{el}{n}" for el, n in c["atoms"].items()) + "".join(
        f" V({el}){n}" for el, n in c["vacancies"].items())


def make_quick_data(out: Path) -> tuple[list[str], list[str]]:
    """Synthetic HfO_x (96 atoms, 10.5 A cells, interactions to 5 A): train at 6.25 % O
    vacancies, test at 0, 6.25 and 12.5 %."""
    from hampart.generate import label, make_structure
    from hampart.io.structure import write_structure

    def one(name, seed, fraction):
        d = out / "data" / name
        if not (d / "H.npz").is_file():
            d.parent.mkdir(parents=True, exist_ok=True)
            s = make_structure("hfo2", seed=seed, size=2, vacancies=fraction,
                               vacancy_orbitals=True)
            write_structure(out / "data" / f"{name}.xyz", s)
            label(out / "data" / f"{name}.xyz", d, interaction_radius=5.0, replace=True)
        return str(d)

    return ([one("train-v0.0625", 0, 0.0625)],
            [one(f"test-v{f:g}", 1, f) for f in (0.0, 0.0625, 0.125)])


def make_cp2k_data(a, out: Path) -> tuple[list[str], list[str]]:
    """Vacancies made in the two structures of ``--make`` and each labelled with CP2K (labels
    already in OUT/data are reused)."""
    from hampart.dft import CP2KSettings, label_cp2k
    from hampart.generate.structures import make_vacancies
    from hampart.io.structure import read_structure, write_structure

    settings = CP2KSettings(scf=a.scf)

    def one(kind, path, fraction):
        d = out / "data" / f"{kind}-v{fraction:g}"
        if (d / "H.npz").is_file() and (d / "S.npz").is_file():
            print(f"{d}: labelled before, reused")
            return str(d)
        s = make_vacancies(read_structure(path), a.element, fraction=fraction,
                           seed=a.vacancy_seed)
        d.parent.mkdir(parents=True, exist_ok=True)
        write_structure(out / "data" / f"{kind}-v{fraction:g}.xyz", s)
        print(f"{d}: {s.source}; labelling with CP2K on {a.cores} core(s)", flush=True)
        label_cp2k(s, d, settings, cores=a.cores, replace=True)
        return str(d)

    return (["+".join(one("train", a.make[0], float(f)) for f in group.split("+"))
             for group in a.train_vacancies],
            [one("test", a.make[1], f) for f in a.test_vacancies])


def judge_all(model, tests, images) -> dict:
    """Errors on each test dataset; a species the model was not trained on is recorded as
    refused with the reason."""
    out = {}
    for test in tests:
        try:
            r = judge(model, test, images=images)
        except InputError as error:
            out[test] = {"refused": str(error)}
            continue
        ghosts = {k: v for k, v in r["node_mae_by_species_mEh"].items() if k.endswith("_ghost")}
        r["ghost_node_mae_mEh"] = (sum(ghosts.values()) / len(ghosts)) if ghosts else None
        if "gap_eV" in r:
            r["gap_error_meV"] = 1e3 * (r["gap_eV"] - r["gap_ref_eV"])
        out[test] = r
    return out


def summarise(records: list[dict], trains, tests) -> list[dict]:
    rows = []
    for train in trains:
        for test in tests:
            rs = [r["tests"][test] for r in records if r["train"] == train]
            row = {"train": train, "test": test, "seeds": sorted(r["seed"] for r in records
                                                                 if r["train"] == train)}
            refused = [r["refused"] for r in rs if "refused" in r]
            if refused:
                row["refused"] = refused[0]
            else:
                for key, _ in METRICS:
                    row[key] = mean_spread([r.get(key) for r in rs])
            rows.append(row)
    return rows


def table(rows, names) -> str:
    head = "| trained on | tested on | seeds | " + " | ".join(m[1] for m in METRICS) + " |"
    lines = [head, "|---|---|---|" + "---|" * len(METRICS)]
    for row in rows:
        start = f"| {names[row['train']]} | {names[row['test']]} | " + ",".join(
            map(str, row["seeds"])) + " | "
        if "refused" in row:
            lines.append(start + "refused: " + row["refused"].replace("|", "/") + " |"
                         + " |" * (len(METRICS) - 1))
            continue
        cells = ["-" if not math.isfinite(row[k][0]) else f"{row[k][0]:.3g} +- {row[k][1]:.2g}"
                 for k, _ in METRICS]
        lines.append(start + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def figure(rows, names, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    shown = [("node_mae_mEh", "node MAE (mE_h)"), ("edge_mae_mEh", "edge MAE (mE_h)"),
             ("eig_l1_pct", "eigenvalue L1 (%)")]
    trains = list(dict.fromkeys(r["train"] for r in rows))
    tests = list(dict.fromkeys(r["test"] for r in rows))
    fig, axes = plt.subplots(1, len(shown), figsize=(3.6 * len(shown), 3.6))
    width = 0.8 / max(len(trains), 1)
    for ax, (key, label) in zip(axes, shown):
        for k, train in enumerate(trains):
            got = {r["test"]: r for r in rows if r["train"] == train and "refused" not in r}
            x = [i + k * width for i, t in enumerate(tests) if t in got]
            ax.bar(x, [got[t][key][0] for t in tests if t in got], width,
                   yerr=[got[t][key][1] for t in tests if t in got], capsize=3,
                   label=f"trained on {names[train]}")
        ax.set_xticks(np.arange(len(tests)) + 0.4 - width / 2)
        ax.set_xticklabels([set_name(t) for t in tests], fontsize=8)  # stoichiometry only
        ax.set_title(label, fontsize=9)
        ax.tick_params(labelsize=8)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(trains), fontsize=7, frameon=False)
    fig.suptitle("unseen structures by stoichiometry: mean +- std over seeds", fontsize=9)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", nargs="+", help="labelled training dataset(s), one model each; "
                   "DIR+DIR: one model trained on both")
    p.add_argument("--test", nargs="+", help="labelled unseen dataset(s) with S.npz")
    p.add_argument("--make", nargs=2, metavar=("TRAIN_STRUCTURE", "TEST_STRUCTURE"),
                   help="make vacancies in these structures and label them with CP2K")
    p.add_argument("--train-vacancies", nargs="+", default=["0.0625"],
                   dest="train_vacancies", help="--make: fractions of --element sites made "
                   "vacancies in the training structure, one model each (default 0.0625: "
                   "HfO2 -> HfO1.875); 0+0.125: one model on both")
    p.add_argument("--test-vacancies", type=float, nargs="+", default=[0.0, 0.0625, 0.125],
                   dest="test_vacancies", help="--make: the same for the test structure")
    p.add_argument("--element", default="O", help="--make: element whose sites become vacancies")
    p.add_argument("--vacancy-seed", type=int, default=0, dest="vacancy_seed")
    p.add_argument("--cores", type=int, default=2, help="--make: CP2K's MPI processes")
    p.add_argument("--scf", choices=("diag", "ot"), default="diag")
    p.add_argument("--out", required=True)
    p.add_argument("--quick", action="store_true",
                   help="synthetic HfO_x unless --train/--test, small model, few epochs, r_cut 5")
    p.add_argument("--parts", type=int, default=2, help="METIS parts (default 2)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, help="default 300, --quick 30")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--rcut", type=float, help="Angstrom; default 8, --quick 5")
    p.add_argument("--images", choices=("refuse", "minimum"), default="refuse",
                   help="minimum: cells under 2 r_cut, one edge per pair (hampart.graph)")
    p.add_argument("--device", default="cpu")
    a = p.parse_args(argv)
    out = Path(a.out)
    if a.train and a.test:
        trains = ["+".join(check_dataset(d) for d in t.split("+")) for t in a.train]  # before OUT
        tests = [check_dataset(d, need_overlap=True) for d in a.test]
    elif a.make or a.quick:
        out.mkdir(parents=True, exist_ok=True)
        trains, tests = make_cp2k_data(a, out) if a.make else make_quick_data(out)
    else:
        raise InputError("stoichiometry.py", "needs data", "give --train and --test, --make, "
                         "or --quick")
    out.mkdir(parents=True, exist_ok=True)
    model = QUICK_MODEL if a.quick else {}
    layers = int(model.get("layers", 1))
    cell = Cell("augmented", "metis", a.parts, layers)
    shared = Settings(train="", test=None, rcut=a.rcut or (5.0 if a.quick else 8.0),
                      epochs=a.epochs or (30 if a.quick else 300), lr=a.lr, model=model,
                      device=a.device, images=a.images)
    records = []
    for k, train in enumerate(trains):
        dirs = train.split("+")
        settings = replace(shared, train=dirs[0] if len(dirs) == 1 else tuple(dirs))
        experiment = out / f"train{k}-{'+'.join(Path(d).name for d in dirs)}"  # one set's runs
        for seed in a.seeds:
            r = run_cell(settings, cell, seed, experiment)
            net, _ = load_model(experiment / "runs" / f"{cell.parts_name}-seed{seed}" / "model.pt")
            r = {"train": train, "seed": seed, "epochs": settings.epochs,
                 "epoch_seconds_median": r["epoch_seconds_median"],
                 "train_mae_last_mEh": r["train_mae_mEh"][-1], "reused": r["reused"],
                 "tests": judge_all(net, tests, a.images)}
            records.append(r)
            for test, t in r["tests"].items():
                said = (t["refused"] if "refused" in t else
                        f"node {t['node_mae_mEh']:.3g} mEh, edge {t['edge_mae_mEh']:.3g} mEh, "
                        f"eigenvalue L1 {t['eig_l1_pct']:.3g} %")
                print(f"{experiment.name} seed {seed} -> {Path(test).name}: {said}", flush=True)
    names = {d: set_name(d) for d in trains + tests}
    if len(set(names.values())) < len(names):  # two datasets of one stoichiometry
        names = {d: f"{n} ({'+'.join(Path(x).name for x in d.split('+'))})"
                 for d, n in names.items()}
    rows = summarise(records, trains, tests)
    data = "synthetic (hampart generate)" if a.quick and not (a.train or a.make) else "as given"
    header = (f"Stoichiometry transfer: METIS {a.parts} parts, halo {layers}, r_cut "
              f"{shared.rcut} A, {shared.epochs} epochs, lr {a.lr}, seeds "
              f"{', '.join(map(str, a.seeds))}; data: {data}; mean +- standard deviation over "
              "seeds; vacancies are ghost atoms keeping the orbitals of the element they "
              "replace.\n\n")
    write_text(out / "stoichiometry.md", header + table(rows, names))
    write_json(out / "stoichiometry.json", {
        "experiment": "stoichiometry", "environment": environment(),
        "settings": {**vars(shared), "model": dict(shared.model), "train": trains,
                     "test": tests, "parts": a.parts, "halo": layers, "seeds": list(a.seeds),
                     "data": data},
        "datasets": {d: {"name": label_name(composition(d)), **composition(d), "meta": _meta(d)}
                     for d in dict.fromkeys(x for t in trains + tests for x in t.split("+"))},
        "names": names,
        "summary": rows, "runs": records})
    figure(rows, names, out / "stoichiometry.png")
    print((out / "stoichiometry.md").read_text())
    return rows


def _meta(directory) -> dict:
    path = Path(directory) / "meta.json"
    meta = json.loads(path.read_text()) if path.is_file() else {}
    keep = ("generator", "cp2k_version", "basis", "energy_hartree", "scf_steps", "electrons",
            "wall_seconds")
    return {k: meta[k] for k in keep if k in meta}


if __name__ == "__main__":
    run_script(main, __file__)
