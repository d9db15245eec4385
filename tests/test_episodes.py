import random

import pytest
import spacy
from hypothesis import given, settings
from hypothesis import strategies as st
from spacy.training import Example

from spacy_metalearn.training.episodes import (
    EPISODE_KEY,
    configure_episode_batcher,
    sample_episode,
    sample_group_episode,
    split_episode,
)


def corpus(n_classes=6, per_class=8):
    nlp = spacy.blank("en")
    return [
        Example.from_dict(nlp.make_doc(f"text {c} {i}"), {"cats": {f"c{c}": 1.0}})
        for c in range(n_classes)
        for i in range(per_class)
    ]


def test_sample_episode_invariants():
    groups = {f"c{c}": [(c, i) for i in range(10)] for c in range(8)}
    groups["tiny"] = [("tiny", 0), ("tiny", 1)]
    rng = random.Random(0)
    for _ in range(50):
        episode = sample_episode(groups, n_way=4, k_shot=3, n_query=2, rng=rng)
        labels = [label for label, _, _ in episode]
        assert len(set(labels)) == 4 and "tiny" not in labels
        seen = set()
        for label, support, query in episode:
            assert len(support) == 3 and len(query) == 2
            assert all(item in groups[label] for item in support + query)
            assert not seen & set(support + query)
            seen |= set(support + query)


def test_same_seed_same_episodes():
    groups = {f"c{c}": list(range(c * 10, c * 10 + 10)) for c in range(6)}
    first = [sample_episode(groups, 3, 2, 2, random.Random(7)) for _ in range(3)]
    second = [sample_episode(groups, 3, 2, 2, random.Random(7)) for _ in range(3)]
    assert first == second


def test_too_few_classes_raises():
    groups = {"a": list(range(10)), "b": list(range(3))}
    with pytest.raises(ValueError, match=r"\[E018\].*only 1 classes"):
        sample_episode(groups, 2, 2, 2, random.Random(0))


@pytest.mark.parametrize("setting", [{"n_way": 1}, {"k_shot": 0}, {"n_query": 0}])
def test_bad_batcher_settings_raise(setting):
    with pytest.raises(ValueError, match=r"\[E019\]"):
        configure_episode_batcher(**setting)


def test_batcher_marks_support_and_query_without_touching_the_corpus():
    examples = corpus()
    batcher = configure_episode_batcher(n_way=3, k_shot=2, n_query=3, episodes_per_epoch=4)
    episodes = list(batcher(examples))
    assert len(episodes) == 4
    for episode in episodes:
        assert len(episode) == 3 * (2 + 3)
        roles = [eg.predicted.user_data[EPISODE_KEY][0] for eg in episode]
        assert roles.count("support") == 6 and roles.count("query") == 9
        # spaCy sorts batches by length before update(): the marks survive it
        support, support_labels, query, query_labels = split_episode(list(reversed(episode)))
        assert sorted(support_labels) == [0, 0, 1, 1, 2, 2]
        assert sorted(query_labels) == [0] * 3 + [1] * 3 + [2] * 3
        gold = [list(episode[::-1][i].reference.cats)[0] for i in support + query]
        labels = support_labels + query_labels
        assert len({(g, lab) for g, lab in zip(gold, labels)}) == 3
    assert all(EPISODE_KEY not in eg.predicted.user_data for eg in examples)


def test_split_episode_errors():
    examples = corpus(2, 2)
    with pytest.raises(ValueError, match=r"\[E016\].*episode_batcher"):
        split_episode(examples)
    for eg in examples:
        eg.predicted.user_data[EPISODE_KEY] = ("support", 0)
    with pytest.raises(ValueError, match=r"\[E017\]"):
        split_episode(examples)


@settings(max_examples=50, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=12), min_size=2, max_size=10),
    n_way=st.integers(min_value=2, max_value=5),
    k_shot=st.integers(min_value=1, max_value=4),
    n_query=st.integers(min_value=1, max_value=4),
    seed=st.integers(min_value=0, max_value=10_000),
)
def test_sampler_invariants_hold_for_any_class_sizes(sizes, n_way, k_shot, n_query, seed):
    groups = {f"c{c}": [(c, i) for i in range(size)] for c, size in enumerate(sizes)}
    eligible = [label for label, items in groups.items() if len(items) >= k_shot + n_query]
    rng = random.Random(seed)
    if len(eligible) < n_way:
        with pytest.raises(ValueError, match="E018"):
            sample_episode(groups, n_way, k_shot, n_query, rng)
        return
    episode = sample_episode(groups, n_way, k_shot, n_query, rng)
    assert len({label for label, _, _ in episode}) == n_way
    used = []
    for label, support, query in episode:
        assert label in eligible
        assert len(support) == k_shot and len(query) == n_query
        assert not set(support) & set(query)  # no query in the support
        assert all(item[0] == int(label[1:]) for item in support + query)  # only its own class
        used += support + query
    assert len(used) == len(set(used))


def test_group_episodes_draw_all_classes_from_one_group():
    groups = {f"{g}/c{c}": [(g, c, i) for i in range(6)] for g in ("a", "b") for c in range(5)}
    groups.update({f"small/c{c}": [("small", c, i) for i in range(6)] for c in range(3)})
    groups["lonely/c0"] = [("lonely", 0, i) for i in range(6)]
    rng = random.Random(0)
    seen_groups, ways = set(), set()
    for _ in range(60):
        episode = sample_group_episode(groups, 4, 2, 2, rng, "/")
        prefixes = {label.rpartition("/")[0] for label, _, _ in episode}
        assert len(prefixes) == 1  # one group per episode
        seen_groups |= prefixes
        ways.add(len(episode))
    assert seen_groups == {"a", "b", "small"}  # a group of one class is never drawn
    assert ways == {3, 4}  # n_way, or all classes of a smaller group


def test_group_episodes_need_a_group_of_two_classes():
    groups = {"a/c0": list(range(6)), "b/c0": list(range(6, 12))}
    with pytest.raises(ValueError, match=r"\[E031\]"):
        sample_group_episode(groups, 2, 1, 1, random.Random(0), "/")


def test_batcher_with_group_separator_keeps_episodes_within_a_group():
    nlp = spacy.blank("en")
    examples = [
        Example.from_dict(nlp.make_doc(f"text {g} {c} {i}"), {"cats": {f"{g}/c{c}": 1.0}})
        for g in ("x", "y")
        for c in range(3)
        for i in range(4)
    ]
    batcher = configure_episode_batcher(
        n_way=3, k_shot=1, n_query=1, episodes_per_epoch=20, group_separator="/"
    )
    for batch in batcher(examples):
        labels = {label for eg in batch for label, v in eg.reference.cats.items() if v}
        assert len(labels) == 3 and len({label.split("/")[0] for label in labels}) == 1
