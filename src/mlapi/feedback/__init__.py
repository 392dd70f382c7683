"""User corrections: the feedback service (consume, validate, store) and its database."""
