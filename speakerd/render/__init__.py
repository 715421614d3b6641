"""Rendering decoded BGP messages: one text line, or one JSON object, per message.

:mod:`.record` is what a decoded message is (message or error, where and
when it was seen); :mod:`.fields` turns messages into plain JSON-ready dicts
with stable field names; :mod:`.text` makes the one-line form.  Used by
``speakerd decode`` and reusable by logs and traces.
"""
from .fields import message_fields, record_fields
from .record import Record
from .text import message_text, record_line

__all__ = ["Record", "message_fields", "record_fields", "message_text", "record_line"]
