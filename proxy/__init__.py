"""Cost-governance and observability proxy for the Modellix media-generation API."""

__version__ = "0.1.0"
