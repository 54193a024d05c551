"""modelregistry: the Python client for the model registry.

The generated gRPC stubs live in ``modelregistry.metadata.v1`` and ``modelregistry.artifact.v1``.
"""

__version__ = "0.1.0"
