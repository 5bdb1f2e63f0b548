"""Error types shared by the core and everything above it."""


class ConfigError(ValueError):
  """A config that cannot run; the message names the key and the fix."""
