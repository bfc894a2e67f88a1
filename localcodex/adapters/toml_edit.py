"""Surgical edits of a TOML text with tomlkit: set or remove a few keys, keep every other byte.

The rule this module enforces is the one users care about: the keys localcodex owns change, and nothing
else does (comments, order, spacing, quoting, unrelated tables). tomlkit does the heavy lifting; the few
places where its defaults would move things around are handled here:

* a new top-level key goes right after the last existing top-level key, not after the comment that
  introduces the first table (tomlkit's default would detach that comment from its table);
* new tables get a blank line before them and never glue onto the next table;
* a file written with CRLF line endings keeps them for the new lines too;
* a UTF-8 byte-order mark stays where it was (Codex's parser skips it);
* a big file (thousands of `[projects."…"]` tables) is not handed to tomlkit whole: only the part before the
  first table and the tables under the edited top-level keys are, the rest is kept as text (tomlkit needs
  seconds per megabyte; this keeps an edit proportional to the file's size).

Every edit is checked afterwards: the new text is parsed again and must equal the old document with exactly
the requested changes. If tomlkit ever renders something else, the edit is refused instead of written.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from localcodex.domain import toml_lines
from localcodex.errors import ConfigError

BOM = "\ufeff"
_BOM_NOTE = " (the file starts with a UTF-8 byte-order mark, BOM)"
KeyPath = tuple[str, ...]
# An edit maps a dotted key path to its wanted value; None removes the key.
Edits = Mapping[KeyPath, Any]


def parse(text: str, source: Path | str) -> Any:
    """Parse TOML text (a leading UTF-8 BOM is skipped, as Codex does); a syntax error becomes a ConfigError
    naming the file, line and column, and the BOM when the file has one."""
    import tomlkit
    from tomlkit.exceptions import ParseError

    bom = text.startswith(BOM)
    note = _BOM_NOTE if bom else ""
    try:
        return tomlkit.parse(text[1:] if bom else text)
    except ParseError as exc:
        line, col = getattr(exc, "line", None), getattr(exc, "col", None)
        reason = str(exc).split(" at line ")[0]
        raise ConfigError(
            f"{source}:{line}:{col}: invalid TOML: {reason}{note}",
            f"fix line {line}, column {col} of {source} (localcodex changed nothing)",
            data={"path": str(source), "line": line, "column": col, "bom": bom},
        ) from None
    except Exception as exc:  # tomlkit raises plain errors for a few invalid documents (duplicate tables)
        raise ConfigError(
            f"{source}: invalid TOML: {exc}{note}",
            f"fix {source} (localcodex changed nothing)",
            data={"path": str(source), "line": None, "column": None, "bom": bom},
        ) from None


_LAST_LOADED: list[tuple[str, dict[str, Any]]] = []  # (sha256 of the text, its values): one entry


def load_plain(text: str, source: Path | str, *, shared: bool = False) -> dict[str, Any]:
    """The document as plain values, read with the fast standard parser (tomllib); errors are reported as
    `parse` reports them. For reading only: it keeps no layout.

    `shared`: the text read last may be answered from memory (a big config is checked while it is edited
    and read again for conflicts in the same run); the caller must not change the result."""
    import hashlib

    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest() if shared else ""
    if shared and _LAST_LOADED and _LAST_LOADED[0][0] == digest:
        return _LAST_LOADED[0][1]
    data = _load_plain(text, source)
    if shared:
        _LAST_LOADED[:] = [(digest, data)]
    return data


def _load_plain(text: str, source: Path | str) -> dict[str, Any]:
    try:
        import tomllib as toml
    except ModuleNotFoundError:  # pragma: no cover - Python 3.10
        return plain(parse(text, source))  # type: ignore[no-any-return]
    body = text[1:] if text.startswith(BOM) else text
    try:
        return toml.loads(body)
    except toml.TOMLDecodeError as exc:
        parse(text, source)  # the precise message (line, column, BOM)
        raise ConfigError(f"{source}: invalid TOML: {exc}", f"fix {source} (localcodex changed nothing)") from None


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
    bom = BOM if text.startswith(BOM) else ""
    body = text[len(bom):]
    try:
        sliced = _apply_sliced(body, edits, source)
        return bom + (sliced if sliced is not None else _apply_whole(body, edits, source))
    except ConfigError as exc:
        if bom and _BOM_NOTE not in exc.message:
            exc.message += _BOM_NOTE
        raise


def _apply_sliced(text: str, edits: Edits, source: Path | str) -> str | None:
    """Edit only the part before the first table and the sections under the edited top-level keys (all of
    those keys' definitions live there); the other sections are kept as text. None: nothing to slice."""
    starts = toml_lines.sections(text)
    roots = {path[0] for path in edits}
    keep = [i for i, (_, header) in enumerate(starts) if header is None or header[0] in roots]
    if len(keep) == len(starts):
        return None
    load_plain(text, source, shared=True)  # the whole file must be valid TOML, not only the edited part
    bounds = [offset for offset, _ in starts] + [len(text)]
    chunks = [text[bounds[i]:bounds[i + 1]] for i in range(len(starts))]
    sub = "".join(chunks[i] for i in keep)
    out = _keep_line_endings(text, _apply_whole(sub, edits, source))
    if out == sub:
        return text
    pieces = _split_like(out, [chunks[i] for i in keep])
    if pieces is None:
        return None
    for n, i in enumerate(keep):
        piece = pieces[n]
        grew_at_end = n == len(keep) - 1 and i + 1 < len(chunks) and piece != chunks[i]
        if grew_at_end and not piece.endswith("\n\n"):
            piece += "\r\n" if piece.endswith("\r\n") else "\n"  # a blank line before the next table
        chunks[i] = piece
    result = "".join(chunks)
    if not result.endswith("\n"):  # as for a whole file: a file that changes gets its final newline
        result += "\r\n" if "\r\n" in text else "\n"
    return result


def _split_like(out: str, originals: list[str]) -> list[str] | None:
    """Cut the edited text where each original section's header line now starts; None if one is missing."""
    cuts = [0]
    at = 0
    for chunk in originals[1:]:
        header = chunk.split("\n", 1)[0]
        pos = out.find(header, at)
        while pos > 0 and out[pos - 1] != "\n":
            pos = out.find(header, pos + 1)
        if pos < 0 or not header:
            return None
        cuts.append(pos)
        at = pos + len(header)
    cuts.append(len(out))
    return [out[cuts[k]:cuts[k + 1]] for k in range(len(originals))]


def _apply_whole(text: str, edits: Edits, source: Path | str) -> str:
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
    if got is not None:
        for path, value in edits.items():
            if value is None:
                _prune_emptied(expected, got, path[:-1])
    if got is None or not same_value(got, expected):
        raise ConfigError(
            f"{source}: localcodex could not change its keys without disturbing the rest of the file",
            "nothing was written; please report this with the file (secrets removed), "
            "or edit the keys shown by --dry-run by hand",
        )


def _prune_emptied(expected: dict[str, Any], got: Mapping[str, Any], parents: KeyPath) -> None:
    """Removing the last key of a dotted `a.b = 1` leaves no `a` at all (nothing declared it on its own):
    an emptied table that the new text no longer has is not a difference."""
    for end in range(len(parents), 0, -1):
        table = get_path(expected, parents[:end])
        if table != {} or get_path(got, parents[:end]) is not None:
            return
        parent = get_path(expected, parents[: end - 1]) if end > 1 else expected
        del parent[parents[end - 1]]


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
