"""GitOps MLOps machinery for one tabular classification model."""

__version__ = "0.1.0"
