"""How in_scope_quantile's default was chosen: on CLINC150's validation split
(never its test split), the frozen default encoder adapted to the K-shot
support with 100 steps of 30, for each quantile of the support's leave-one-out
similarities, the in-scope accuracy drop (abstaining counts as wrong) and the
out-of-scope recall; beside it two other support-only scores: per-label
z-scores of the similarity, and the head's top probability thresholded at a
quantile of its 5-fold held-out probabilities on the support.

    python scripts/probe_out_of_scope.py assets/few_shot_intent_detection/CLINC150 \
        --shots 10 --split valid
"""

from pathlib import Path

import typer


def main(
    data: Path = typer.Argument(..., help="CLINC150 folder: train_K/, <split>/, oos/<split>/"),
    shots: int = typer.Option(10),
    split: str = typer.Option("valid", help="valid (to choose on) or test"),
    quantiles: str = typer.Option("0.02,0.03,0.04,0.05,0.06,0.08"),
    steps: int = typer.Option(100),
    learn_rate: float = typer.Option(30.0),
) -> None:
    import torch
    from sklearn.metrics import roc_auc_score

    from spacy_metalearn.data import group_by_label, read_labelled
    from spacy_metalearn.evaluation import find_component, load_pipeline
    from spacy_metalearn.models.calibration import own_class_left_out

    support = read_labelled(data / f"train_{shots}")
    test = read_labelled(data / split)
    oos = [text for text, _ in read_labelled(data / "oos" / split)]
    component = find_component(load_pipeline("default"))
    component.adapt(group_by_label(support), replace=True)
    adaptation = component.adaptation  # what predict() reads: support, prototypes, head
    head, prototypes = adaptation.head, adaptation.prototypes
    index = {label: i for i, label in enumerate(adaptation.labels)}
    n = len(index)
    support_x = torch.tensor(adaptation.support_set.embeddings)
    y = torch.tensor(adaptation.support_set.label_ids)
    y_test = torch.tensor([index[label] for _, label in test])
    test_x = component.embedder([t for t, _ in test])
    oos_x = component.embedder(oos)
    _, has_other = own_class_left_out(support_x, y, n, head)
    own = adaptation.left_out_similarities.float()
    classifier = component.fit_classifier(support_x, y, n, steps=steps, learn_rate=learn_rate)
    with torch.no_grad():
        p_test, p_oos = (torch.softmax(classifier.logits(x), 1) for x in (test_x, oos_x))
    correct = p_test.argmax(1) == y_test
    never = 100.0 * correct.float().mean().item()
    print(f"{split}: {len(test)} in scope, {len(oos)} out of scope; never abstaining {never:.2f}")

    def report(name, in_scores, oos_scores, threshold):
        auroc = roc_auc_score(
            [1] * len(in_scores) + [0] * len(oos_scores),
            torch.cat([in_scores, oos_scores]).tolist(),
        )
        kept = in_scores >= threshold
        accuracy = 100.0 * (correct & kept).float().mean().item()
        recall = 100.0 * (oos_scores < threshold).float().mean().item()
        print(f"{name}: AUROC {auroc:.3f}, drop {never - accuracy:.2f}, OOS recall {recall:.1f}")

    sim_test = head.similarity(test_x, prototypes).max(1).values
    sim_oos = head.similarity(oos_x, prototypes).max(1).values
    # per-label z-score of the similarity to the predicted label's prototype
    counts = torch.bincount(y, minlength=n).float()
    mean = torch.zeros(n).index_add_(0, y[has_other], own) / counts
    var = torch.zeros(n).index_add_(0, y[has_other], (own - mean[y[has_other]]) ** 2)
    std = (var / (counts - 1).clamp(min=1)).sqrt().clamp(min=0.02)
    own_z = (own - mean[y[has_other]]) / std[y[has_other]]

    def z_score(x, probabilities):
        predicted = probabilities.argmax(1)
        similarity = head.similarity(x, prototypes).gather(1, predicted[:, None])[:, 0]
        return (similarity - mean[predicted]) / std[predicted]

    z_test, z_oos = z_score(test_x, p_test), z_score(oos_x, p_oos)
    # 5-fold held-out top probabilities of the support examples
    generator = torch.Generator().manual_seed(0)
    fold = torch.empty(len(y), dtype=torch.long)
    for label in range(n):
        members = (y == label).nonzero()[:, 0]
        shuffled = members[torch.randperm(len(members), generator=generator)]
        fold[shuffled] = torch.arange(len(shuffled)) % 5
    held_out = torch.empty(len(y))
    for k in range(5):
        train = fold != k
        fitted = component.fit_classifier(
            support_x[train], y[train], n, steps=steps, learn_rate=learn_rate
        )
        with torch.no_grad():
            held_out[~train] = torch.softmax(fitted.logits(support_x[~train]), 1).max(1).values
    for q in (float(value) for value in quantiles.split(",")):
        report(f"nearest similarity, quantile {q}", sim_test, sim_oos, torch.quantile(own, q))
        report(f"label z-score, quantile {q}", z_test, z_oos, torch.quantile(own_z, q))
        report(
            f"top probability, 5-fold quantile {q}",
            p_test.max(1).values,
            p_oos.max(1).values,
            torch.quantile(held_out, q),
        )


if __name__ == "__main__":
    typer.run(main)
