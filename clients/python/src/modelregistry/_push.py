"""``push``: hash local files, upload only what the registry lacks, then commit a version.

The flow is DESIGN.md's two-phase push: create a PENDING version, ``FindMissingBlobs``, upload
the missing blobs in parallel through resumable upload sessions, then ``CommitModelVersion``
with the manifest. Nothing is visible to readers until the commit.

Resuming: the upload session of each blob is recorded in the cache as soon as it exists. A push
that is interrupted (killed, network gone) and run again asks the server how much of that
session is durably stored (``QueryWriteStatus``) and sends only the rest.

Cleaning up: a push that fails deletes the PENDING version it created, but only after reading
it back: a commit whose reply was lost may have succeeded, and a READY version is never
deleted here (see ``_settle_failed_push``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import grpc

from modelregistry import _direct_upload
from modelregistry._convert import (
    create_model_request,
    metrics_to_proto,
    model_name,
    params_to_proto,
    request_id,
    set_alias_request,
)
from modelregistry._files import LocalFile, collect_files, media_type, sha256_file
from modelregistry._lineage import detect_git_source
from modelregistry._options import LocalPaths, PushOptions
from modelregistry._transport import (
    Transport,
    is_retryable,
    retry_pause,
    stream_deadline,
    stream_retry_pause,
)
from modelregistry._write_wire import encode_write_request, write_call
from modelregistry.artifact.v1 import artifact_service_pb2, blob_pb2
from modelregistry.cache import Cache
from modelregistry.errors import (
    AlreadyExistsError,
    ConflictError,
    FailedPreconditionError,
    NotFoundError,
    RegistryError,
    from_rpc_error,
)
from modelregistry.metadata.v1 import metadata_service_pb2, model_version_pb2
from modelregistry.progress import NullProgress, Progress

CHUNK_BYTES = 1024 * 1024  # the protocol's maximum; fewer messages cost less CPU per byte
_FIND_BATCH = 10_000  # FindMissingBlobs' limit per call
_STREAM_ATTEMPTS = 5
_CLEANUP_TIMEOUT_S = 5.0  # the deadline of each call that tidies up after a failed push

_log = logging.getLogger("modelregistry")


def push_model(
    transport: Transport, cache: Cache, path: LocalPaths, options: PushOptions
) -> model_version_pb2.ModelVersion:
    """Push the files at ``path`` as a new READY version; see ``Client.push``."""
    report = options.progress or NullProgress()
    paths = [path] if isinstance(path, str | os.PathLike) else list(path)
    files = collect_files(paths)
    workers = options.workers
    model = options.model

    # Create (or check) the model and validate params and metrics first: a bad name or value
    # fails before minutes of hashing.
    _ensure_model(transport, model)
    version_draft = _version_draft(options, Path(paths[0]))
    digests = _hash_files(cache, files, workers, report)

    pending = transport.unary(
        transport.metadata_stub.CreateModelVersion,
        metadata_service_pb2.CreateModelVersionRequest(
            parent=model_name(model), model_version=version_draft, request_id=request_id()
        ),
    )
    manifest = [
        model_version_pb2.ManifestFile(
            path=f.path, sha256=digests[f.path], size_bytes=f.size, media_type=media_type(f.path)
        )
        for f in files
    ]
    commit_sent = False
    try:
        _upload_missing(
            transport,
            cache,
            files,
            digests,
            workers,
            report,
            model,
            pending.name,
            _direct_upload.DirectUploads(options.direct_upload),
        )
        commit_sent = True
        committed = transport.unary(
            transport.metadata_stub.CommitModelVersion,
            metadata_service_pb2.CommitModelVersionRequest(
                name=pending.name, files=manifest, request_id=request_id()
            ),
        )
    except BaseException as failure:
        landed = _settle_failed_push(transport, pending.name, manifest, commit_sent, failure)
        if landed is None:
            raise
        committed = landed
    if options.alias:
        transport.unary(
            transport.metadata_stub.SetAlias,
            set_alias_request(model, options.alias, committed.version, expected_version=None),
        )
    return committed


def _settle_failed_push(
    transport: Transport,
    version: str,
    manifest: list[model_version_pb2.ManifestFile],
    commit_sent: bool,
    failure: BaseException,
) -> model_version_pb2.ModelVersion | None:
    """Clean up after a push that failed; return the version if it in fact succeeded.

    The version is read first and deleted only if it is still ``PENDING`` (and unchanged since
    that read: the delete carries its etag), so nothing half-pushed stays behind while the
    blobs already sent stay in the store for the next attempt. A commit whose reply was lost
    (a deadline, a dropped connection after the server committed) leaves it ``READY`` with our
    manifest: that push succeeded, and the version is returned. If the state cannot be read,
    or the delete fails, the version is left ``PENDING`` (the registry expires abandoned ones)
    and the raised error says so.
    """
    for _ in range(2):  # a second round only if the version changed between read and delete
        try:
            current = transport.unary(
                transport.metadata_stub.GetModelVersion,
                metadata_service_pb2.GetModelVersionRequest(name=version),
                timeout=_CLEANUP_TIMEOUT_S,
            )
        except Exception as error:  # any failure (a closed channel too): leave it, say so
            _add_note(
                failure,
                f"{version} was left PENDING because its state could not be read ({error}); "
                "the registry expires abandoned PENDING versions",
            )
            return None
        if current.state == model_version_pb2.MODEL_VERSION_STATE_READY:
            if commit_sent and isinstance(failure, Exception) and _same_files(current, manifest):
                _log.warning(
                    "push: the commit of %s succeeded although its reply was lost (%s)",
                    version,
                    failure,
                )
                return current
            _add_note(failure, f"{version} is READY nevertheless, and was not deleted")
            return None
        if current.state != model_version_pb2.MODEL_VERSION_STATE_PENDING:
            return None  # deleted or failed meanwhile: nothing of ours to clean up
        try:
            transport.unary(
                transport.metadata_stub.DeleteModelVersion,
                metadata_service_pb2.DeleteModelVersionRequest(
                    name=version, etag=current.etag, request_id=request_id()
                ),
                timeout=_CLEANUP_TIMEOUT_S,
            )
        except ConflictError:
            continue  # it changed since the read (a lost commit landing?): look again
        except Exception as error:
            _add_note(
                failure,
                f"{version} was left PENDING because it could not be deleted ({error}); "
                "the registry expires abandoned PENDING versions",
            )
        return None
    _add_note(failure, f"{version} kept changing and was left as it is")
    return None


def _same_files(
    version: model_version_pb2.ModelVersion, manifest: list[model_version_pb2.ManifestFile]
) -> bool:
    """Whether ``version`` holds exactly the files of ``manifest`` (path, digest, size)."""

    def key(files: Iterable[model_version_pb2.ManifestFile]) -> list[tuple[str, str, int]]:
        return sorted((f.path, f.sha256, f.size_bytes) for f in files)

    return key(version.files) == key(manifest)


def _add_note(failure: BaseException, note: str) -> None:
    """Append ``note`` to what the raised error says: its message for a RegistryError (what
    the CLI prints), a traceback note otherwise."""
    if isinstance(failure, RegistryError):
        failure.message = f"{failure.message}; {note}"
        failure.args = (failure.message,)
    else:
        failure.add_note(note)


# The server's cap on a version's description (metadata/domain/version.py, MAX_CARD_BYTES).
MAX_CARD_BYTES = 65536


def _model_card(first_path: Path) -> str:
    """The ``README.md`` at the top of a pushed folder, as the version's model card ('' if
    there is none, it is not UTF-8 text, or it is over the server's 64 KiB cap)."""
    readme = first_path / "README.md"
    try:
        if not first_path.is_dir() or not readme.is_file():
            return ""
        if readme.stat().st_size > MAX_CARD_BYTES:
            return ""
        return readme.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


def _version_draft(options: PushOptions, first_path: Path) -> model_version_pb2.ModelVersion:
    """The new version's fields; validates params and metrics, reads git lineage if asked."""
    draft = model_version_pb2.ModelVersion(
        description=options.description or _model_card(first_path),
        labels=dict(options.labels or {}),
        params=params_to_proto(options.params),
        metrics=metrics_to_proto(options.metrics),
    )
    if options.lineage:
        source = detect_git_source(first_path.resolve())
        if source is not None:
            draft.lineage.source.repo_url = source.repo_url
            draft.lineage.source.commit = source.commit
            draft.lineage.source.dirty = source.dirty
    return draft


def _hash_files(
    cache: Cache, files: list[LocalFile], workers: int, report: Progress
) -> dict[str, str]:
    """Digest every file, reusing digests of files unchanged since they were last hashed."""
    report.start(sum(f.size for f in files), len(files), "hashing")

    def digest(file: LocalFile) -> tuple[str, str]:
        real_path = file.source.resolve()  # one lstat per path component: do it once
        known = cache.digests.known(real_path, file.stat)
        if known is None:
            known = sha256_file(file.source)
            cache.digests.remember(real_path, file.stat, known)
        report.advance(file.size)
        report.file_done(file.path)
        return file.path, known

    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="modelregistry-hash") as pool:
            return dict(pool.map(digest, files))
    finally:
        report.finish()


def _ensure_model(transport: Transport, model: str) -> None:
    """Create the model on its first push."""
    try:
        transport.unary(
            transport.metadata_stub.GetModel,
            metadata_service_pb2.GetModelRequest(name=model_name(model)),
        )
    except NotFoundError:
        with contextlib.suppress(AlreadyExistsError):  # a concurrent first push won the race
            transport.unary(
                transport.metadata_stub.CreateModel, create_model_request(model, "", None)
            )


def _upload_missing(
    transport: Transport,
    cache: Cache,
    files: list[LocalFile],
    digests: dict[str, str],
    workers: int,
    report: Progress,
    model: str,
    version: str,
    direct: _direct_upload.DirectUploads,
) -> None:
    """Upload the blobs the store lacks, each once, in parallel, for the PENDING ``version``
    (``models/{model}/versions/{n}``): straight to the object store where the registry offers
    it (``_direct_upload.py``), else through ``Write``."""
    sources: dict[str, LocalFile] = {}
    for file in files:
        sources.setdefault(digests[file.path], file)
    refs = [blob_pb2.BlobRef(sha256=sha, size_bytes=f.size) for sha, f in sources.items()]
    missing: list[blob_pb2.BlobRef] = []
    for start in range(0, len(refs), _FIND_BATCH):
        answer = transport.unary(
            transport.artifact_stub.FindMissingBlobs,
            artifact_service_pb2.FindMissingBlobsRequest(blobs=refs[start : start + _FIND_BATCH]),
        )
        missing.extend(answer.missing_blobs)

    uploads = [
        _BlobUpload(transport, cache, sources[ref.sha256], ref.sha256, version, report, direct)
        for ref in missing
    ]
    # Ask where each upload stands first, so the bar's total is what will actually be sent; in
    # parallel, as that is a round trip per blob. (Results are drained to re-raise errors.)
    with ThreadPoolExecutor(workers, thread_name_prefix="modelregistry-upload") as pool:
        list(pool.map(_BlobUpload.prepare, uploads))
    report.start(sum(u.remaining for u in uploads), len(uploads), f"pushing {model}")
    try:
        # finish() only once every worker has stopped reporting (the pool's exit waits).
        with ThreadPoolExecutor(workers, thread_name_prefix="modelregistry-upload") as pool:
            list(pool.map(_BlobUpload.run, uploads))
    finally:
        report.finish()


@dataclass(eq=False)
class _BlobUpload:
    """One blob's resumable upload: find or create its session, then stream the rest."""

    transport: Transport
    cache: Cache
    file: LocalFile
    sha256: str
    version: str  # the PENDING version the upload is for (the server checks we may write it)
    report: Progress
    direct: _direct_upload.DirectUploads
    session: str = ""
    offset: int = 0
    complete: bool = False
    # Where to PUT the whole file, if the registry offered it for this session.
    target: blob_pb2.DirectUpload | None = None
    # Bytes of this file the progress report has been told about: a fallback from a direct
    # upload, or a resumed Write, re-sends bytes without counting them twice.
    reported: int = 0

    @property
    def remaining(self) -> int:
        """Bytes still to send."""
        return 0 if self.complete else self.file.size - self.offset

    def prepare(self) -> None:
        """Resume the session a previous push left, or open a new one."""
        session = self.cache.uploads.session(self.sha256, self.file.size)
        if session is not None:
            self.session = session
            try:
                self._refresh_offset()
                self.reported = self.offset  # the progress total counts what is left
                return
            except NotFoundError:  # expired or swept: start over
                self.cache.uploads.drop(self.sha256)
        self._open_session()
        self.reported = self.offset

    def _open_session(self) -> None:
        session = self.transport.unary(
            self.transport.artifact_stub.CreateUploadSession,
            artifact_service_pb2.CreateUploadSessionRequest(
                blob=blob_pb2.BlobRef(sha256=self.sha256, size_bytes=self.file.size),
                request_id=request_id(),
                model_version=self.version,
                direct_upload=self.direct.enabled,
            ),
        )
        self.session = session.name
        self.offset = session.committed_size
        self.complete = session.complete
        self.target = None
        if session.HasField("direct_upload") and not self.complete:
            if _direct_upload.usable(session.direct_upload, self.sha256):
                self.target = session.direct_upload
            else:
                self.direct.disable("the registry's upload URL is not one for this file")
        if not self.complete:
            self.cache.uploads.save(self.sha256, self.session, self.file.size)

    def _advance_to(self, position: int) -> None:
        """Report the bytes up to ``position`` of the file that were not reported yet."""
        if position > self.reported:
            self.report.advance(position - self.reported)
            self.reported = position

    def _put_direct(self) -> None:
        """Try the direct upload; on any failure, leave ``complete`` False for Write."""
        target = self.target
        self.target = None  # one try per session
        if target is None or not self.direct.enabled or self.offset:
            return
        failure = ""
        try:
            source = Path(self.file.source)
            status = _direct_upload.put(target, source, self.file.size, self._advance_to)
        except OSError as exc:
            # Not necessarily a failure: S3 answers 412 (the blob is there already, another
            # push stored it) before reading the body and closes the connection, which the
            # sender may see as a broken pipe. Whether the blob is stored, finishing tells.
            failure = f"the object store did not take the upload: {exc}"
        else:
            if status not in (200, 412):  # 412: the blob is there already (another push)
                self.direct.disable(f"the object store answered HTTP {status}")
                return
        try:
            session = self.transport.unary(
                self.transport.artifact_stub.FinishDirectUpload,
                artifact_service_pb2.FinishDirectUploadRequest(upload_session=self.session),
            )
        except FailedPreconditionError as exc:  # e.g. not stored after all: use Write
            self.direct.disable(failure or exc.message)
            return
        self.offset = session.committed_size
        self.complete = session.complete

    def run(self) -> None:
        """Stream the bytes from ``offset`` on; on a dropped connection, resume where it stopped."""
        self._put_direct()
        attempt = 0
        while not self.complete:
            try:
                response = write_call(self.transport.artifact_channel)(
                    self._requests(),
                    timeout=stream_deadline(self.remaining),
                    metadata=self.transport.metadata,
                )
            except grpc.RpcError as exc:
                error = from_rpc_error(exc, self.transport.target)
                attempt += 1
                if isinstance(error, NotFoundError):  # the session expired meanwhile
                    self.cache.uploads.drop(self.sha256)
                    self._open_session()
                    continue
                if not is_retryable(error) or attempt >= _STREAM_ATTEMPTS:
                    raise error from None
                # A dropped connection, or the registry's limit on concurrent streams: wait (at
                # least as long as the server asked), then continue from what it has (another
                # replica's answer is as good: the session's state is in the database).
                pause = retry_pause(error, stream_retry_pause(attempt))
                _log.warning(
                    "upload of %s interrupted (%s); resuming from the committed offset in %.1fs",
                    self.file.path, error.message, pause,
                )  # fmt: skip
                time.sleep(pause)
                self._refresh_offset()
                continue
            self.offset = response.committed_size
            self.complete = response.committed_size == self.file.size
        self.cache.uploads.drop(self.sha256)
        self.report.file_done(self.file.path)

    def _refresh_offset(self) -> None:
        status = self.transport.unary(
            self.transport.artifact_stub.QueryWriteStatus,
            artifact_service_pb2.QueryWriteStatusRequest(upload_session=self.session),
        )
        self.offset = status.committed_size
        self.complete = status.complete

    def _requests(self) -> Iterator[bytes]:
        """The Write stream, each message encoded from the file's bytes (_write_wire.py)."""
        size = self.file.size
        with open(self.file.source, "rb") as handle:
            handle.seek(self.offset)
            position = self.offset
            first = True
            while True:
                data = handle.read(min(CHUNK_BYTES, size - position))
                position += len(data)
                last = position >= size
                yield encode_write_request(
                    self.session if first else "", position - len(data), last, data
                )
                self._advance_to(position)
                first = False
                if last:
                    return
                if not data:
                    raise RegistryError(f"{self.file.source} shrank while it was being pushed")
