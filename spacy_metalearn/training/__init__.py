"""Meta-pretraining through spacy train: episodes and their batcher, the
learners' objectives on what the component is fed, and the scorer."""
