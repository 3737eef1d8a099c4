"""Model files: save a trained :class:`~hampart.model.HamiltonianModel` and load it back.

A model file is ``torch.save`` of a plain dict (no pickled objects, read with
``torch.load(weights_only=True)``): ``{format: "hampart-model", version: 1, model: the
HamiltonianModel keyword arguments, basis: Basis.to_dict(), state_dict, info: free-form
strings (training summary...)}``. Written atomically (:func:`hampart.io.atomic_file`).

Options whose default changed after models were first saved (:data:`BEFORE_OPTIONS`) are
always written explicitly, as the saved model has them; a file that predates an option is
loaded with the value it was trained with, so a later default never changes an old model.
"""

from __future__ import annotations

import inspect

import torch

from ..errors import InputError
from ..io.atomic import atomic_file

__all__ = ["MODEL_FORMAT", "BEFORE_OPTIONS", "default_option", "save_model", "load_model",
           "load_state"]

MODEL_FORMAT = "hampart-model"

# Model options whose default changed after models were first saved: their value in files that
# predate them. Training writes every such option into the file explicitly.
BEFORE_OPTIONS = {"degree_embedding": False, "onsite_channels": 0, "onsite_invariants": False,
                  "onsite_products": False, "elements": None,
                  # options from the paper's code (hampart.model.OFFICIAL_OPTIONS), off before
                  "edge_embedding": False, "message_edges": False, "radial_species": False,
                  "attention_norm": False, "value_channels": None, "radial_stop": None,
                  "radial_width": 1.0}


def default_option(key: str):
    """Today's default of the :class:`~hampart.model.HamiltonianModel` argument ``key``."""
    from .network import HamiltonianModel

    return inspect.signature(HamiltonianModel.__init__).parameters[key].default


def save_model(path, model, model_kwargs, basis, extra=None) -> None:
    """Atomic: ``{format, version, model (kwargs), basis, state_dict, info}``."""
    # options whose default has changed are written as the model has them, whatever was given
    built = {"degree_embedding": any(b.degree is not None for b in model.message),
             "onsite_channels": model.onsite.channels if model.onsite is not None else 0,
             "onsite_invariants": bool(model.onsite is not None and model.onsite.n_invariants),
             "onsite_products": bool(model.onsite is not None and model.onsite.n_products),
             "radial_species": model.radial_species, "elements": list(model.elements)}
    payload = {"format": MODEL_FORMAT, "version": 1, "model": {**dict(model_kwargs), **built},
               "basis": basis.to_dict(), "state_dict": model.state_dict(),
               "info": dict(extra or {})}
    with atomic_file(path) as tmp:
        torch.save(payload, tmp)


def load_model(path, device="cpu", dtype=torch.float32):
    """(model, payload) from a file written by :func:`save_model` (never unpickles)."""
    from ..basis import Basis
    from .network import HamiltonianModel

    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise InputError(path, "no such model file", "give the model.pt written by hampart train")
    except Exception as e:  # not a torch file, or one holding arbitrary objects
        raise InputError(path, f"not a hampart model file ({type(e).__name__})",
                         "give the model.pt written by hampart train") from None
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise InputError(path, "not a hampart model file", "give the model.pt written by hampart train")
    basis = Basis.from_dict(payload["basis"], source=str(path))
    # options added later keep, for files that do not name them, the value those were trained with
    kwargs = {**BEFORE_OPTIONS, **payload["model"]}
    model = HamiltonianModel(basis=basis, **kwargs).to(device=device, dtype=dtype)
    load_state(model, payload["state_dict"], path)
    return model, payload


def load_state(model, state_dict, path) -> None:
    """``model.load_state_dict`` that accepts files from before head scales existed (their
    scale is 1, which is what such models were trained with) and names the file otherwise."""
    missing = [k for k in model.state_dict() if k not in state_dict]
    if all(k.endswith(".scale") for k in missing):
        state_dict = {**{k: model.state_dict()[k] for k in missing}, **state_dict}
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as e:
        raise InputError(path, f"weights do not fit the model it describes ({str(e)[:200]})",
                         "give a file written by hampart train, unedited") from None
