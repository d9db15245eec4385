"""The few_shot_textcat factory: its default model and settings, each
setting explained in make_few_shot_textcat."""

from typing import Callable, Optional

from spacy.language import Language
from thinc.api import Config, Model

from ..encoding.onnx_inference import TORCH_BACKEND
from ..learners.base import Learner
from ..training.scoring import EPISODE_ACC
from .few_shot_textcat import FewShotTextCategorizer
from .settings import (
    DEFAULT_ADAPT_LEARN_RATE,
    DEFAULT_ADAPT_STEPS,
    DEFAULT_DEEP_ADAPT_LAYERS,
    DEFAULT_DEEP_ADAPT_LEARN_RATE,
    DEFAULT_IN_SCOPE_QUANTILE,
    DEFAULT_LABEL_BALANCE,
    DEFAULT_LOGIT_ADJUSTMENT_TAU,
)

default_model_config = """
[model]
@architectures = "spacy_metalearn.FewShotClassifier.v1"

[model.encoder]
@architectures = "spacy_metalearn.SentenceEncoder.v1"
name = "sentence-transformers/all-MiniLM-L6-v2"
grad_factor = 1.0
mixed_precision = false

[model.head]
@architectures = "spacy_metalearn.PrototypeHead.v2"
metric = "cosine"
init_scale = 10.0
"""
DEFAULT_MODEL = Config().from_str(default_model_config)["model"]


@Language.factory(
    "few_shot_textcat",
    assigns=["doc.cats"],
    default_config={
        "model": DEFAULT_MODEL,
        "learner": {"@meta_learners": "spacy_metalearn.ProtoNet.v1"},
        "exclusive_classes": True,
        "threshold": None,
        "unknown_label": None,
        "in_scope_quantile": DEFAULT_IN_SCOPE_QUANTILE,
        "use_label_names": True,
        "batch_size": 32,
        "adapt_steps": DEFAULT_ADAPT_STEPS,
        "adapt_learn_rate": DEFAULT_ADAPT_LEARN_RATE,
        "label_balance": DEFAULT_LABEL_BALANCE,
        "logit_adjustment_tau": DEFAULT_LOGIT_ADJUSTMENT_TAU,
        "deep_adapt_steps": 0,
        "deep_adapt_learn_rate": DEFAULT_DEEP_ADAPT_LEARN_RATE,
        "deep_adapt_layers": DEFAULT_DEEP_ADAPT_LAYERS,
        "inference_backend": TORCH_BACKEND,
        "meta_train_layers": None,
        "scorer": {"@scorers": "spacy_metalearn.few_shot_scorer.v1"},
    },
    default_score_weights={
        "cats_score": 1.0,
        "cats_score_desc": None,
        "cats_micro_p": None,
        "cats_micro_r": None,
        "cats_micro_f": None,
        "cats_macro_p": None,
        "cats_macro_r": None,
        "cats_macro_f": None,
        "cats_macro_auc": None,
        "cats_f_per_type": None,
        EPISODE_ACC: None,
    },
)
def make_few_shot_textcat(
    nlp: Language,
    name: str,
    model: Model,
    learner: Learner,
    exclusive_classes: bool,
    threshold: Optional[float],
    unknown_label: Optional[str],
    in_scope_quantile: Optional[float],
    use_label_names: bool,
    batch_size: int,
    adapt_steps: Optional[int],
    adapt_learn_rate: Optional[float],
    label_balance: str,
    logit_adjustment_tau: float,
    deep_adapt_steps: int,
    deep_adapt_learn_rate: float,
    deep_adapt_layers: int,
    inference_backend: str,
    meta_train_layers: Optional[int],
    scorer: Callable,
) -> FewShotTextCategorizer:
    """Create a few_shot_textcat component.

    model (thinc.api.Model): The encoder and prototype head.
    learner (Learner): The meta-learner: turns an episode into a loss, and a
        support set into a classifier.
    exclusive_classes (bool): One label per doc (softmax) or independent labels
        (sigmoid, calibrated on the support set).
    threshold (Optional[float]): Score below which a label is not chosen;
        None means 0.0 when exclusive, 0.5 otherwise.
    unknown_label (Optional[str]): Name of a label set to 1.0 when a doc is
        out of scope (see in_scope_quantile), or None.
    in_scope_quantile (Optional[float]): With unknown_label and exclusive
        classes, a doc is out of scope when its in-scope score is below all
        but this share of the support examples' scores, each example held out
        of what scores it: with a fitted head (adapt steps > 0) its top logit
        against theirs from the head refitted without them, else its
        similarity to its nearest label's prototype against theirs to their
        own label's; None leaves the decision to the threshold alone.
    use_label_names (bool): adapt() describes each label that has no
        description by its name made readable ('card_arrival' -> 'card
        arrival'), counted as one more example of it.
    batch_size (int): Docs encoded at once, in batches of similar length.
    adapt_steps (Optional[int]): Inner-loop steps adapt() runs on the support
        set by default with exclusive classes, fitting a linear head started
        from the learner's classifier (multi-label takes 0); 0 is the instant
        path (the prototypes); None means the learner's own (0 for ProtoNet).
    adapt_learn_rate (Optional[float]): Step size of those inner-loop steps;
        None means the learner's meta-learned one.
    label_balance (str): How adaptation keeps the support's label counts out
        of its predictions, so that a label with 5 examples beside labels
        with 100 is not drowned: "logit_adjustment" (the head's bias loses
        logit_adjustment_tau times each label's log share of the support),
        "reweighting" (each label's rows weigh the same in the head's loss) or
        "none" (the head learns the support's frequencies, for supports whose
        counts are the traffic's). Unless "none", the in-scope threshold, the
        multi-label calibration and deep adaptation weight every label the
        same too. With equal counts all three predict the same.
    logit_adjustment_tau (float): In [0, 1]: how much of the log label
        frequencies logit adjustment takes out (1 balances every label's
        errors; less keeps more of the old labels' accuracy beside new ones).
    deep_adapt_steps (int): Steps adapt() takes by default on the support set
        through the top layers of the component's own transformer before
        building the classifier (deep adaptation); 0 turns it off.
    deep_adapt_learn_rate (float): Adam's step size for those steps.
    deep_adapt_layers (int): How many of the transformer's top layers they update.
    inference_backend (str): What runs the component's own transformer when
        docs are only encoded (predict, adapt's encoding, scoring): "torch",
        or ONNX Runtime on CPU, "onnxruntime" (float32) or "onnxruntime-int8"
        (dynamic int8 quantization; faster, slightly less accurate). Needs
        the `onnx` extra.
    meta_train_layers (Optional[int]): How many of the component's own
        transformer's top layers meta-pretraining (update()) trains; the
        embeddings and the layers below are frozen: they run without dropout
        or gradient, and their output for each training text is computed once
        and kept in memory. None trains the whole encoder.
    scorer (Callable): The scoring method.
    """
    return FewShotTextCategorizer(
        nlp.vocab,
        model,
        name,
        nlp=nlp,
        learner=learner,
        exclusive_classes=exclusive_classes,
        threshold=threshold,
        unknown_label=unknown_label,
        in_scope_quantile=in_scope_quantile,
        use_label_names=use_label_names,
        batch_size=batch_size,
        adapt_steps=adapt_steps,
        adapt_learn_rate=adapt_learn_rate,
        label_balance=label_balance,
        logit_adjustment_tau=logit_adjustment_tau,
        deep_adapt_steps=deep_adapt_steps,
        deep_adapt_learn_rate=deep_adapt_learn_rate,
        deep_adapt_layers=deep_adapt_layers,
        inference_backend=inference_backend,
        meta_train_layers=meta_train_layers,
        scorer=scorer,
    )
