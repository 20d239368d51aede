"""The structured fields a log line about a message, an action or a cycle carries.

A log site passes them with ``extra=``; the JSON formatter (``--log-format json``) emits every
field of :data:`FIELDS` a record has, beside the free-text ``message``, so a collector can
filter by Message-ID or action without parsing sentences. Text logs ignore them. They travel
in one record attribute, :data:`ATTRIBUTE`, because some names (``thread``) are taken by
:class:`logging.LogRecord` itself.

>>> message(message_id="a@b", uid=7, folder="INBOX")
{'mailhelper_fields': {'message_id': 'a@b', 'uid': 7, 'folder': 'INBOX'}}

A message's thread may be given as a function (a look-up in the state): only a formatter that
shows the fields calls it, when it formats the line (:func:`of`), so a text log, which would
throw the answer away, costs no look-up a message.

>>> from types import SimpleNamespace as Record
>>> of(Record(**message(uid=7, thread=lambda: 12)))
{'uid': 7, 'thread': 12}
>>> of(Record(**message(uid=7, thread=lambda: None)))
{'uid': 7}
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from mailhelper.model.values import Action

#: The record attribute the fields travel in.
ATTRIBUTE = "mailhelper_fields"

#: Every structured field, in the order the JSON formatter writes them.
FIELDS = ("message_id", "uid", "folder", "action", "action_kind", "thread", "recipients",
          "counts")


def message(
    *, message_id: str | None = None, uid: int | None = None, folder: str | None = None,
    thread: int | Callable[[], int | None] | None = None,
) -> dict[str, Any]:
    """The fields of a line about one incoming message; unknown ones are left out (a
    ``thread`` function's None answer too, when :func:`of` calls it)."""
    fields: dict[str, Any] = {"message_id": message_id, "uid": uid, "folder": folder,
                              "thread": thread}
    return {ATTRIBUTE: {k: v for k, v in fields.items() if v is not None}}


def action(
    action: Action, *, message_id: str | None = None, recipients: Iterable[str] | None = None,
) -> dict[str, Any]:
    """The fields of a line about one outgoing action: its key, kind, thread, the
    recipients (the envelope when known, else the action's own) and, when known, the
    Message-ID of its mail."""
    fields: dict[str, Any] = {
        "action": action.key,
        "action_kind": action.kind.value,
        "recipients": list(recipients) if recipients is not None
        else [p.email for p in action.recipients],
    }
    if action.thread_id is not None:
        fields["thread"] = action.thread_id
    if message_id is not None:
        fields["message_id"] = message_id
    return {ATTRIBUTE: fields}


def cycle(counts: Mapping[str, int]) -> dict[str, Any]:
    """The fields of the line that sums up a cycle."""
    return {ATTRIBUTE: {"counts": dict(counts)}}


def of(record: object) -> dict[str, Any]:
    """The structured fields a log record carries, in :data:`FIELDS` order."""
    fields = getattr(record, ATTRIBUTE, None)
    if not isinstance(fields, Mapping):
        return {}
    found = {}
    for name in FIELDS:
        value = fields.get(name)
        if callable(value):  # a look-up left to the formatter (see the module's text)
            value = value()
        if value is not None:
            found[name] = value
    return found
