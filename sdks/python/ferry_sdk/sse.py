"""Server-Sent Events as Ferry sends them: parsed line by line (the WHATWG rules), so a
stream can be followed and resumed from the last id seen."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Iterator


@dataclass
class Message:
    id: str | None = None
    data: str = ""


@dataclass
class Parser:
    """Feeds lines in, gives whole messages out."""

    _data: list[str] = field(default_factory=list)
    _id: str | None = None

    def line(self, line: str) -> Message | None:
        if line == "":
            if not self._data and self._id is None:
                return None
            message = Message(self._id, "\n".join(self._data))
            self._data, self._id = [], None
            return message
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "id":
            self._id = value
        return None


def messages(lines: Iterable[str]) -> Iterator[Message]:
    """The messages of a stream's lines (without their line ends)."""
    parser = Parser()
    for line in lines:
        message = parser.line(line)
        if message is not None:
            yield message
