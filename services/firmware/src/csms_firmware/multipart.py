"""Streaming ``multipart/form-data``: the file part goes straight to the blob store.

The body is parsed as it arrives (python-multipart's push parser), so an image of any
size never sits in memory, and a part over the limit stops the upload at once.
"""

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from csms_api.problems import Problem
from csms_firmware.store import Writer

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

MAX_FIELD_BYTES = 64 * 1024


@dataclass
class _Part:
    name: str = ""
    filename: str | None = None
    value: bytearray = field(default_factory=bytearray)


@dataclass
class Form:
    """The text fields of a form and the name of the one file part (now in the writer)."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    filename: str | None = None

    def first(self, name: str) -> str | None:
        values = self.fields.get(name)
        return values[0] if values else None


def boundary_of(content_type: str) -> bytes:
    kind, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise Problem(415, "send the image as multipart/form-data", kind="unsupported-media-type")
    return boundary


async def read_form(
    content_type: str, body: AsyncIterator[bytes], writer: Writer, file_field: str = "file"
) -> Form:
    """Parse the form; write the bytes of its ``file_field`` part to ``writer``."""
    form = Form()
    events: list[tuple[str, bytes]] = []
    header: list[bytes] = [b"", b""]

    def note(kind: str) -> Callable[[], None]:
        return lambda: events.append((kind, b""))

    def note_data(kind: str) -> Callable[[bytes, int, int], None]:
        return lambda data, start, end: events.append((kind, bytes(data[start:end])))

    callbacks: MultipartCallbacks = {
        "on_part_begin": note("begin"),
        "on_part_data": note_data("data"),
        "on_part_end": note("end"),
        "on_header_field": note_data("field"),
        "on_header_value": note_data("value"),
        "on_header_end": note("header_end"),
    }
    parser = MultipartParser(boundary_of(content_type), callbacks)
    part = _Part()
    try:
        async for chunk in body:
            parser.write(chunk)
            for kind, data in events:
                part = await _apply(kind, data, part, header, form, writer, file_field)
            events.clear()
        parser.finalize()
    except MultipartParseError as exc:  # the client's bytes, not our failure
        raise Problem(400, f"not valid multipart/form-data: {exc}", kind="invalid-form") from None
    return form


async def _apply(
    kind: str,
    data: bytes,
    part: _Part,
    header: list[bytes],
    form: Form,
    writer: Writer,
    file_field: str,
) -> _Part:
    if kind == "begin":
        return _Part()
    if kind == "field":
        header[0] += data
    elif kind == "value":
        header[1] += data
    elif kind == "header_end":
        if header[0].lower() == b"content-disposition":
            _, params = parse_options_header(header[1])
            part.name = params.get(b"name", b"").decode(errors="replace")
            filename = params.get(b"filename")
            part.filename = filename.decode(errors="replace") if filename is not None else None
        header[0], header[1] = b"", b""
    elif kind == "data":
        if _is_file(part, file_field):
            await writer.write(data)
        else:
            part.value += data
            if len(part.value) > MAX_FIELD_BYTES:
                raise Problem(413, f"form field {part.name} is too long", kind="field-too-large")
    elif kind == "end":
        if _is_file(part, file_field):
            if form.filename is not None:
                raise Problem(422, "send one file only", kind="invalid-request")
            form.filename = part.filename or "firmware.bin"
        elif part.name:
            form.fields.setdefault(part.name, []).append(part.value.decode(errors="replace"))
    return part


def _is_file(part: _Part, file_field: str) -> bool:
    """The file part: named ``file_field`` (``*``: any name) and with a filename."""
    return part.filename is not None and file_field in ("*", part.name)
