"""Weight interpolation of a meta-pretrained pipeline with the pipeline it
started from (WiSE-FT, Wortsman et al. 2022): the shipped weights are
(1 - alpha) * start + alpha * trained, with alpha and the checkpoint chosen
on a meta-dev from a grid that includes 0 (alpha = 0: the starting weights,
meta-pretraining did not help on the meta-dev). A choice whose gain over
alpha 0 is within the meta-dev's own noise (its paired bootstrap interval
reaches 0) ships alpha 0, and says so."""

from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy
import spacy
import torch
from spacy.language import Language
from thinc.api import Model

from .errors import Errors
from .evaluation import find_component
from .meta_dev import MetaDevTask, meta_dev_accuracy, paired_bootstrap

DEFAULT_GRID = (0.0, 0.25, 0.5, 0.75, 1.0)
# where `spacy train` saves the checkpoints it keeps
CHECKPOINTS = ("model-best", "model-last")
META_KEY = "spacy_metalearn"

Weights = Dict[str, numpy.ndarray]


def parse_grid(text: str) -> List[float]:
    """'0,0.5,1' -> [0.0, 0.5, 1.0]: distinct numbers in [0, 1], sorted."""
    try:
        values = sorted({float(value) for value in text.split(",") if value.strip()})
    except ValueError:
        values = []
    if not values or not all(0.0 <= value <= 1.0 for value in values):
        raise ValueError(
            Errors.E019.format(
                setting="--grid", requirement="comma-separated numbers in [0, 1]", value=text
            )
        )
    return values


def find_checkpoints(training: Path) -> Dict[str, Path]:
    """The checkpoints of a `spacy train` output folder (model-best and
    model-last, where present), or the pipeline folder itself."""
    if not training.is_dir():
        raise ValueError(Errors.E047.format(path=training))
    found = {name: training / name for name in CHECKPOINTS if (training / name).is_dir()}
    return found or {training.name: training}


def model_weights(model: Model) -> Weights:
    """A float32 copy of every weight of a thinc model: its layers' params and
    the floating-point state of the PyTorch modules inside its shims, keyed
    by the layer's position and name."""
    weights: Weights = {}
    for i, layer in enumerate(model.walk()):
        for name in layer.param_names:
            if layer.has_param(name):
                value = model.ops.to_numpy(layer.get_param(name))
                weights[f"{i}:{layer.name}:{name}"] = numpy.array(value, dtype="float32")
        for j, shim in enumerate(layer.shims):
            for key, tensor in _torch_state(shim).items():
                value = tensor.detach().cpu().numpy()
                weights[f"{i}:{layer.name}:shim{j}:{key}"] = numpy.array(value, dtype="float32")
    return weights


def set_model_weights(model: Model, weights: Weights) -> None:
    """Put weights of model_weights()'s form into `model`, in place (the
    PyTorch tensors are copied into, so their version counts change and an
    ONNX Runtime export of the old weights is redone)."""
    for i, layer in enumerate(model.walk()):
        for name in layer.param_names:
            key = f"{i}:{layer.name}:{name}"
            if key in weights:
                old = layer.get_param(name)
                layer.set_param(name, model.ops.asarray(weights[key].astype(old.dtype)))
        for j, shim in enumerate(layer.shims):
            with torch.no_grad():
                for key, tensor in _torch_state(shim).items():
                    value = weights[f"{i}:{layer.name}:shim{j}:{key}"]
                    tensor.copy_(torch.from_numpy(value).to(tensor.dtype))


def _torch_state(shim) -> Dict[str, torch.Tensor]:
    module = getattr(shim, "_model", None)
    if not isinstance(module, torch.nn.Module):
        return {}
    return {key: t for key, t in module.state_dict().items() if t.is_floating_point()}


def check_same_weights(start: Weights, trained: Weights) -> None:
    """The start and the trained weights must be the same weights: the same
    names and shapes (E050 names the first that differs)."""
    for key in sorted(set(start) | set(trained)):
        if key not in start or key not in trained:
            raise ValueError(Errors.E050.format(key=key, problem="is missing from one of them"))
        if start[key].shape != trained[key].shape:
            problem = f"has shape {start[key].shape} at the start, {trained[key].shape} trained"
            raise ValueError(Errors.E050.format(key=key, problem=problem))


def interpolate(start: Weights, trained: Weights, alpha: float) -> Weights:
    """(1 - alpha) * start + alpha * trained, weight by weight (in float64)."""
    return {
        key: ((1.0 - alpha) * start[key].astype("float64") + alpha * trained[key]).astype("float32")
        for key in trained
    }


def start_pipeline(nlp: Language) -> Language:
    """The pipeline that training started from: `nlp`'s config, built and
    initialized afresh (the transformer's weights loaded from its name)."""
    start = spacy.util.load_model_from_config(nlp.config, auto_fill=True, validate=True)
    start.initialize()
    return start


def choose_interpolation(
    checkpoints: Dict[str, Language],
    start: Language,
    tasks: Sequence[MetaDevTask],
    grid: Sequence[float],
) -> Tuple[Dict[str, Any], Weights]:
    """Score every (checkpoint, alpha) of the grid on the meta-dev tasks (the
    checkpoints' pipelines are adapted to them, their weights changed) and
    return the scores with the chosen weights. alpha = 0 is the start for
    every checkpoint and is scored once; ties go to the smaller alpha (the
    nearer to the start), then to the checkpoint listed first. The best
    row's gain over alpha = 0 is bootstrapped over the meta-dev's queries
    (paired_bootstrap): where its 95% interval reaches 0, the gain is within
    the meta-dev's noise and alpha = 0 is chosen.

    RETURNS (Tuple[Dict[str, Any], Weights]): {"grid": [{"checkpoint",
        "alpha", "accuracy", "tasks"}...], "best": the grid's best row,
        "bootstrap": {"gain", "low", "high"} of the best over alpha = 0,
        "within_noise": bool, "chosen": {...}} and the weights of the chosen
        checkpoint's model at the chosen alpha.
    """
    start_weights = model_weights(find_component(start).model)
    trained_weights = {}
    for name, nlp in checkpoints.items():
        trained_weights[name] = model_weights(find_component(nlp).model)
        check_same_weights(start_weights, trained_weights[name])
    rows: List[Dict[str, Any]] = []
    at_start: Optional[Dict[str, Any]] = None
    for name, nlp in checkpoints.items():
        model = find_component(nlp).model
        for alpha in grid:
            if alpha == 0.0 and at_start is not None:
                rows.append({**at_start, "checkpoint": name})
                continue
            set_model_weights(model, interpolate(start_weights, trained_weights[name], alpha))
            scores = meta_dev_accuracy(nlp, tasks)
            row = {"checkpoint": name, "alpha": alpha, **scores}
            if alpha == 0.0:
                at_start = row
            rows.append(row)
    best = max(
        range(len(rows)), key=lambda i: (round(rows[i]["accuracy"], 10), -rows[i]["alpha"], -i)
    )
    assert at_start is not None  # the grid holds 0
    bootstrap = paired_bootstrap(rows[best]["correct"], at_start["correct"])
    within_noise = rows[best]["alpha"] > 0.0 and bootstrap["low"] <= 0.0
    chosen = rows[0] if within_noise else rows[best]
    for row in rows:
        row.pop("correct")
    weights = interpolate(start_weights, trained_weights[chosen["checkpoint"]], chosen["alpha"])
    result = {"grid": rows, "best": rows[best], "bootstrap": bootstrap,
              "within_noise": within_noise, "chosen": chosen}  # fmt: skip
    return result, weights
