"""Version references (``name``, ``name@alias``, ``name:3``, uid, ...): the one client-side parser.

The server is the authority on what a reference means; this parser exists so offline mode, the
cache's ref records and the CLI can take a reference apart without asking it. It must accept
exactly the strings the server's ``parse_ref`` (``metadata/domain/version.py``) accepts:
``tests/support/refs.py`` holds the shared table both parsers are tested against. Nothing here
does I/O.
"""

from __future__ import annotations

import re
from typing import Literal, NamedTuple

from modelregistry.errors import InvalidArgumentError

RefKind = Literal["latest", "alias", "version", "uid"]

MODEL_PREFIX = "models/"
# Version numbers are BIGINT on the server: 1 .. 2**63 - 1.
MAX_VERSION = 2**63 - 1
# The server's grammar for model and alias ids (metadata/v1/model.proto), with the same
# re.match semantics as the server's validators, so both sides accept the same ids.
_ID = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# ASCII digits only: str.isdigit() and int() also take '³' or the full-width digits.
_DIGITS = re.compile(r"[0-9]+")
_REF_FORMS = "'name', 'name@alias', 'name:3', 'name/versions/3', 'models/name/...' or a version uid"


class ParsedRef(NamedTuple):
    """A version reference taken apart: ``(model, kind, value)``.

    ``kind`` is ``"latest"`` (``value`` empty), ``"alias"`` (``value`` the alias id),
    ``"version"`` (``value`` the decimal number) or ``"uid"`` (``model`` empty, ``value`` the
    lowercase uuid).
    """

    model: str
    kind: RefKind
    value: str

    @property
    def canonical(self) -> str:
        """One spelling per reference (``m``, ``m@prod``, ``m:3``, uid): a stable cache key."""
        if self.kind == "alias":
            return f"{self.model}@{self.value}"
        if self.kind == "version":
            return f"{self.model}:{self.value}"
        if self.kind == "uid":
            return self.value
        return self.model


def parse_version_number(text: str) -> int | None:
    """The version number ``text`` spells, or None if it is not one.

    A version number is ASCII digits (leading zeros allowed) whose value is between 1 and
    2**63 - 1, as on the server.
    """
    # int() refuses strings of over 4300 digits (ValueError): never more than 19 significant
    # digits reach it.
    if not _DIGITS.fullmatch(text) or len(text.lstrip("0")) > len(str(MAX_VERSION)):
        return None
    number = int(text.lstrip("0") or "0")
    return number if 1 <= number <= MAX_VERSION else None


def parse_ref(ref: str) -> ParsedRef:
    """Parse a version reference without asking the server (offline mode, cache keys, CLI).

    Accepts the same forms as ``ResolveModelVersion``: ``name`` (latest READY), ``name@alias``,
    ``name:3``, ``name/versions/3``, any of those prefixed with ``models/``, and a version uid.

    Raises:
        InvalidArgumentError: reason ``REFERENCE_INVALID``, as the server would.
    """
    text = ref.strip().removeprefix(MODEL_PREFIX)
    if not text:
        raise _bad_ref(ref, "it is empty")
    if _UUID.fullmatch(text.lower()):
        # The server tries a uuid-shaped ref as a version uid first; offline we can only do that.
        return ParsedRef("", "uid", text.lower())
    if "@" in text:
        model, alias = text.split("@", 1)
        return ParsedRef(_ref_id(ref, model, "model"), "alias", _ref_id(ref, alias, "alias"))
    for separator in ("/versions/", ":"):
        if separator in text:
            model, digits = text.split(separator, 1)
            number = parse_version_number(digits)
            if number is None:
                raise _bad_ref(
                    ref, f"version number {digits!r} must be an integer from 1 to {MAX_VERSION}"
                )
            return ParsedRef(_ref_id(ref, model, "model"), "version", str(number))
    return ParsedRef(_ref_id(ref, text, "model"), "latest", "")


def _ref_id(ref: str, value: str, what: str) -> str:
    if not _ID.fullmatch(value):
        raise _bad_ref(
            ref,
            f"{what} id {value!r} must be 1-63 lowercase letters, digits or '-', "
            "starting with a letter",
        )
    return value


def _bad_ref(ref: str, problem: str) -> InvalidArgumentError:
    return InvalidArgumentError(
        f"{ref!r} is not a version reference ({problem}); use {_REF_FORMS}",
        reason="REFERENCE_INVALID",
        metadata={"field": "ref"},
    )
