"""Surgical edits of a TOML text with tomlkit: set or remove a few keys, keep every other byte.

The rule this module enforces is the one users care about: the keys localcodex owns change, and nothing
else does (comments, order, spacing, quoting, unrelated tables). tomlkit does the heavy lifting; the few
places where its defaults would move things around are handled here:

* a new top-level key goes right after the last existing top-level key, not after the comment that
  introduces the first table (tomlkit's default would detach that comment from its table);
* new tables get a blank line before them and never glue onto the next table;
* a file written with CRLF line endings keeps them for the new lines too.

Every edit is checked afterwards: the new text is parsed again and must equal the old document with exactly
the requested changes. If tomlkit ever renders something else, the edit is refused instead of written.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from localcodex.errors import ConfigError

KeyPath = tuple[str, ...]
# An edit maps a dotted key path to its wanted value; None removes the key.
Edits = Mapping[KeyPath, Any]


def parse(text: str, source: Path | str) -> Any:
    """Parse TOML text; a syntax error becomes a ConfigError naming the file, line and column."""
    import tomlkit
    from tomlkit.exceptions import ParseError

    try:
        return tomlkit.parse(text)
    except ParseError as exc:
        line, col = getattr(exc, "line", None), getattr(exc, "col", None)
        reason = str(exc).split(" at line ")[0]
        raise ConfigError(
            f"{source}:{line}:{col}: invalid TOML: {reason}",
            f"fix line {line}, column {col} of {source} (localcodex changed nothing)",
            data={"path": str(source), "line": line, "column": col},
        ) from None
    except Exception as exc:  # tomlkit raises plain errors for a few invalid documents (duplicate tables)
        raise ConfigError(
            f"{source}: invalid TOML: {exc}",
            f"fix {source} (localcodex changed nothing)",
            data={"path": str(source), "line": None, "column": None},
        ) from None


def plain(doc: Any) -> Any:
    """The document as plain Python values (dicts, lists, str, int, bool…), for comparisons."""
    return doc.unwrap() if hasattr(doc, "unwrap") else doc


def get_path(data: Mapping[str, Any], path: KeyPath) -> Any:
    """The plain value at `path`, or None when any part is missing."""
    cur: Any = data
    for part in path:
        if not isinstance(cur, Mapping) or part not in cur:
            return None
        cur = cur[part]
    return cur


def apply_edits(text: str, edits: Edits, source: Path | str) -> str:
    """Return `text` with `edits` applied; every byte outside the edited keys stays as it was.

    The one exception: a file that changes and lacked a final newline gets one (TOML tools need it to put
    a new table after the last line)."""
    _check_round_trip(text, source)
    out = _render(text, edits, source)
    if out != text and text and not text.endswith("\n"):
        out = _render(text + ("\r\n" if "\r\n" in text else "\n"), edits, source)
    _verify(text, out, edits, source)
    return out


def _check_round_trip(text: str, source: Path | str) -> None:
    """tomlkit keeps a file's bytes only if parsing and rendering it unchanged gives it back; a few layouts
    (a table split around an array of tables) come back reordered. Such a file is refused, not rewritten."""
    import tomlkit

    if tomlkit.dumps(parse(text, source)) != text:
        raise ConfigError(
            f"{source}: localcodex cannot edit this file without moving parts of it "
            "(its layout, e.g. sub-tables of one table split around an [[array]], does not survive the TOML "
            "editor); nothing was written",
            "group the [x.y] tables of each table together, or add the keys --dry-run shows by hand",
            code="config_layout",
        )


def _render(text: str, edits: Edits, source: Path | str) -> str:
    import tomlkit

    doc = parse(text, source)
    created: list[Any] = []
    # Top-level keys first, so new tables are appended after everything they must follow.
    for path, value in sorted(edits.items(), key=lambda edit: len(edit[0])):
        _apply_one(doc, path, value, source, created)
    _separate_new_tables(doc, created)
    return _keep_line_endings(text, tomlkit.dumps(doc))


def _apply_one(doc: Any, path: KeyPath, value: Any, source: Path | str, created: list[Any]) -> None:
    parent = _container(doc, path[:-1], create=value is not None, source=source, created=created)
    if parent is None:
        return
    key = path[-1]
    if key in parent:
        if value is None:
            del parent[key]
        elif not same_value(plain(parent[key]), value):
            parent[key] = _item(value)
        return
    if value is not None:
        _insert_key(parent, key, _item(value))


def same_value(old: Any, new: Any) -> bool:
    """Equal and of the same type (so `1` never counts as `true`, nor `1.0` as `1`)."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        return old.keys() == new.keys() and all(same_value(old[k], new[k]) for k in old)
    if isinstance(old, list) and isinstance(new, (list, tuple)):
        return len(old) == len(new) and all(same_value(a, b) for a, b in zip(old, new, strict=True))
    return type(old) is type(new) and old == new


def _item(value: Any) -> Any:
    """A tomlkit item; mappings become inline tables (`{ "X-Team" = "a" }`), as Codex's docs write headers."""
    import tomlkit

    if isinstance(value, Mapping):
        table = tomlkit.inline_table()
        for k, v in value.items():
            table[k] = v
        return table
    return tomlkit.item(value)


def _is_table(value: Any) -> bool:
    from tomlkit.container import Container, OutOfOrderTableProxy
    from tomlkit.items import InlineTable, Table

    return isinstance(value, (Table, InlineTable, OutOfOrderTableProxy, Container))


def _container(doc: Any, parents: KeyPath, *, create: bool, source: Path | str, created: list[Any]) -> Any:
    """The table at `parents`, created (as `[a.b]` headers) when missing and `create` is set."""
    import tomlkit

    cur = doc
    for depth, name in enumerate(parents):
        if name in cur:
            nxt = cur[name]
            if not _is_table(nxt):
                dotted = ".".join(parents[: depth + 1])
                raise ConfigError(
                    f"{source}: `{dotted}` is a {type(plain(nxt)).__name__}, not a table",
                    f"fix or remove `{dotted}` in {source}; Codex expects a table there",
                )
            cur = nxt
            continue
        if not create:
            return None
        table = tomlkit.table(is_super_table=depth < len(parents) - 1)
        if cur is doc:
            _append_table(doc, name, table)
        else:
            cur[name] = table
            created.append(cur[name])
        cur = cur[name]
    return cur


def _append_table(doc: Any, name: str, table: Any) -> None:
    """A new top-level table goes at the end of the file, after one blank line."""
    import tomlkit

    current = tomlkit.dumps(doc)
    if current.strip() and not current.endswith("\n\n"):
        table.trivia.indent = "\n"
    doc.append(name, table)


def _separate_new_tables(doc: Any, created: list[Any]) -> None:
    """A sub-table inserted among existing tables ends with a blank line, so the next header stays apart."""
    import tomlkit

    for table in created:
        rendered = table.as_string()
        full = tomlkit.dumps(doc)
        at = full.rfind(rendered)
        after = full[at + len(rendered):] if rendered and at >= 0 else ""
        if after and not after.startswith(("\n", "\r\n")):
            table.add(tomlkit.nl())


def _insert_key(container: Any, key: str, item: Any) -> None:
    """Insert a key after the last key/value of its table (before any comment that introduces a table)."""
    from tomlkit.container import Container, OutOfOrderTableProxy

    if isinstance(container, OutOfOrderTableProxy):  # keys of a table split across the file: tomlkit decides
        container[key] = item
        return
    owner = container if isinstance(container, Container) else getattr(container, "value", None)
    if not isinstance(owner, Container):  # inline tables: plain assignment keeps them on one line
        container[key] = item
        return
    index = _insert_index(owner.body)
    if index >= len(owner.body):
        owner.append(key, item)
        return
    # tomlkit's private insert keeps its key index consistent; the result is re-parsed and verified anyway.
    owner._insert_at(index, key, item)
    _keep_blank_after(owner.body, index)


def _is_kv(entry: tuple[Any, Any]) -> bool:
    from tomlkit.items import AoT, Table

    return entry[0] is not None and not isinstance(entry[1], (Table, AoT))


def _insert_index(body: list[tuple[Any, Any]]) -> int:
    """After the last key/value; with none, after a leading comment block that a blank line closes."""
    from tomlkit.items import Comment, Whitespace

    kvs = [i for i, entry in enumerate(body) if _is_kv(entry)]
    if kvs:
        return kvs[-1] + 1
    lead = 0
    while lead < len(body) and body[lead][0] is None and isinstance(body[lead][1], (Comment, Whitespace)):
        lead += 1
    if lead == len(body):
        return len(body)
    blanks = [i for i in range(lead) if isinstance(body[i][1], Whitespace)]
    return blanks[0] + 1 if blanks else 0


def _keep_blank_after(body: list[tuple[Any, Any]], index: int) -> None:
    """The inserted key takes over the blank line that separated the key/values from what follows."""
    from tomlkit.items import Whitespace

    item = body[index][1]
    prev = body[index - 1][1] if index > 0 and _is_kv(body[index - 1]) else None
    if prev is not None and prev.trivia.trail.count("\n") > 1:
        item.trivia.trail, prev.trivia.trail = prev.trivia.trail, "\n"
        return
    follower = body[index + 1] if index + 1 < len(body) else None
    if follower is not None and not _is_kv(follower) and not isinstance(follower[1], Whitespace):
        item.trivia.trail = "\n\n"


def _keep_line_endings(old: str, new: str) -> str:
    """A file that uses CRLF everywhere keeps CRLF for the lines localcodex adds."""
    lf = old.count("\n")
    if lf and old.count("\r\n") == lf:
        return new.replace("\r\n", "\n").replace("\n", "\r\n")
    return new


def _verify(old_text: str, new_text: str, edits: Edits, source: Path | str) -> None:
    """The new text must parse to the old document with exactly the requested edits applied."""
    import copy

    expected = copy.deepcopy(plain(parse(old_text, source)))
    for path, value in edits.items():
        _set_plain(expected, path, value)
    try:
        got = plain(parse(new_text, source))
    except ConfigError:
        got = None
    if got is None or not same_value(got, expected):
        raise ConfigError(
            f"{source}: localcodex could not change its keys without disturbing the rest of the file",
            "nothing was written; please report this with the file (secrets removed), "
            "or edit the keys shown by --dry-run by hand",
        )


def _set_plain(data: dict[str, Any], path: KeyPath, value: Any) -> None:
    cur = data
    for part in path[:-1]:
        if part not in cur:
            if value is None:
                return
            cur[part] = {}
        cur = cur[part]
    if value is None:
        cur.pop(path[-1], None)
    else:
        cur[path[-1]] = dict(value) if isinstance(value, Mapping) else value
