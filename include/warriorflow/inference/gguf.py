"""Read a model's chat template and special tokens out of a GGUF file's metadata.

GGUF metadata is read by a small parser over a read-only memory map: the key/value section only,
never the tensors. (``gguf.GGUFReader`` parses the whole vocabulary into numpy views and takes 2 to
11 seconds on small models; this takes milliseconds. The value types and key names come from the
``gguf`` package.)
"""

from __future__ import annotations

import mmap
import os
import struct
from pathlib import Path
from typing import Any

from warriorflow.errors import ConfigError, ModelError
from warriorflow.method.chat_template import TemplateInfo
from warriorflow.method.magpie import eot_from_template

__all__ = ["read_gguf_chat_template"]


class _Truncated(Exception):
    pass


class _GGUFMeta:
    """Key/value metadata of a GGUF file, read from a memory map (tensors are never touched)."""

    def __init__(self, buf: Any, path: str):
        import gguf  # value types, magic and key names

        self._vt = gguf.GGUFValueType
        self.path = path
        self.buf = buf
        self.pos = 0
        self.end = len(buf)
        self.values: dict[str, Any] = {}
        self.tokens: list[str] | None = None
        self.token_types: list[int] | None = None

        magic = self._unpack("<I", 4)[0]
        if magic != gguf.GGUF_MAGIC:
            raise ModelError(path, f"not a GGUF file (starts with {bytes(buf[:4])!r}, expected b'GGUF')",
                             "point at a .gguf model file")
        version = self._unpack("<I", 4)[0]
        self.e = "<"
        if version & 0xFFFF == 0:  # written on a big-endian machine
            self.e = ">"
            version = struct.unpack(">I", struct.pack("<I", version))[0]
        if version < 2:
            raise ModelError(path, f"GGUF version {version} is not supported (need 2 or later)",
                             "re-convert the model with a current llama.cpp")
        self.version = version
        self.tensor_count, kv_count = self._unpack(self.e + "QQ", 16)
        for _ in range(kv_count):
            key = self._string()
            vtype = self._unpack(self.e + "I", 4)[0]
            if key == gguf.Keys.Tokenizer.LIST:
                self.tokens = self._array(keep=True)
            elif key == gguf.Keys.Tokenizer.TOKEN_TYPE:
                self.token_types = self._array(keep=True)
            elif vtype == self._vt.ARRAY:
                self._array(keep=False)  # vocab scores, merges, ...: skipped
            else:
                self.values[key] = self._scalar(vtype)

    # -- primitive readers
    def _unpack(self, fmt: str, size: int) -> tuple:
        if self.pos + size > self.end:
            raise _Truncated()
        out = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return out

    def _string(self) -> str:
        (n,) = self._unpack(self.e + "Q", 8)
        if self.pos + n > self.end:
            raise _Truncated()
        s = bytes(self.buf[self.pos:self.pos + n]).decode("utf-8", errors="replace")
        self.pos += n
        return s

    _FMT = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}

    def _scalar(self, vtype: int) -> Any:
        if vtype == self._vt.STRING:
            return self._string()
        fmt = self._FMT.get(int(vtype))
        if fmt is None:
            raise ModelError(self.path, f"unknown GGUF value type {vtype} in the metadata",
                             "the file is corrupt or newer than this reader")
        return self._unpack(self.e + fmt, struct.calcsize(fmt))[0]

    def _array(self, keep: bool) -> list | None:
        etype, count = self._unpack(self.e + "IQ", 12)
        if etype == self._vt.STRING:
            if not keep:
                for _ in range(count):
                    (n,) = self._unpack(self.e + "Q", 8)
                    self.pos += n
                if self.pos > self.end:
                    raise _Truncated()
                return None
            out = []
            buf, pos, e = self.buf, self.pos, self.e + "Q"
            for _ in range(count):
                (n,) = struct.unpack_from(e, buf, pos)
                pos += 8
                out.append(buf[pos:pos + n].decode("utf-8", errors="replace"))
                pos += n
            if pos > self.end:
                raise _Truncated()
            self.pos = pos
            return out
        if etype == self._vt.ARRAY:  # nested arrays: walk them
            items = [self._array(keep) for _ in range(count)]
            return items if keep else None
        fmt = self._FMT.get(int(etype))
        if fmt is None:
            raise ModelError(self.path, f"unknown GGUF array element type {etype}",
                             "the file is corrupt or newer than this reader")
        size = struct.calcsize(fmt) * count
        if self.pos + size > self.end:
            raise _Truncated()
        out = list(struct.unpack_from(f"{self.e}{count}{fmt}", self.buf, self.pos)) if keep else None
        self.pos += size
        return out

    # -- lookups
    def token(self, key: str) -> str | None:
        tid = self.values.get(key)
        if tid is None or self.tokens is None or not 0 <= int(tid) < len(self.tokens):
            return None
        return self.tokens[int(tid)]

    def control_tokens(self) -> list[str]:
        if self.tokens is None:
            return []
        if self.token_types is None or len(self.token_types) != len(self.tokens):
            return []
        return [t for t, ty in zip(self.tokens, self.token_types) if ty == 3]  # gguf.TokenType.CONTROL


def read_gguf_chat_template(path: str | os.PathLike) -> TemplateInfo:
    """Chat template, BOS/EOS/end-of-turn tokens, architecture and name from a GGUF file's metadata.

    Only the metadata section is read (through a read-only memory map); tensors are never loaded.
    A missing file, a non-GGUF file or truncated metadata raises :class:`ModelError` naming the path.
    """
    try:
        import gguf  # noqa: F401
    except ImportError:
        raise ConfigError("gguf", "the gguf package is not installed", "pip install gguf") from None
    p = Path(path)
    shown = str(p)
    if not p.is_file():
        raise ModelError(shown, "file not found" if not p.exists() else "not a regular file",
                         "check the model path (and that the download finished)")
    try:
        with open(p, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < 24:
                raise ModelError(shown, f"not a GGUF file (only {size} bytes)", "point at a .gguf model file")
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                try:
                    meta = _GGUFMeta(mm, shown)
                except _Truncated:
                    raise ModelError(shown, "GGUF metadata is truncated or corrupt",
                                     "re-download the model file") from None
                except (struct.error, OverflowError, MemoryError) as e:
                    raise ModelError(shown, f"GGUF metadata could not be parsed: {e}",
                                     "re-download the model file") from None
    except OSError as e:
        raise ModelError(shown, f"cannot read the file: {e}", "check permissions and the path") from None

    from gguf import Keys

    template = meta.values.get(Keys.Tokenizer.CHAT_TEMPLATE)
    named: dict[str, str] = {}
    prefix = Keys.Tokenizer.CHAT_TEMPLATE + "."
    for k, v in meta.values.items():
        if k.startswith(prefix) and isinstance(v, str):
            named[k[len(prefix):]] = v
    bos = meta.token(Keys.Tokenizer.BOS_ID)
    eos = meta.token(Keys.Tokenizer.EOS_ID)
    eot = meta.token(Keys.Tokenizer.EOT_ID)
    if eot is None:
        eot = eot_from_template(template, meta.control_tokens(), bos, eos)
    add_bos = meta.values.get(Keys.Tokenizer.ADD_BOS)
    return TemplateInfo(
        source=shown,
        chat_template=template if isinstance(template, str) else None,
        bos_token=bos,
        eos_token=eos,
        eot_token=eot,
        architecture=meta.values.get(Keys.General.ARCHITECTURE),
        name=meta.values.get(Keys.General.NAME),
        add_bos_token=bool(add_bos) if add_bos is not None else None,
        named_templates=named,
    )
