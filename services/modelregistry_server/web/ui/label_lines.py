"""Labels as people type them in the UI's forms: ``key=value`` lines, the same for a model's
labels and a version's (one parser, so both forms accept and refuse the same text)."""

from __future__ import annotations

# The registry's own limit (metadata/domain/model.py); checked here too, so that a form with
# too many lines is refused with a message about the form, before any call.
MAX_LABELS = 64


class FormError(ValueError):
    """What the user sent cannot be sent to the server as it is; the message says why."""


def parse_labels(text: str) -> dict[str, str]:
    """``key=value`` lines as a dict: blank lines skipped, spaces around keys and values
    dropped; the registry checks the keys and values themselves.

    Raises:
        FormError: A line has no ``=`` or an empty key, a key repeats, or there are too many;
            the message names the line.
    """
    labels: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key:
            shown = line.strip()
            shown = shown if len(shown) <= 80 else shown[:77] + "..."
            raise FormError(
                f"Labels, line {number}: write each label as key=value, found {shown!r}."
            )
        if key in labels:
            raise FormError(f"Labels, line {number}: the key {key!r} is given twice.")
        labels[key] = value.strip()
    if len(labels) > MAX_LABELS:
        raise FormError(f"At most {MAX_LABELS} labels.")
    return labels
