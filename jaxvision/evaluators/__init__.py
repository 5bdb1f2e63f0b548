"""jaxvision.evaluators."""
