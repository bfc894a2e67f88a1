"""Where each key of a TOML text sits (1-based line), so a finding can say `config.toml:12`.

Parsers (tomlkit, tomllib) give values, not positions. This scanner only locates: it reads table headers and
`key = …` lines, skips over multi-line strings and arrays, and never interprets a value. It is run on text a
real parser has already accepted, so it does not need to report errors of its own.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

KeyPath = tuple[str, ...]

_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "\\": "\\"}


def split_key(text: str) -> KeyPath:
    """A TOML key (bare, quoted or dotted) as its parts.

    >>> split_key('model_providers."my.id" . base_url')
    ('model_providers', 'my.id', 'base_url')
    >>> split_key("projects.'/home/u/x'")
    ('projects', '/home/u/x')
    """
    parts: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in " \t.":
            i += 1
            continue
        if ch in "\"'":
            value, i = _quoted(text, i)
            parts.append(value)
            continue
        start = i
        while i < n and text[i] not in " \t.":
            i += 1
        parts.append(text[start:i])
    return tuple(parts)


def _quoted(text: str, i: int) -> tuple[str, int]:
    """A quoted key starting at text[i]; returns its value and the index after the closing quote."""
    quote = text[i]
    out: list[str] = []
    i += 1
    while i < len(text) and text[i] != quote:
        if quote == '"' and text[i] == "\\" and i + 1 < len(text):
            out.append(_ESCAPES.get(text[i + 1], text[i + 1]))
            i += 2
            continue
        out.append(text[i])
        i += 1
    return "".join(out), i + 1


def _outside_quotes(line: str, target: str) -> int:
    """Index of the first `target` character on this line that is not inside a quoted string, or -1."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == target:
            return i
    return -1


def _key_end(line: str) -> int:
    """Index of the `=` that ends the key on this line, or -1."""
    return _outside_quotes(line, "=")


def _header_end(line: str) -> int:
    """Index of the `]` closing a table header, or -1."""
    return _outside_quotes(line, "]")


class _ValueScanner:
    """Follows strings and brackets across lines so the next real key line is recognised."""

    def __init__(self) -> None:
        self.multiline = ""  # '"""' or "'''" while inside a multi-line string
        self.depth = 0  # open [ and { of a value

    @property
    def continuing(self) -> bool:
        return bool(self.multiline) or self.depth > 0

    def feed(self, text: str) -> None:
        i, n = 0, len(text)
        while i < n:
            if self.multiline:
                end = text.find(self.multiline, i)
                if end < 0:
                    return
                self.multiline, i = "", end + 3
                continue
            ch = text[i]
            if ch == "#":
                return
            if text.startswith('"""', i) or text.startswith("'''", i):
                self.multiline, i = text[i : i + 3], i + 3
            elif ch in "\"'":
                i = self._skip_string(text, i)
            else:
                self.depth += (ch in "[{") - (ch in "]}")
                i += 1

    @staticmethod
    def _skip_string(text: str, i: int) -> int:
        quote, i = text[i], i + 1
        while i < len(text) and text[i] != quote:
            i += 2 if (quote == '"' and text[i] == "\\") else 1
        return i + 1


@dataclass(frozen=True)
class _Statement:
    """A header or key/value line outside multi-line values: where it starts and what it defines."""

    number: int  # 1-based line number
    start: int  # character offset of the line
    header: KeyPath | None = None  # the table a `[x]` / `[[x]]` header opens
    key: KeyPath = ()  # the (dotted) key a `key = value` line sets, relative to its table


def _statements(text: str) -> Iterator[_Statement]:
    """Every header and key/value line of a TOML text, skipping comments, blank lines and the inside of
    multi-line strings and arrays. Only LF ends a TOML line (U+2028 may sit inside a string)."""
    scanner = _ValueScanner()
    offset = 0
    for number, raw in enumerate(text.split("\n"), start=1):
        start, offset = offset, offset + len(raw) + 1
        if scanner.continuing:
            scanner.feed(raw)
            continue
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            inner = line[2:] if line.startswith("[[") else line[1:]
            end = _header_end(inner)
            yield _Statement(number, start, header=split_key(inner[: end if end >= 0 else len(inner)]))
            continue
        eq = _key_end(line)
        if eq >= 0:
            yield _Statement(number, start, key=split_key(line[:eq]))
            scanner.feed(line[eq + 1 :])


def key_lines(text: str) -> dict[KeyPath, int]:
    """The 1-based line on which every table and key path is defined.

    >>> doc = 'model = "m"\\n\\n[model_providers.local]\\nname = "L"\\nhttp_headers = { A = "b" }\\n'
    >>> key_lines(doc)[("model_providers", "local", "name")]
    4
    >>> key_lines(doc)[("model_providers", "local")]
    3
    >>> key_lines("a = '''\\nb = 1\\n'''\\nc = 2\\n")
    {('a',): 1, ('c',): 4}
    >>> key_lines('a = "x\\u2028y"\\nb = 1\\n')  # only LF ends a line, as in sections()
    {('a',): 1, ('b',): 2}
    """
    found: dict[KeyPath, int] = {}
    table: KeyPath = ()
    for line in _statements(text):
        if line.header is not None:
            table = line.header
            found.setdefault(table, line.number)
            continue
        path = (*table, *line.key)
        for end in range(len(table) + 1, len(path) + 1):  # a dotted key also defines its parents here
            found.setdefault(path[:end], line.number)
    return found


def line_of(lines: Mapping[KeyPath, int], path: KeyPath) -> int | None:
    """The line of `path`, or of its nearest defined parent (a key inside an inline table has no line of its own).

    >>> line_of({("a",): 3}, ("a", "b", "c"))
    3
    >>> line_of({}, ("a",)) is None
    True
    """
    for end in range(len(path), 0, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None


def sections(text: str) -> list[tuple[int, KeyPath | None]]:
    """Where each table section starts: (character offset, header key path); the first entry is the part
    before the first header (offset 0, path None), even when it is empty.

    A section runs from its header line to the next header line, so comments just above a header belong to
    the section before it (as TOML editors attach them).

    >>> doc = "a = 1\\n[t]\\nb = '''\\n[not a header]\\n'''\\n[[arr.x]]\\n"
    >>> sections(doc)
    [(0, None), (6, ('t',)), (37, ('arr', 'x'))]
    """
    found: list[tuple[int, KeyPath | None]] = [(0, None)]
    found += [(line.start, line.header) for line in _statements(text) if line.header is not None]
    return found
