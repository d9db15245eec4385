"""adapt()'s input: checked once, and grouped as label -> texts or docs."""

import re
import unicodedata
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Union

from spacy.tokens import Doc
from spacy.training import Example

from ..errors import Errors

TextOrDoc = Union[str, Doc]
SupportData = Union[Mapping[str, Sequence[TextOrDoc]], Iterable[Union[Example, Doc]]]


def positive_labels(cats: Mapping[str, float]) -> List[str]:
    """The gold labels of an Example's or a Doc's cats: those with a score of
    at least 0.5."""
    return [label for label, score in cats.items() if score >= 0.5]


def collect_support(
    data: SupportData,
    *,
    exclusive_classes: bool,
    unknown_label: Optional[str],
    allow_no_examples: bool = False,
) -> Dict[str, List[TextOrDoc]]:
    """Validate adapt()'s input and group it as label -> items.

    data (SupportData): A mapping label -> texts (str or Doc), or Examples or
        Docs whose cats give the labels (a DocBin's get_docs()).
    exclusive_classes (bool): Whether an Example may carry one label only.
    unknown_label (Optional[str]): The out-of-scope label, which cannot be adapted to.
    allow_no_examples (bool): Accept labels with an empty list, and no labels
        at all (the caller checks that they have descriptions).
    RETURNS (Dict[str, List[Union[str, Doc]]]): The items of each label, in the
        order given.
    """
    support: Dict[str, List[TextOrDoc]] = {}
    if isinstance(data, Mapping):
        for given, texts in data.items():
            label = adapt_label(given, unknown_label)
            if isinstance(texts, (str, Doc, Mapping)) or not isinstance(texts, Iterable):
                raise ValueError(Errors.E003.format(label=given, type=type(texts).__name__))
            support.setdefault(label, []).extend(texts)
            if not support[label] and not allow_no_examples:
                raise ValueError(Errors.E002.format(label=label))
    elif isinstance(data, (str, Doc)) or not isinstance(data, Iterable):
        raise ValueError(Errors.E008.format(type=type(data).__name__))
    else:
        for eg in data:
            if not isinstance(eg, (Example, Doc)):
                raise ValueError(Errors.E008.format(type=type(eg).__name__))
            cats = eg.reference.cats if isinstance(eg, Example) else eg.cats
            check_cats(cats)
            labels = positive_labels(cats)
            if not labels:
                raise ValueError(Errors.E007.format(cats=cats))
            if exclusive_classes and len(labels) > 1:
                raise ValueError(Errors.E011.format(n=len(labels), labels=labels))
            item = eg.predicted if isinstance(eg, Example) else eg
            for label in labels:
                support.setdefault(adapt_label(label, unknown_label), []).append(item)
    if not support and not allow_no_examples:
        raise ValueError(Errors.E001)
    for label, items in support.items():
        for index, item in enumerate(items):
            if not isinstance(item, (str, Doc)):
                raise ValueError(
                    Errors.E004.format(type=type(item).__name__, label=label, index=index)
                )
            text = item if isinstance(item, str) else item.text
            if not has_visible_text(text):
                raise ValueError(Errors.E006.format(label=label, index=index))
    return support


def collect_descriptions(descriptions: Any, unknown_label: Optional[str]) -> Dict[str, str]:
    """Validate adapt()'s descriptions: a mapping label -> text."""
    if descriptions is None:
        return {}
    if not isinstance(descriptions, Mapping):
        raise ValueError(Errors.E037.format(type=type(descriptions).__name__))
    checked = {}
    for given, description in descriptions.items():
        label = adapt_label(given, unknown_label)
        if not isinstance(description, str) or not has_visible_text(description):
            raise ValueError(Errors.E036.format(label=given, description=description))
        checked[label] = description
    return checked


def readable_label(label: str) -> str:
    """A label's name as words, its default description: 'card_arrival' ->
    'card arrival', 'AddToPlaylist' -> 'add to playlist', 'CALL_CENTER' ->
    'call center'. Empty when the name has no letters or digits."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", label)
    return " ".join(re.sub(r"[\W_]+", " ", words).split()).lower()


# Unicode categories that carry no visible text: controls, format characters
# (zero-width, bidi marks), separators, unassigned and private-use code points
INVISIBLE = {"Cc", "Cf", "Cn", "Co", "Cs", "Zs", "Zl", "Zp"}


def has_visible_text(text: str) -> bool:
    """Whether `text` has a character that is neither whitespace nor invisible."""
    return any(not char.isspace() and unicodedata.category(char) not in INVISIBLE for char in text)


def check_cats(cats: Mapping[str, Any]) -> None:
    """Gold cats map labels to numbers in [0, 1]."""
    for label, score in cats.items():
        if (
            isinstance(score, bool)
            or not isinstance(score, (int, float))
            or not 0.0 <= score <= 1.0
        ):
            raise ValueError(Errors.E034.format(label=label, score=score))


def check_label(label: Any) -> str:
    """A label is a string with a visible character (the rule for texts) and
    without surrounding whitespace. RETURNS (str): the label in NFC, the form
    the component keeps: labels that differ only by Unicode normalization
    ('café' composed or decomposed) are one label."""
    if not isinstance(label, str) or label != label.strip() or not has_visible_text(label):
        raise ValueError(Errors.E005.format(label=label))
    return unicodedata.normalize("NFC", label)


def adapt_label(label: Any, unknown_label: Optional[str]) -> str:
    """A label given to adapt(), checked and in NFC; never the unknown label."""
    label = check_label(label)
    if unknown_label is not None and label == check_label(unknown_label):
        raise ValueError(Errors.E010.format(label=label))
    return label
