"""Shared helper of the tests of saved warnings: every :class:`lungai.errors.InputNote` made during a test."""

from __future__ import annotations


def notes_made(monkeypatch) -> list:
    """Every InputNote (of any subclass) created from now on, as made - with its ``without_ids``."""
    from lungai.errors import InputNote

    made, init = [], InputNote.__init__

    def record(self, text, *args, **kwargs):
        init(self, text, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(InputNote, "__init__", record)
    return made
