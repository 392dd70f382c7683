"""The model kinds, default first: a module of its own so that `mlapi --help` (the CLI's
choices) can name them without importing scikit-learn."""

KINDS = ("multilingual", "encoder", "fast")
