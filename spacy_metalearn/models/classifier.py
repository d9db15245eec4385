"""The model of the few_shot_textcat component: a doc encoder plus a metric head."""

from typing import Callable, List, Tuple

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model
from thinc.types import Floats2d


@registry.architectures("spacy_metalearn.FewShotClassifier.v1")
def build_few_shot_classifier(
    encoder: Model[List[Doc], Floats2d], head: Model
) -> Model[List[Doc], Floats2d]:
    """Hold the doc encoder and the prototype head as one model.

    The model maps docs to embeddings; the component keeps the prototypes
    (which change with every adapt()) and applies the head to them.

    encoder (Model[List[Doc], Floats2d]): One embedding per doc.
    head (Model[Tuple[Floats2d, Floats2d], Floats2d]): Scores embeddings
        against prototypes.
    """
    return Model(
        "few_shot_classifier",
        forward,
        init=_init,
        layers=[encoder, head],
        refs={"encoder": encoder, "head": head},
    )


def _init(model: Model, X=None, Y=None) -> Model:
    model.get_ref("encoder").initialize(X=X)
    model.get_ref("head").initialize()
    return model


def forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[Floats2d, Callable]:
    return model.get_ref("encoder")(docs, is_train)
