// Placeholder: the YAML loader lands here.
