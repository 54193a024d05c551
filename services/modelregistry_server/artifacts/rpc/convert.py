"""Conversions between artifact domain objects and their protobuf messages."""

from __future__ import annotations

from modelregistry.artifact.v1 import blob_pb2
from modelregistry_server.artifacts.domain.blob import BlobInfo
from modelregistry_server.artifacts.domain.upload import UploadSession
from modelregistry_server.common.rpc.proto_time import timestamp


def blob_to_proto(blob: BlobInfo) -> blob_pb2.Blob:
    """Return the wire form of a blob."""
    return blob_pb2.Blob(
        name=blob.name,
        sha256=blob.sha256,
        size_bytes=blob.size,
        create_time=timestamp(blob.create_time),
    )


def session_to_proto(session: UploadSession) -> blob_pb2.UploadSession:
    """Return the wire form of an upload session."""
    message = blob_pb2.UploadSession(
        name=session.name,
        sha256=session.sha256,
        size_bytes=session.size,
        committed_size=session.committed_size,
        complete=session.complete,
        create_time=timestamp(session.create_time),
        expire_time=timestamp(session.expire_time),
    )
    direct = session.direct_upload
    if direct is not None:
        message.direct_upload.url = direct.url
        message.direct_upload.headers.update(direct.headers)
        message.direct_upload.expire_time.CopyFrom(timestamp(direct.expire_time))
    return message
