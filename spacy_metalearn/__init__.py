"""spacy-metalearn: meta-learned few-shot text classification for spaCy."""

from .learners import maml, many_way, matching, proto_maml, protonet, reptile  # noqa: F401
from .models import classifier, encoder, head, sentence_encoder  # noqa: F401  (registers architectures)
from .pipeline.factory import make_few_shot_textcat
from .pipeline.few_shot_textcat import FewShotTextCategorizer
from .registry import registry
from .training import episodes, scoring  # noqa: F401  (registers the batcher and scorer)

__version__ = "0.1.0"

__all__ = ["FewShotTextCategorizer", "make_few_shot_textcat", "registry", "__version__"]
