"""dhash-console: a guarded-rollout operator console for the dhash service."""

__version__ = "0.1.0"
