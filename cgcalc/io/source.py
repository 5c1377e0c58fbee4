"""The bytes of a graph file: read whole from anything (a file, a FIFO, a pipe, stdin, a device), never more
than the limit, and whether to try them as JSON first."""

from __future__ import annotations

import io
import os
import stat

from ..core.spec import Limits
from ..errors import GraphError

__all__ = ["is_json", "read_limited"]


def read_limited(f, file: str, limits: Limits | None = None) -> bytes:
    """All of a binary file (a FIFO, a pipe, stdin, a device too), refusing one over `limits.max_file_bytes`
    without reading more than that: /dev/zero stops at the limit, as a large file does before it is read."""
    limit = (limits or Limits.from_env()).max_file_bytes
    try:
        st = os.fstat(f.fileno())
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):  # a stream without a descriptor
        st = None
    regular = st is not None and stat.S_ISREG(st.st_mode)
    if regular and st.st_size > limit:
        raise _too_large(file, limit, st.st_size)
    parts, n = [], 0
    while n <= limit:
        part = f.read(min(st.st_size + 1 if regular and not parts else 1 << 24, limit + 1 - n))
        if not part:
            break
        parts.append(part)
        n += len(part)
    if n > limit:
        raise _too_large(file, limit)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _too_large(file: str, limit: int, size: int | None = None) -> GraphError:
    if size is None:
        return GraphError(
            f"file is over the limit of {limit:,} bytes (stopped reading there; raise it with CGCALC_MAX_FILE_BYTES)",
            file=file,
        )
    return GraphError(
        f"file is {size:,} bytes, over the limit of {limit:,} (raise it with CGCALC_MAX_FILE_BYTES)", file=file
    )


def is_json(text: str | bytes, file: str | None) -> bool:
    """Read this graph text as JSON first? By the file's extension; without a telling one (stdin, /dev/fd/N), when
    the text starts with '{' (JSON is also YAML: the wrong guess costs time, never a different graph)."""
    ext = os.path.splitext(file or "")[1].lower()
    if ext in (".json", ".yaml", ".yml"):
        return ext == ".json"
    head = text[:4096]
    head = (head.removeprefix(b"\xef\xbb\xbf") if isinstance(head, bytes) else head.removeprefix("\ufeff")).lstrip()
    return head[:1] in ("{", b"{")
