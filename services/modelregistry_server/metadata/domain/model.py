"""The Model resource and the rules its fields obey."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from modelregistry_server.metadata.domain.errors import InvalidArgument, quoted

MODEL_ID_PATTERN = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
MODEL_ID_RULE = (
    "a model id is 1 to 63 characters: lowercase letters, digits and hyphens, starting with "
    "a letter and not ending with a hyphen (like a DNS label), e.g. 'fraud-detector'"
)
LABEL_KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_.-]{0,62}$")
MAX_LABELS = 64
MAX_LABEL_VALUE = 256
MAX_DESCRIPTION_BYTES = 16384
MAX_OWNER = 256
MODEL_NAME_PREFIX = "models/"


@dataclass(frozen=True)
class Model:
    """A named model; versions hang below it.

    ``etag`` changes on every write; ``name`` is ``models/{model_id}``.
    """

    model_id: str
    uid: str
    description: str
    labels: Mapping[str, str]
    owner: str
    create_time: datetime
    update_time: datetime
    etag: str

    @property
    def name(self) -> str:
        """The resource name, ``models/{model_id}``."""
        return MODEL_NAME_PREFIX + self.model_id


@dataclass(frozen=True)
class ModelDraft:
    """What a caller may set on a model (create, or the fields an update touches)."""

    description: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    owner: str = ""


UPDATABLE_MODEL_FIELDS = frozenset({"description", "labels", "owner"})


def validate_model_id(model_id: str, field_name: str = "model_id") -> str:
    """Return ``model_id`` if it follows the grammar, else raise ``InvalidArgument``."""
    if not model_id:
        raise InvalidArgument(field_name, "is required; " + MODEL_ID_RULE)
    if not MODEL_ID_PATTERN.fullmatch(model_id):
        raise InvalidArgument(field_name, f"{quoted(model_id)} is not a valid id; {MODEL_ID_RULE}")
    return model_id


def parse_model_name(name: str, field_name: str = "name") -> str:
    """Return the model id in a ``models/{model}`` resource name."""
    if not name.startswith(MODEL_NAME_PREFIX):
        raise InvalidArgument(
            field_name, f"{quoted(name)} is not a model name; expected 'models/{{model}}'"
        )
    return validate_model_id(name[len(MODEL_NAME_PREFIX) :], field_name)


def validate_draft(draft: ModelDraft, prefix: str = "model") -> None:
    """Check the user-settable fields of a model."""
    if len(draft.description.encode()) > MAX_DESCRIPTION_BYTES:
        raise InvalidArgument(
            f"{prefix}.description", f"is longer than {MAX_DESCRIPTION_BYTES} bytes"
        )
    if len(draft.owner) > MAX_OWNER:
        raise InvalidArgument(f"{prefix}.owner", f"is longer than {MAX_OWNER} characters")
    validate_labels(draft.labels, f"{prefix}.labels")


def validate_labels(labels: Mapping[str, str], field_name: str) -> None:
    """Check label count, key grammar and value length."""
    if len(labels) > MAX_LABELS:
        raise InvalidArgument(field_name, f"has {len(labels)} labels; at most {MAX_LABELS} allowed")
    for key, value in labels.items():
        if not LABEL_KEY_PATTERN.fullmatch(key):
            # The field is the map, not "labels.<key>": the key may be anything, of any length.
            raise InvalidArgument(
                field_name,
                f"label key {quoted(key)} must be 1 to 63 characters of lowercase letters, "
                "digits, '_', '.' or '-', starting with a letter",
            )
        if len(value) > MAX_LABEL_VALUE:
            raise InvalidArgument(
                f"{field_name}.{key}", f"label value is longer than {MAX_LABEL_VALUE} characters"
            )
