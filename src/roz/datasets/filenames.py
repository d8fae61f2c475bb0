"""Sample paths as stored in result tables: always valid UTF-8, without losing a byte.

On Linux a file name is bytes; Python gives a name that is not valid UTF-8 as a ``str`` with
surrogate escapes (``b"\\xff.jpg"`` -> ``"\\udcff.jpg"``), which Arrow/Parquet (UTF-8 only) and
JSON files cannot hold. Such a path is stored with each undecodable byte written as the four
characters ``\\xNN`` (Python's ``backslashreplace``); every other path is stored unchanged. The
dataset protocol records ``non_utf8_paths`` (how many were escaped) when there are any, and
:func:`file_path` turns a stored path back into the real one.
"""

from __future__ import annotations

import re

ESCAPING = "undecodable bytes of non-UTF-8 file names stored as \\xNN (backslashreplace); see docs/datasets.md"
_ESCAPED_BYTE = re.compile(r"\\x([89a-f][0-9a-f])")


def is_storable(path: str) -> bool:
    if path.isascii():
        return True
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def storable_path(path: str) -> str:
    """``path`` as written to the store: unchanged if valid UTF-8, else with ``\\xNN`` escapes."""
    path = str(path)
    if is_storable(path):
        return path
    try:
        raw = path.encode("utf-8", "surrogateescape")  # the file name's real bytes
    except UnicodeEncodeError:  # a lone surrogate that is no escaped byte (not from a POSIX file name)
        return path.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")


def file_path(stored: str) -> str:
    """The real path (surrogate-escaped ``str``, as ``os`` functions take it) of a stored path.

    Only meaningful for a dataset whose protocol records ``non_utf8_paths``: a valid UTF-8 name
    that literally contains the text ``\\x80``..``\\xff`` cannot be told from an escaped byte."""
    return _ESCAPED_BYTE.sub(lambda m: chr(0xDC00 + int(m.group(1), 16)), stored)
