"""Detection methods of the survey's taxonomy. They take a model, data and heads and return
tensors; they know nothing of YAML, claims or the site."""
