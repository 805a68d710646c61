"""Read a content file's YAML without letting a hostile or broken file crash, hang or exhaust the course.

`yaml.safe_load` runs no code, but on its own a file can still do harm: an alias bomb (a few anchors and aliases
standing for billions of nodes), thousands of nested brackets overflowing the composer's recursion, an alias used
inside the node it names (a structure that contains itself), or a scalar such as `2020-13-45` or `!!int junk`
raising a plain Python error that is no `YAMLError`. So a file is checked in three steps, each refusal a
`YamlRefused` with a sentence and, where known, a line: its size and encoding before it is read (`read_text`); one
streaming pass over the parser's events that stops at too deep a nest, a self-reference or too many nodes, every
alias counted as what it stands for (`check_shape`); then one compose and one construction, any error turned into
a message (`parse`). The limits are far above what any content file needs (docs/architecture.md, "Content as data").
"""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Any

import yaml

MAX_BYTES = 512 * 1024  # many times the largest lesson file: a file this big is a mistake or an attack
MAX_DEPTH = 64  # mappings and lists inside each other; lessons use a handful of levels
MAX_NODES = 200_000  # scalars, lists and mappings, each alias counted as everything it stands for

# libyaml's parser where PyYAML was built with it: the same events and nodes (marks included), much faster
# (docs/benchmarks.md).
_FastLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlRefused(ValueError):
    """A file the course will not use, with the line (1-based, None if unknown) and a sentence saying why."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(f"line {line}: {message}" if line else message)
        self.message = message
        self.line = line


def read_text(path: Path, max_bytes: int = MAX_BYTES) -> str:
    """A file's text, refused (without reading it all) if it is larger than `max_bytes` or not UTF-8."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise YamlRefused(f"the file is {size / 1024:,.0f} KB; content files may be at most {max_bytes // 1024:,} KB "
                              "(a lesson is about 13 KB): split it or remove what does not belong")
        with path.open("rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as err:
        raise YamlRefused(f"cannot read the file: {err.strerror or err}") from None
    if len(data) > max_bytes:  # it grew while we looked
        raise YamlRefused(f"the file is larger than {max_bytes // 1024:,} KB")
    return decode(data)


def decode(data: bytes) -> str:
    """UTF-8 text (a byte-order mark dropped), or YamlRefused naming the encoding problem and where it is.

    >>> decode("é".encode("latin-1"))
    Traceback (most recent call last):
    ...
    course.safe_yaml.YamlRefused: line 1: the file is not UTF-8 text: byte 0xE9 at byte 0 cannot be decoded (perhaps Latin-1 or Windows-1252); save it as UTF-8
    """
    for bom, name in ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
                      (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16")):
        if data.startswith(bom):
            raise YamlRefused(f"the file is {name} text; save it as UTF-8")
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise YamlRefused(f"the file is not UTF-8 text: byte 0x{data[err.start]:02X} at byte {err.start:,} cannot be "
                          "decoded (perhaps Latin-1 or Windows-1252); save it as UTF-8", line) from None


def check_shape(text: str, max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES) -> None:
    """Stream the parser's events and refuse the document at the first sign of a bomb, a nest or a loop.

    Counting is linear in the text: each anchor remembers how many nodes it stands for, and an alias adds that
    number without expanding anything. Syntax errors are left to the compose that follows (same parser, same
    message); this pass only stops early.
    """
    open_: list[list[Any]] = []  # one [anchor, nodes so far] per mapping or list not yet closed
    sizes: dict[str, int] = {}  # anchor -> nodes it stands for
    total = 0
    try:
        for event in yaml.parse(text, Loader=_FastLoader):
            line = event.start_mark.line + 1 if event.start_mark else None
            if isinstance(event, yaml.CollectionStartEvent):
                if len(open_) >= max_depth:
                    raise YamlRefused(f"nested more than {max_depth} levels deep; content files need a handful", line)
                open_.append([event.anchor, 1])
                continue
            if isinstance(event, yaml.AliasEvent):
                if event.anchor not in sizes:
                    if any(anchor == event.anchor for anchor, _ in open_):
                        raise YamlRefused(f"the alias *{event.anchor} is used inside the node it names, which would "
                                          "make a structure that contains itself", line)
                    continue  # an undefined alias: the compose reports it
                n = sizes[event.anchor]
            elif isinstance(event, yaml.ScalarEvent):
                n = 1
                if event.anchor:
                    sizes[event.anchor] = 1
            elif isinstance(event, yaml.CollectionEndEvent):
                anchor, n = open_.pop()
                if anchor:
                    sizes[anchor] = n
            else:
                continue
            if open_:
                open_[-1][1] += n
                size = open_[-1][1]
            else:
                total += n
                size = total
            if size > max_nodes:
                raise YamlRefused(f"the file expands to more than {max_nodes:,} values once each alias (*name) is "
                                  "replaced by what it names (an alias bomb?); a lesson holds about a thousand", line)
    except yaml.YAMLError:
        return


def parse(text: str, max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES) -> tuple[Any, yaml.Node | None]:
    """The document's data and its node tree (for line numbers), or YamlRefused.

    One parse serves both: the data is constructed from the composed nodes, as `yaml.safe_load` would. The shape
    is checked first (`check_shape`), since the composer recurses once per level of nesting.

    >>> parse("a: &x [1, 2]\\nb: *x\\n")[0]
    {'a': [1, 2], 'b': [1, 2]}
    >>> parse("a: [[[[1]]]]", max_depth=3)
    Traceback (most recent call last):
    ...
    course.safe_yaml.YamlRefused: line 1: nested more than 3 levels deep; content files need a handful
    """
    check_shape(text, max_depth, max_nodes)
    try:
        node = yaml.compose(text, Loader=_FastLoader)
    except yaml.YAMLError:
        try:  # PyYAML's own parser words its syntax errors better (and gives the character a reader refused)
            node = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as err:
            raise _refusal(err, text) from None
        except RecursionError:  # not reached after check_shape; kept so a raised limit cannot bring back a crash
            raise YamlRefused("nested too deeply to read") from None
    if node is None:
        return None, None
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_document(node), node
    except yaml.YAMLError as err:
        raise _refusal(err, text) from None
    except Exception as err:  # noqa: BLE001 - ValueError, IndexError, KeyError, AttributeError: PyYAML's own bugs
        # PyYAML lets some bad scalars through as plain errors (a 13th month, `!!int junk`, `!!int ''`,
        # `!!bool maybe`, 5,000 digits):
        # construct them one by one to find the culprit's line.
        bad = _bad_scalar(node)
        if bad is None:
            raise YamlRefused(f"a value cannot be read: {printable(str(err), 120)}") from None
        kind = _KINDS.get(bad.tag.rsplit(":", 1)[-1], "value of its type")
        detail = f" ({err})" if isinstance(err, ValueError) and 0 < len(str(err)) <= 80 else ""
        raise YamlRefused(f"the value {_short(bad.value)!r} is read by YAML as {kind} but is not a valid one{detail}; "
                          "put it in quotes to keep it as text", bad.start_mark.line + 1) from None


_KINDS = {"int": "an integer", "float": "a number", "timestamp": "a date", "bool": "true or false",
          "binary": "base64 data", "null": "null"}


def _refusal(err: yaml.YAMLError, text: str) -> YamlRefused:
    mark = getattr(err, "problem_mark", None)
    line = mark.line + 1 if mark is not None else None
    if isinstance(err, yaml.reader.ReaderError):  # a character YAML does not allow, e.g. NUL or a control code
        line = text.count("\n", 0, err.position) + 1
        return YamlRefused(f"character {err.character!r} is not allowed in YAML (special characters are not "
                           "allowed); remove it", line)
    what = getattr(err, "problem", None) or str(err)
    return YamlRefused(f"YAML syntax error: {what}", line)


def _bad_scalar(root: yaml.Node) -> yaml.ScalarNode | None:
    """The first scalar (in document order) that PyYAML cannot construct, found without recursion."""
    loader = yaml.SafeLoader("")
    stack, seen = [root], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            try:
                loader.construct_object(node, deep=True)
            except Exception:  # noqa: BLE001 - whatever it raises, this is the node we are looking for
                return node
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(reversed(node.value))
        elif isinstance(node, yaml.MappingNode):
            stack.extend(n for pair in reversed(node.value) for n in reversed(pair))
    return None


def _short(value: str, limit: int = 40) -> str:
    return value if len(value) <= limit else value[:limit] + "…"


def printable(text: str, limit: int = 200) -> str:
    """Text safe to print on one line: control characters and lone surrogates written as escapes, cut at `limit`.

    >>> printable("ok"), printable("a\\nb"), printable("\\ud800")
    ('ok', 'a\\\\nb', '\\\\ud800')
    """
    if text.isprintable() and len(text) <= limit:
        return text
    out = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)
    return out if len(out) <= limit else out[:limit] + "…"
