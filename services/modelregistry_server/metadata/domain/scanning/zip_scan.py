"""Zip archives of pickles: PyTorch's checkpoint format (``torch.save`` since 1.6) and kin.

A torch checkpoint (``.pt``, ``.pth``, ``.bin``, ``.ckpt``) is a zip holding
``<name>/data.pkl``, the object graph as a pickle, and ``<name>/data/<key>``, the raw tensor
storages. Only pickles can run code, so every member whose name ends in ``.pkl`` or
``.pickle`` is scanned as one (TorchScript's ``constants.pkl`` too), duplicates included: a
loader may pick another of two same-named entries than ``zipfile`` does. Storage members are
never read; ``zipfile`` reads the central directory (in one read, which ``CappedFile``
bounds) and each pickle member's header and bytes.

An archive ``zipfile`` cannot open (a broken central directory, encryption, an unknown
compression) is ERROR (``malformed``): torch's own zip reader is more lenient, so such a file
may still load. An archive without a pickle in it (a ``.npz``, a Keras v3 file) is
UNSCANNED: nothing in it is checked. TorchScript code files (``code/*.py``) are not analysed.
"""

from __future__ import annotations

import zipfile
from typing import BinaryIO, cast

from modelregistry_server.metadata.domain.scanning.model import FindingKind, FindingLog, ScanLimits
from modelregistry_server.metadata.domain.scanning.pickle_scan import scan_pickle_stream
from modelregistry_server.metadata.domain.scanning.policy import ImportPolicy
from modelregistry_server.metadata.domain.scanning.reader import CappedFile, LimitReached

PICKLE_MEMBER_SUFFIXES = (".pkl", ".pickle")
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError)
_READ_ERRORS = (*_ZIP_ERRORS, EOFError, ValueError)


def scan_zip(
    raw: BinaryIO, size: int, policy: ImportPolicy, limits: ScanLimits, log: FindingLog
) -> bool:
    """Scan every pickle member of the archive in ``raw`` (``size`` bytes), adding findings.

    Returns:
        False if the archive holds no pickle (nothing was scanned), else True.
    """
    try:
        archive = zipfile.ZipFile(cast(BinaryIO, CappedFile(raw, size, limits.max_single_read)))
    except _READ_ERRORS as exc:
        log.add(FindingKind.MALFORMED, f"not a zip archive zipfile can read: {exc}")
        return True
    except LimitReached as exc:
        log.add(FindingKind.LIMIT_EXCEEDED, f"zip central directory: {exc.detail}")
        return True
    with archive:
        members = archive.infolist()
        if len(members) > limits.max_zip_members:
            detail = f"{len(members)} members, more than {limits.max_zip_members}"
            log.add(FindingKind.LIMIT_EXCEEDED, detail)
            return True
        pickles = [
            member
            for member in members
            if member.filename.lower().endswith(PICKLE_MEMBER_SUFFIXES) and not member.is_dir()
        ]
        if len(pickles) > limits.max_pickle_members:
            detail = f"{len(pickles)} pickle members, more than {limits.max_pickle_members}"
            log.add(FindingKind.LIMIT_EXCEEDED, detail)
        for member in pickles[: limits.max_pickle_members]:
            _scan_member(archive, member, policy, limits, log)
        return bool(pickles)


def _scan_member(
    archive: zipfile.ZipFile,
    member: zipfile.ZipInfo,
    policy: ImportPolicy,
    limits: ScanLimits,
    log: FindingLog,
) -> None:
    where = f"{member.filename}: "
    try:
        with archive.open(member) as stream:
            scan_pickle_stream(stream, member.file_size, policy, limits, log, where)
    except _READ_ERRORS as exc:
        log.add(FindingKind.MALFORMED, f"{where}cannot be read from the archive: {exc}")
    except LimitReached as exc:
        log.add(FindingKind.LIMIT_EXCEEDED, f"{where}{exc.detail}")
