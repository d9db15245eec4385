"""N-way K-shot episodes: sampling, the batcher for `spacy train`, and reading
an episode back out of a batch of Examples."""

import random
from typing import Callable, Dict, Hashable, Iterable, List, Optional, Sequence, Tuple, TypeVar

from spacy.training import Example
from spacy.util import registry

from ..adaptation.support import positive_labels
from ..errors import Errors

T = TypeVar("T", bound=Hashable)

# Doc.user_data key under which the batcher marks each example of an episode
# with (role, class index): spaCy reorders batches (subdivide_batch sorts by
# length), so position cannot carry the role.
EPISODE_KEY = "spacy_metalearn.episode"
SUPPORT, QUERY = "support", "query"


def label_indices(examples: Sequence[Example]) -> Dict[str, List[int]]:
    """Indices of the examples of each gold label, labels in sorted order."""
    groups: Dict[str, List[int]] = {}
    for i, eg in enumerate(examples):
        for label in positive_labels(eg.reference.cats):
            groups.setdefault(label, []).append(i)
    return {label: groups[label] for label in sorted(groups)}


def sample_episode(
    groups: Dict[str, Sequence[T]], n_way: int, k_shot: int, n_query: int, rng: random.Random
) -> List[Tuple[str, List[T], List[T]]]:
    """Draw one episode: n_way classes among those with at least k_shot + n_query
    items, and for each class k_shot support and n_query query items, all
    distinct (an item never serves twice in one episode).

    groups (Dict[str, Sequence[T]]): The items of each class.
    RETURNS (List[Tuple[str, List[T], List[T]]]): (label, support, query) per class.
    """
    _check_sizes(n_way, k_shot, n_query)
    needed = k_shot + n_query
    eligible = [label for label, items in groups.items() if len(set(items)) >= needed]
    if len(eligible) < n_way:
        raise ValueError(
            Errors.E018.format(
                needed=needed, n_way=n_way, k_shot=k_shot, n_query=n_query, available=len(eligible)
            )
        )
    used: set = set()
    episode = []
    for label in rng.sample(eligible, n_way):
        candidates = [item for item in dict.fromkeys(groups[label]) if item not in used]
        if len(candidates) < needed:  # only with multi-label data: items shared by classes
            candidates = list(dict.fromkeys(groups[label]))
        chosen = rng.sample(candidates, needed)
        used.update(chosen)
        episode.append((label, chosen[:k_shot], chosen[k_shot:]))
    return episode


def sample_group_episode(
    groups: Dict[str, Sequence[T]],
    n_way: int,
    k_shot: int,
    n_query: int,
    rng: random.Random,
    separator: str,
) -> List[Tuple[str, List[T], List[T]]]:
    """Draw one episode whose classes all come from one group of labels, a
    group being the labels that share a prefix up to their last `separator`
    ("clinc150/banking/transfer" is in "clinc150/banking"). Classes of one
    domain are harder to tell apart than classes drawn from everywhere. The
    group is drawn uniformly among those with at least two eligible classes;
    an episode has min(n_way, classes in the group) ways.
    """
    _check_sizes(n_way, k_shot, n_query)
    needed = k_shot + n_query
    by_group: Dict[str, Dict[str, Sequence[T]]] = {}
    for label, items in groups.items():
        if len(set(items)) >= needed:
            by_group.setdefault(label.rpartition(separator)[0], {})[label] = items
    usable = sorted(name for name, members in by_group.items() if len(members) >= 2)
    if not usable:
        raise ValueError(Errors.E031.format(separator=separator, needed=needed))
    members = by_group[rng.choice(usable)]
    return sample_episode(members, min(n_way, len(members)), k_shot, n_query, rng)


def draw_episode(
    groups: Dict[str, Sequence[T]],
    n_way: int,
    k_shot: int,
    n_query: int,
    rng: random.Random,
    group_separator: Optional[str] = None,
) -> List[Tuple[str, List[T], List[T]]]:
    """An episode over all classes, or within one group of them."""
    if group_separator:
        return sample_group_episode(groups, n_way, k_shot, n_query, rng, group_separator)
    return sample_episode(groups, n_way, k_shot, n_query, rng)


def _check_sizes(n_way: int, k_shot: int, n_query: int) -> None:
    for setting, value, minimum in (
        ("n_way", n_way, 2),
        ("k_shot", k_shot, 1),
        ("n_query", n_query, 1),
    ):
        if not isinstance(value, int) or value < minimum:
            raise ValueError(
                Errors.E019.format(
                    setting=setting, requirement=f"an integer >= {minimum}", value=value
                )
            )


@registry.batchers("spacy_metalearn.episode_batcher.v1")
def configure_episode_batcher(
    n_way: int = 5,
    k_shot: int = 5,
    n_query: int = 5,
    episodes_per_epoch: int = 100,
    seed: int = 0,
    group_separator: Optional[str] = None,
) -> Callable[[Iterable[Example]], Iterable[List[Example]]]:
    """Batch a labelled corpus into N-way K-shot episodes for meta-training.

    n_way (int): Classes per episode.
    k_shot (int): Support examples per class.
    n_query (int): Query examples per class.
    episodes_per_epoch (int): Episodes drawn each time the corpus is passed in.
    seed (int): Seed of the episode sampler.
    group_separator (Optional[str]): If set, each episode draws its classes
        from one group of labels (the label up to its last separator, e.g. a
        dataset or a domain): harder episodes than classes from everywhere.
    RETURNS (Callable): The batcher; each batch is one episode, its examples
        marked as support or query with their class index.
    """
    _check_sizes(n_way, k_shot, n_query)
    rng = random.Random(seed)

    def batch_episodes(items: Iterable[Example]) -> Iterable[List[Example]]:
        examples = list(items)
        groups = label_indices(examples)
        for _ in range(episodes_per_epoch):
            episode = draw_episode(groups, n_way, k_shot, n_query, rng, group_separator)
            yield [
                _marked(examples[i], role, class_index)
                for class_index, (_, support, query) in enumerate(episode)
                for role, indices in ((SUPPORT, support), (QUERY, query))
                for i in indices
            ]

    return batch_episodes


def _marked(example: Example, role: str, class_index: int) -> Example:
    doc = example.predicted.copy()
    doc.user_data[EPISODE_KEY] = (role, class_index)
    return Example(doc, example.reference)


def split_episode(examples: Sequence[Example]) -> Tuple[List[int], List[int], List[int], List[int]]:
    """Read the marks the batcher put on an episode.

    RETURNS (Tuple[List[int], List[int], List[int], List[int]]): positions of the
        support examples, their class indices, positions of the queries, their
        class indices. Class indices are renumbered 0..n_way-1.
    """
    marks = [eg.predicted.user_data.get(EPISODE_KEY) for eg in examples]
    if any(mark is None for mark in marks):
        raise ValueError(Errors.E016)
    support_classes = {c for role, c in marks if role == SUPPORT}
    query_classes = {c for role, c in marks if role == QUERY}
    classes = sorted(support_classes & query_classes)
    if len(classes) < 2:
        raise ValueError(Errors.E017.format(n_classes=len(classes)))
    renumber = {c: i for i, c in enumerate(classes)}
    support, support_labels, query, query_labels = [], [], [], []
    for position, (role, c) in enumerate(marks):
        if c not in renumber:
            continue
        if role == SUPPORT:
            support.append(position)
            support_labels.append(renumber[c])
        else:
            query.append(position)
            query_labels.append(renumber[c])
    return support, support_labels, query, query_labels
