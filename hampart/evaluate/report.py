"""Comparison of a predicted Hamiltonian with a reference: element errors, eigenvalues, gap, DOS.

:func:`evaluate` is what ``hampart evaluate`` runs and returns its report as a dict. Units:
H in Hartree; element errors in mE_h (node, edge) and meV (total), eigenvalue errors in meV
and per cent (L1), energies in eV. Element errors cover the atom pairs closer than r_cut (the
pairs a model predicts); eigenvalues solve H c = E S c with the reference's S.
"""

from __future__ import annotations

import os

from ..errors import InputError

__all__ = ["evaluate"]


def _overlap(overlap, reference, meta: dict, size: int, reference_file: str):
    """(S or None, how it was found) for the reference; warns when eigenvalues of a
    non-orthogonal basis would be taken without S."""
    import warnings

    from ..errors import InputWarning
    from ..io.dataset import declared_orthogonal, find_overlap, read_overlap

    if overlap is not None and overlap.lower() == "identity":
        return None, "identity (orthogonal basis, --overlap identity)"
    path = overlap or find_overlap(reference)
    if path is not None:
        return read_overlap(path, size, reference_file), path
    if declared_orthogonal(meta):
        return None, "identity (orthogonal synthetic data)"
    warnings.warn(InputWarning(reference, "no overlap matrix S: eigenvalues of H alone are "
                               "not the band energies of a non-orthogonal basis such as CP2K's",
                               "put S.npz beside H in the dataset directory or pass --overlap "
                               "S.npz (--overlap identity if the basis is orthogonal)"),
                  stacklevel=3)
    return None, "none (H c = E c; not energies if the basis is non-orthogonal)"


def evaluate(prediction, reference, *, structure=None, basis=None, rcut: float = 8.0,
             images: str = "refuse", overlap=None, electrons: int | None = None,
             solver: str = "auto", eigs: int | None = None, sigma: float | None = None,
             plot=None, dos_width_eV: float = 0.1, progress=None) -> dict:
    """Compare a predicted H with a reference: the report ``hampart evaluate`` prints.

    ``prediction``: matrix file written by :func:`~hampart.evaluate.predict_file` (its stored
    structure must be the reference's). ``reference``: a dataset directory (its H.npz, and its
    S.npz as the overlap), or a bare matrix with ``structure`` and ``basis``. Element errors
    (node, edge MAE in mE_h, total in meV) over the pairs closer than ``rcut`` (Angstrom);
    eigenvalues of H c = E S c (``overlap``: an S file, ``"identity"``, or None for the
    dataset's S.npz) with ``solver`` dense / sparse / auto, ``eigs`` and ``sigma`` (Hartree)
    for the sparse window; HOMO, LUMO and gap from ``electrons`` (default: the reference's
    meta.json); ``plot``: a PNG of parities and DOS. ``progress(stage)`` is called as each
    long stage starts. Returns a dict (numbers in the units its keys name).
    """
    from ..graph import radius_graph
    from ..io.csr import read_matrix
    from ..io.dataset import HAMILTONIAN_FILE, check_matrix, load_dataset
    from .metrics import block_errors, node_errors_by_species
    from .predict import check_predicted_for

    prediction, reference = str(prediction), str(reference)
    stage = progress or (lambda name: None)
    if os.path.isdir(reference):
        ds = load_dataset(reference)
        reference_file = os.path.join(reference, HAMILTONIAN_FILE)
        if ds.hamiltonian is None:
            raise InputError(reference, f"dataset directory without {HAMILTONIAN_FILE}",
                             "give a dataset that has the reference H")
    else:
        if not structure or not basis:
            raise InputError(reference, "a bare matrix needs its structure and basis",
                             "pass --structure FILE --basis NAME|YAML, or a dataset directory")
        ds = load_dataset(structure, hamiltonian=reference, basis=basis)
        reference_file = reference
    atoms, ref = ds.structure, ds.hamiltonian
    pred = read_matrix(prediction)
    check_matrix(pred, atoms, ds.basis, prediction)
    check_predicted_for(prediction, atoms)
    S, overlap_note = _overlap(overlap, reference, ds.meta, ref.shape[0], reference_file)
    graph = radius_graph(atoms.positions, atoms.cell, atoms.pbc, rcut, images=images,
                         source=atoms.source)
    report = {"prediction": prediction, "reference": reference, "rcut": rcut}
    stage("element errors")
    report.update(block_errors(pred, ref, atoms.numbers, ds.basis, graph, overlap=S))
    # per species: a vacancy (ghost) or a minority element is seen apart from the bulk
    report["node_mae_by_species_mEh"] = node_errors_by_species(pred, ref, atoms.numbers, ds.basis)
    report["overlap"] = overlap_note
    window = {"electrons": electrons, "solver": solver, "eigs": eigs, "sigma": sigma}
    spectra = _spectra(window, reference, ds.meta, pred, ref, S, report, stage)
    if plot:
        stage("plot")
        _plot(plot, pred, ref, graph, atoms, ds.basis, spectra, dos_width_eV)
    return report


def _spectra(window, reference, meta, pred, ref, S, report, stage):
    """Eigenvalue and gap errors into ``report``; returns (predicted, reference) spectra and
    their (HOMO, LUMO) pairs, or None when they were skipped."""
    from .metrics import HARTREE_EV, eigenvalue_errors
    from .spectrum import DENSE_MAX_ORBITALS, band_edges, occupied_states, solve

    size = ref.shape[0]
    electrons, source = window["electrons"], "--electrons"
    if electrons is None and "electrons" in meta:
        electrons, source = meta["electrons"], os.path.join(reference, "meta.json")
    n_occ = occupied_states(electrons, size, source)
    method = window["solver"]
    if method == "auto":
        method = "dense" if size <= DENSE_MAX_ORBITALS and window["eigs"] is None else "sparse"
    if method == "sparse" and window["sigma"] is None and n_occ is None:
        report["eigenvalues"] = (f"skipped: {size} orbitals need the sparse solver, which looks "
                                 "around the gap (needs the electron count) or an energy: pass "
                                 "--electrons N or --sigma E, or --solver dense")
        return None
    eV = HARTREE_EV
    stage("eigenvalues of the reference")
    spec_r = solve(ref, S, method, window["eigs"], window["sigma"], n_occ)
    stage("eigenvalues of the prediction")
    # the prediction's window is placed around its own gap, then matched state by state
    try:
        spec_p = solve(pred, S, method, window["eigs"], window["sigma"], n_occ)
    except InputError:
        if method != "sparse" or window["sigma"] is not None:
            raise
        # no gap to place the predicted window in (degenerate HOMO/LUMO): the reference's
        spec_p = solve(pred, S, method, window["eigs"], spec_r.sigma, n_occ)
    if method == "sparse":
        report["eigenvalue_solver"] = (
            f"sparse shift-invert, {len(spec_r.values)} eigenvalues nearest "
            f"{eV * spec_r.sigma:.4f} eV (reference) and {eV * spec_p.sigma:.4f} eV (prediction)")
    else:
        report["eigenvalue_solver"] = "dense, all eigenvalues"
    report["eigenvalue_problem"] = "H c = E c" if S is None else "H c = E S c"
    report.update(eigenvalue_errors(spec_p, spec_r))
    report["electrons"] = None if electrons is None else int(electrons)
    edges_r, edges_p = band_edges(spec_r, n_occ), band_edges(spec_p, n_occ)
    if n_occ is None:
        report["gap"] = ("skipped: electron count unknown (pass --electrons N)" if electrons is None
                         else f"skipped: {electrons} electrons, odd: no closed-shell gap")
    elif edges_r is None or edges_p is None:
        report["gap"] = "skipped: HOMO or LUMO outside the solved window (raise --eigs)"
    else:
        for name, (homo, lumo) in (("reference", edges_r), ("predicted", edges_p)):
            report[f"{name}_homo_eV"] = eV * homo
            report[f"{name}_lumo_eV"] = eV * lumo
            report[f"{name}_gap_eV"] = eV * (lumo - homo)
        report["gap_error_meV"] = 1e3 * (report["predicted_gap_eV"] - report["reference_gap_eV"])
    return spec_p, spec_r, edges_p, edges_r


def _plot(path, pred, ref, graph, structure, basis, spectra, dos_width_eV) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from ..io.atomic import atomic_file
    from .metrics import HARTREE_EV, _aligned, sample_edge_elements, sample_node_elements
    from .spectrum import density_of_states

    fig, ax = plt.subplots(2, 2, figsize=(10, 8.5))
    for a, (x, y), title in (
            (ax[0, 0], sample_node_elements(ref, pred, structure.numbers, basis), "node blocks"),
            (ax[0, 1], sample_edge_elements(ref, pred, structure.numbers, basis, graph),
             "edge blocks")):
        mae = 1e3 * float(np.abs(y - x).mean()) if len(x) else float("nan")
        a.plot(1e3 * x, 1e3 * y, ".", ms=1.5, alpha=0.4, rasterized=True)
        a.set(xlabel="reference (mE$_h$)", ylabel="predicted (mE$_h$)",
              title=f"{title}: MAE {mae:.3g} mE$_h$ ({len(x):,} elements)")
        _diagonal(a)
    if spectra is None:
        for a in ax[1]:
            a.text(0.5, 0.5, "eigenvalues skipped", ha="center", va="center",
                   transform=a.transAxes)
            a.set_axis_off()
    else:
        spec_p, spec_r, edges_p, edges_r = spectra
        y, x = _aligned(spec_p, spec_r)
        x, y = HARTREE_EV * x, HARTREE_EV * y
        a = ax[1, 0]
        a.plot(x, y, ".", ms=2)
        a.set(xlabel="reference eigenvalue (eV)", ylabel="predicted eigenvalue (eV)",
              title=f"eigenvalues: MAE {1e3 * np.abs(y - x).mean():.3g} meV ({len(x):,})")
        _diagonal(a)
        a = ax[1, 1]
        lo, hi = min(x.min(), y.min()), max(x.max(), y.max())
        grid = np.linspace(lo - 5 * dos_width_eV, hi + 5 * dos_width_eV, 2000)
        a.plot(grid, density_of_states(x, grid, dos_width_eV), "k-", lw=1, label="reference")
        a.plot(grid, density_of_states(y, grid, dos_width_eV), "C3--", lw=1, label="predicted")
        for edges, style, who in ((edges_r, "k:", "reference"), (edges_p, "C3:", "predicted")):
            if edges is not None:
                mid = 0.5 * HARTREE_EV * (edges[0] + edges[1])
                gap = HARTREE_EV * (edges[1] - edges[0])
                a.axvline(mid, color=style[:-1], ls=":", lw=1,
                          label=f"{who} mid-gap {mid:.2f} eV (gap {gap:.3f} eV)")
        window = "" if spec_r.complete else " (solved window)"
        a.set(xlabel="energy (eV)", ylabel="states per eV",
              title=f"density of states{window}, Gaussian {dos_width_eV:g} eV")
        a.legend(fontsize=8, loc="upper left")
    for a in ax.flat:
        a.title.set_fontsize(10)
    fig.tight_layout()
    try:
        with atomic_file(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=120)
    finally:
        plt.close(fig)


def _diagonal(a) -> None:
    lo, hi = a.get_xlim()
    a.plot([lo, hi], [lo, hi], "k-", lw=0.5)
    a.set_xlim(lo, hi)
