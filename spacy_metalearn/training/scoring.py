"""Scores of the few_shot_textcat component: spaCy's textcat scores once the
component has labels, and episode accuracy on held-out classes before that
(which is how `spacy train` selects a meta-pretrained checkpoint)."""

import random
from typing import Callable, Dict, Iterable, List, Optional, Sequence

import torch
from spacy.scorer import Scorer
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import registry
from tqdm import tqdm

from ..errors import Errors
from ..models.classifiers import Classifier
from .episodes import draw_episode, label_indices

# (support embeddings, support labels, n_way) -> classifier
Fit = Callable[[torch.Tensor, torch.Tensor, int], Classifier]

EPISODE_ACC = "cats_episode_acc"


@registry.scorers("spacy_metalearn.few_shot_scorer.v1")
def make_few_shot_scorer(
    n_way: int = 5,
    k_shot: int = 5,
    n_query: int = 5,
    n_episodes: int = 100,
    seed: int = 0,
    group_separator: Optional[str] = None,
) -> "FewShotScorer":
    """Score like spaCy's textcat; before any adapt(), score episodes instead.

    n_way (int): Classes per evaluation episode.
    k_shot (int): Support examples per class.
    n_query (int): Query examples per class.
    n_episodes (int): Number of episodes (the same ones at every evaluation).
    seed (int): Seed of the episode sampler.
    group_separator (Optional[str]): Draw each episode's classes from one
        group of labels, as the episode batcher does.
    """
    return FewShotScorer(n_way, k_shot, n_query, n_episodes, seed, group_separator)


class FewShotScorer:
    def __init__(
        self,
        n_way: int,
        k_shot: int,
        n_query: int,
        n_episodes: int,
        seed: int,
        group_separator: Optional[str] = None,
    ):
        self.n_way = n_way
        self.k_shot = k_shot
        self.n_query = n_query
        self.n_episodes = n_episodes
        self.seed = seed
        self.group_separator = group_separator

    def __call__(
        self,
        examples: Iterable[Example],
        *,
        labels: Sequence[str],
        multi_label: bool,
        threshold: float,
        embed: Callable[[List[Doc]], torch.Tensor],
        fit: Fit,
        **kwargs,
    ) -> Dict[str, Optional[float]]:
        """examples (Iterable[Example]): The examples to score.
        labels (Sequence[str]): The component's labels; none before adapt().
        embed (Callable[[List[Doc]], torch.Tensor]): The component's encoder.
        fit (Fit): Fits a classifier to embedded support examples, as the
            component's adapt() does (same steps and step size).
        """
        examples = list(examples)
        if labels:
            return Scorer.score_cats(
                examples,
                "cats",
                labels=labels,
                multi_label=multi_label,
                threshold=threshold,
                **kwargs,
            )
        return {EPISODE_ACC: self.episode_accuracy(examples, embed, fit)}

    def episode_accuracy(self, examples: Sequence[Example], embed: Callable, fit: Fit) -> float:
        """Mean query accuracy over `n_episodes` episodes drawn from the gold
        labels of `examples`, each adapted as adapt() would."""
        accuracies = episode_accuracies(
            label_indices(examples),
            lambda indices: embed([examples[i].predicted for i in indices]),
            fit,
            n_way=self.n_way,
            k_shot=self.k_shot,
            n_query=self.n_query,
            n_episodes=self.n_episodes,
            seed=self.seed,
            group_separator=self.group_separator,
        )
        return sum(accuracies) / len(accuracies)


def episode_accuracies(
    groups: Dict[str, List[int]],
    encode: Callable[[List[int]], torch.Tensor],
    fit: Fit,
    *,
    n_way: int,
    k_shot: int,
    n_query: int,
    n_episodes: int,
    seed: int,
    group_separator: Optional[str] = None,
    progress: bool = False,
) -> List[float]:
    """Query accuracy of each of `n_episodes` seeded episodes, each support set
    adapted by `fit`.

    groups (Dict[str, List[int]]): The item indices of each label.
    encode (Callable[[List[int]], torch.Tensor]): Embeddings of the items with
        these indices; called once, with every item the episodes use.
    fit (Fit): (support, support_labels, n_way) -> a classifier.
    progress (bool): Show a progress bar (on a terminal).
    RETURNS (List[float]): One accuracy in [0, 1] per episode.
    """
    rng = random.Random(seed)
    episodes = [
        draw_episode(groups, n_way, k_shot, n_query, rng, group_separator)
        for _ in range(n_episodes)
    ]
    needed = sorted({i for episode in episodes for _, s, q in episode for i in s + q})
    row = {item: r for r, item in enumerate(needed)}
    accuracies = []
    with torch.no_grad():
        embeddings = encode(needed)
        for episode in tqdm(episodes, desc="episodes", disable=None if progress else True):
            support = [row[i] for _, s, _ in episode for i in s]
            query = [row[i] for _, _, q in episode for i in q]
            support_labels = _class_indices(episode, 1, embeddings.device)
            query_labels = _class_indices(episode, 2, embeddings.device)
            classifier = fit(embeddings[support], support_labels, len(episode))
            logits = classifier.logits(embeddings[query])
            accuracies.append((logits.argmax(1) == query_labels).float().mean().item())
    return accuracies


def _class_indices(episode, part: int, device) -> torch.Tensor:
    return torch.tensor(
        [c for c, members in enumerate(episode) for _ in members[part]], device=device
    )


def check_gold_labels(examples: Iterable[Example], labels: Iterable[str], name: str) -> None:
    """E015 for gold labels (positive or not) that are not in `labels`."""
    known = list(labels)
    missing = sorted({label for eg in examples for label in eg.reference.cats} - set(known))
    if missing:
        raise ValueError(Errors.E015.format(name=name, labels=missing, known=known))


__all__ = ["make_few_shot_scorer", "FewShotScorer", "episode_accuracies", "EPISODE_ACC"]
