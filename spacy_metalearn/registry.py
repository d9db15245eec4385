"""The registry of meta-learners, discoverable through the entry point group
``spacy_meta_learners`` (as spacy-transformers does for its span getters)."""

import catalogue
from spacy.util import registry

registry.meta_learners = catalogue.create("spacy", "meta_learners", entry_points=True)  # type: ignore[attr-defined]

__all__ = ["registry"]
