"""Meta-pretraining through spacy train: episodes and their batcher, the
learners' objectives on what the component is fed, the scorer, the
meta-dev tasks and the interpolation with the starting weights."""
