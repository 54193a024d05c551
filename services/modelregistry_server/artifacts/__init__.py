"""ArtifactService: content-addressed model files in MinIO or a local directory.

Upload sessions and their resumable state: ``app/uploads.py`` (rules in ``domain/upload.py``);
reading, listing and deleting blobs: ``app/blobs.py``; the stores: ``adapters/s3.py`` and
``adapters/localfs.py`` (both behind the ``BlobStore`` port, with one contract test); session
rows and the blob index: ``adapters/postgres/``.
"""
