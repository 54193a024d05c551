"""How an artifact service served alone reaches the MetadataService: its flags.

Reads that name a model version ask the MetadataService which blobs the version holds. Served
together, the artifact service asks its own port with the process's internal credential;
served alone (``serve artifacts``), it needs these.
"""

from __future__ import annotations

import argparse


def add_metadata_service_flags(serve: argparse.ArgumentParser) -> None:
    """``--metadata-service-url``, ``-token`` and ``-ca``."""
    serve.add_argument(
        "--metadata-service-url",
        help="host:port of the MetadataService when serving artifacts alone (reads that name "
        "a model version ask it which blobs the version holds)",
    )
    serve.add_argument(
        "--metadata-service-token",
        help="the bearer token artifacts served alone present to the MetadataService; set it "
        "through MODELREGISTRY_METADATA_SERVICE_TOKEN rather than on the command line",
    )
    serve.add_argument(
        "--metadata-service-ca",
        help="PEM CA certificates that signed the MetadataService's certificate: reach it "
        "with TLS (artifacts alone)",
    )
