"""From a few labelled examples to a classifier: collecting the support
data, the kept support set, adapt() itself, deep adaptation and the
immutable Adaptation that predict() reads."""
