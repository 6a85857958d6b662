"""The stages of the submit pipeline, one module per concern, in pipeline order."""
