"""Version references both parsers must agree on: the SDK's and the server's.

The SDK parses references itself for offline mode, its cache keys and the CLI; the server is
the authority. ``tests/unit/test_refs_parity.py`` runs both parsers over these tables, so a
string one side accepts and the other rejects fails a test.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

UID = "0f8fad5b-d9cb-469f-a165-70867728950e"
INT64_MAX = 2**63 - 1

Kind = Literal["latest", "alias", "version", "uid"]


class AcceptedRef(NamedTuple):
    """A reference both sides accept, what it parses to, and the SDK's one spelling of it.

    ``value`` is empty for ``latest``, the alias id, the decimal version number, or the
    lowercase uid (then ``model`` is empty).
    """

    ref: str
    model: str
    kind: Kind
    value: str
    canonical: str


ACCEPTED_REFS: list[AcceptedRef] = [
    AcceptedRef("resnet", "resnet", "latest", "", "resnet"),
    AcceptedRef("models/resnet", "resnet", "latest", "", "resnet"),
    AcceptedRef("  resnet  ", "resnet", "latest", "", "resnet"),
    AcceptedRef("a", "a", "latest", "", "a"),
    AcceptedRef("fraud-detector-2", "fraud-detector-2", "latest", "", "fraud-detector-2"),
    AcceptedRef("a" * 63, "a" * 63, "latest", "", "a" * 63),
    AcceptedRef("resnet@production", "resnet", "alias", "production", "resnet@production"),
    AcceptedRef("models/resnet@production", "resnet", "alias", "production", "resnet@production"),
    AcceptedRef("resnet@canary-2", "resnet", "alias", "canary-2", "resnet@canary-2"),
    AcceptedRef("resnet:3", "resnet", "version", "3", "resnet:3"),
    AcceptedRef("resnet:007", "resnet", "version", "7", "resnet:7"),
    AcceptedRef("resnet:3\n", "resnet", "version", "3", "resnet:3"),  # the ref is stripped
    AcceptedRef("resnet/versions/3", "resnet", "version", "3", "resnet:3"),
    AcceptedRef("models/resnet/versions/12", "resnet", "version", "12", "resnet:12"),
    AcceptedRef("models/resnet:12", "resnet", "version", "12", "resnet:12"),
    AcceptedRef(f"resnet:{INT64_MAX}", "resnet", "version", str(INT64_MAX), f"resnet:{INT64_MAX}"),
    AcceptedRef(
        f"resnet:000{INT64_MAX}", "resnet", "version", str(INT64_MAX), f"resnet:{INT64_MAX}"
    ),
    AcceptedRef(UID, "", "uid", UID, UID),
    AcceptedRef(UID.upper(), "", "uid", UID, UID),
    AcceptedRef(f"models/{UID}", "", "uid", UID, UID),
]

REJECTED_REFS: list[str] = [
    "",
    # "$" in a pattern also matches before a final newline: every rule uses fullmatch.
    # (Whitespace around the whole reference is stripped first, on both sides.)
    "m\n@prod",
    "m@prod\n@x",
    "m\n:3",
    "   ",
    "models/",
    "Resnet",
    "resnet-",
    "1resnet",
    "res_net",
    "a" * 64,
    "models/models/resnet",
    "resnet@",
    "@production",
    "resnet@Prod",
    "resnet@prod@x",
    "resnet@prod:3",
    "resnet:",
    "resnet:0",
    "resnet:000",
    "resnet:-1",
    "resnet:+1",
    "resnet:1.5",
    "resnet:1_0",  # int() reads this as 10
    "resnet: 3",  # int() strips the blank
    "resnet:x",
    "resnet:\uff13",  # full-width digit: str.isdigit() and int() say yes, ASCII digits only
    "resnet:²",  # superscript: str.isdigit() says yes
    "resnet:٣",  # Arabic-Indic digit
    "resnet/versions/\uff13",
    f"resnet:{INT64_MAX + 1}",  # beyond a BIGINT
    f"resnet/versions/{10**30}",
    "resnet:" + "9" * 5000,  # int() alone raises ValueError beyond 4300 digits
    "resnet:3:4",
    "resnet/versions/",
    "resnet/versions/abc",
    "resnet/versions/3/files",
    "resnet/aliases/prod",
    "resnet :3",
    f"{UID}x",
]

# Version numbers alone, as in ``models/{model}/versions/{n}`` names.
ACCEPTED_VERSION_NUMBERS: list[tuple[str, int]] = [
    ("1", 1),
    ("3", 3),
    ("007", 7),
    (str(INT64_MAX), INT64_MAX),
    ("0" * 5000 + "7", 7),  # int() alone refuses over 4300 digits
]

REJECTED_VERSION_NUMBERS: list[str] = [
    "",
    "0",
    "00",
    "-1",
    "+1",
    " 1",
    "1 ",
    "1\n",
    "1_0",
    "1.0",
    "\uff13",  # full-width 3
    "²",
    "٣",
    str(INT64_MAX + 1),
    str(10**30),
    "1" * 5000,  # int() alone raises ValueError beyond 4300 digits
]
