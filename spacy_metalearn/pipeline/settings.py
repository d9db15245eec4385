"""The component's settings: what each may be (E019 names the setting and
the value), and the form they are kept in."""

import unicodedata
from typing import Any, Dict, Optional

from thinc.api import Model

from ..adaptation.support import check_label
from ..checks import (
    check_boolean,
    check_integer,
    check_learn_rate,
    check_one_of,
    check_steps,
    is_number,
)
from ..encoding.onnx_inference import INFERENCE_BACKENDS
from ..errors import Errors
from ..models.balance import LABEL_BALANCES, LOGIT_ADJUSTMENT, NO_BALANCE
from ..models.encoder import find_transformer_shim

# adapt()'s head steps, chosen on all-label CLINC150 (frozen encoder, 5 and
# 10 shots; docs/adaptation.md): 100 steps of 30 on a linear head started from
# the prototypes; 0 is the instant path (the prototypes)
DEFAULT_ADAPT_STEPS = 100
DEFAULT_ADAPT_LEARN_RATE = 30.0
# chosen on the generalized case of BANKING77's ProtAugment splits 01-05 with
# their valid classes as the new labels (docs/adding-labels.md): the head's
# bias loses tau times the support's log label frequencies, tau the largest of
# 0.7, 0.8, 0.9, 1 whose old labels stayed within 2 points of the head without
# it at 1, 5 and 10 shots (0.7: 0.69 / 1.23 / 1.48 points; 0.8: 2.13 at 10;
# metrics/new_labels_selection)
DEFAULT_LABEL_BALANCE = LOGIT_ADJUSTMENT
DEFAULT_LOGIT_ADJUSTMENT_TAU = 0.7
# settings that a component saved before them lacks, and the value it was
# adapted with: it loads and adapts as it did, unless spacy.load(...,
# config=...) gives one (a value other than the factory's default, DEFAULTS)
SETTINGS_SINCE = {"label_balance": NO_BALANCE, "logit_adjustment_tau": DEFAULT_LOGIT_ADJUSTMENT_TAU}
DEFAULTS = {
    "label_balance": DEFAULT_LABEL_BALANCE,
    "logit_adjustment_tau": DEFAULT_LOGIT_ADJUSTMENT_TAU,
}
# chosen on CLINC150's validation split (in-scope and out-of-scope queries, 5
# and 10 shots, frozen encoder; benchmarks/probe_out_of_scope.py): the largest
# quantile whose in-scope accuracy stayed within 2 points of never abstaining
# both with the prototypes and with 100 head steps (the head's held-out
# scores: 1.47 points at 0.03, 2.57 at 0.04)
DEFAULT_IN_SCOPE_QUANTILE = 0.03
# chosen on meta-dev sets (CLINC150 banking + credit cards, HINT3), frozen
# all-MiniLM-L6-v2: 10 steps of 3e-5 on the top 2 layers (docs/adaptation.md);
# off by default (it costs seconds per step)
DEFAULT_DEEP_ADAPT_LEARN_RATE = 3e-5
DEFAULT_DEEP_ADAPT_LAYERS = 2


def check_settings(cfg: Dict[str, Any]) -> None:
    """Check the component's settings, from its config or a saved cfg."""
    check_boolean("exclusive_classes", cfg["exclusive_classes"])
    threshold = cfg["threshold"]
    if not (is_number(threshold) and 0.0 <= threshold <= 1.0):
        raise ValueError(
            Errors.E019.format(setting="threshold", requirement="in [0, 1]", value=threshold)
        )
    check_boolean("use_label_names", cfg["use_label_names"])
    check_integer("batch_size", cfg["batch_size"], 1)
    if cfg["unknown_label"] is not None:
        check_label(cfg["unknown_label"])
    quantile = cfg["in_scope_quantile"]
    if quantile is not None and not (is_number(quantile) and 0.0 <= quantile < 1.0):
        raise ValueError(
            Errors.E019.format(
                setting="in_scope_quantile", requirement="null or in [0, 1)", value=quantile
            )
        )
    check_one_of("label_balance", cfg["label_balance"], LABEL_BALANCES)
    tau = cfg["logit_adjustment_tau"]
    if not (is_number(tau) and 0.0 <= tau <= 1.0):
        raise ValueError(
            Errors.E019.format(setting="logit_adjustment_tau", requirement="in [0, 1]", value=tau)
        )
    check_one_of("inference_backend", cfg["inference_backend"], INFERENCE_BACKENDS)
    check_steps("deep_adapt_steps", cfg["deep_adapt_steps"])
    check_learn_rate("deep_adapt_learn_rate", cfg["deep_adapt_learn_rate"])
    check_integer("deep_adapt_layers", cfg["deep_adapt_layers"], 1)
    check_integer("meta_train_layers", cfg["meta_train_layers"], 1, nullable=True)
    steps, learn_rate = cfg["adapt_steps"], cfg["adapt_learn_rate"]
    if steps is not None:
        check_steps("adapt_steps", steps)
    if learn_rate is not None:
        check_learn_rate("adapt_learn_rate", learn_rate)


def check_meta_train_layers(n_layers: Optional[int], encoder: Model) -> None:
    """meta_train_layers needs a transformer of the component's own (E043);
    its layer count is checked at the first update(), once the weights are in."""
    if n_layers is not None and find_transformer_shim(encoder) is None:
        raise ValueError(Errors.E043.format(n_layers=n_layers))


def normalized_settings(cfg: Dict[str, Any]) -> Dict[str, Any]:
    cfg = dict(cfg)
    if cfg["unknown_label"] is not None:  # labels are kept in NFC
        cfg["unknown_label"] = unicodedata.normalize("NFC", cfg["unknown_label"])
    cfg["threshold"] = float(cfg["threshold"])
    cfg["logit_adjustment_tau"] = float(cfg["logit_adjustment_tau"])
    if cfg["in_scope_quantile"] is not None:
        cfg["in_scope_quantile"] = float(cfg["in_scope_quantile"])
    if cfg["adapt_learn_rate"] is not None:
        cfg["adapt_learn_rate"] = float(cfg["adapt_learn_rate"])
    cfg["deep_adapt_learn_rate"] = float(cfg["deep_adapt_learn_rate"])
    return cfg
