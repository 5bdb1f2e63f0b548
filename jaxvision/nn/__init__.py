"""jaxvision.nn."""
