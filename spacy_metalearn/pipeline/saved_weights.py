"""Checks on the weights a saved pipeline brings: they must fit the model's
architecture and be finite float32, so that a damaged or foreign model file
is refused with the file named, never half loaded."""

import warnings
from typing import Optional

import torch
from thinc.api import Model

from ..models.metric import check_metric

# what spacy-transformers warns when saved weights do not fit the transformer,
# before loading them with strict=False (leaving some weights at random)
PARTIAL_WEIGHTS_WARNING = "Error loading saved torch state_dict"


def load_model_strictly(model: Model, model_bytes: bytes) -> None:
    """model.from_bytes, refusing weights that do not fit (which
    spacy-transformers would load partially, with a warning)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.from_bytes(model_bytes)
    for warning in caught:
        if PARTIAL_WEIGHTS_WARNING in str(warning.message):
            raise ValueError("the transformer's saved weights do not fit its architecture")
    for warning in caught:
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)


def check_model_values(model: Model) -> None:
    """Refuse weights that are not float32 or hold NaN or infinity, a head of
    the wrong shape or an unknown metric."""
    head = model.get_ref("head")
    check_metric(head.attrs.get("metric"))
    for name, shape in (("log_scale", (1,)), ("log_inner_lr", (2,))):
        if head.has_param(name) and head.get_param(name).shape != shape:
            raise ValueError(
                f"the head's {name} has shape {head.get_param(name).shape}, not {shape}"
            )
    xp = model.ops.xp
    for layer in model.walk():
        for name in layer.param_names:
            if not layer.has_param(name):
                continue
            param = layer.get_param(name)
            if param.dtype != xp.float32:
                raise ValueError(
                    f"the weights '{name}' of layer '{layer.name}' are {param.dtype}, not float32"
                )
            if not bool(xp.isfinite(param).all()):
                raise ValueError(
                    f"the weights '{name}' of layer '{layer.name}' hold NaN or infinity"
                )
        for shim in layer.shims:
            module = getattr(shim, "_model", None)
            if isinstance(module, torch.nn.Module):
                for name, tensor in module.state_dict().items():
                    if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                        raise ValueError(f"the transformer's weights '{name}' hold NaN or infinity")


def model_bytes_or_none(model: Model) -> Optional[bytes]:
    """The model's bytes, or None for a model that has nothing to lose yet
    (not initialized, as in spacy.load before from_disk)."""
    try:
        return model.to_bytes()
    except Exception:
        return None
