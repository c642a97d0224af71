"""Values that cross between a candidate's process and the launcher that judges it: data, never objects.

This file runs *inside* the sandbox (the launcher executes its source; it imports nothing of
warriorflow) and on the host in tests. Both sides speak framed ``marshal`` messages on two pipes.

* :func:`encode` turns a value into a tagged tree of builtin scalars, lists and tuples. It runs on the
  side that owns the value (the candidate, for results), so whatever code a candidate's class runs
  while being encoded runs in the candidate's process.
* :func:`decode` runs in the launcher: it accepts only that tree (exact builtin types, known tags,
  bounded depth and size) and rebuilds plain values: ``None``, ``bool``, ``int``, ``float``,
  ``complex``, ``str``, ``bytes``, ``list``, ``tuple``, ``dict``, ``set``, ``frozenset``; numpy arrays
  and scalars of non-object dtypes; pandas ``Series``/``DataFrame``/``Index`` built from those. A
  candidate therefore cannot hand the checks an object with its own ``__eq__``; subclasses of the
  builtins cross as the builtin (an ``IntEnum`` as its ``int``), like a value printed and read back.
* :func:`serve` is the candidate's side (run its module, then answer ``call``/``eval``/``exec``
  requests); :class:`Remote` is the launcher's side.

Anything else (a generator, a function, a custom class, a torch tensor) cannot be checked: the
candidate's call raises ``TypeError`` naming the type, and the check fails with that error.
"""

import builtins
import marshal
import os
import signal
import struct
import sys

MAX_MESSAGE = 256 << 20  # bytes of one framed message
MAX_DEPTH = 100  # nesting of containers
_HEADER = struct.Struct("<Q")
_SCALARS = {type(None): "n", bool: "b", int: "i", float: "f", complex: "c", str: "s", bytes: "y"}
_SIMPLE_KINDS = "biufcmMSU"


class Unsupported(TypeError):
    """A value of a type that cannot cross the process boundary as data."""


# ---------------------------------------------------------------------------------------------- encode
def encode(value, depth=0):
    """A tagged tree (tuples of builtins) for ``value``; raises :class:`Unsupported` for other types."""
    if depth > MAX_DEPTH:
        raise Unsupported(f"a value nested more than {MAX_DEPTH} levels deep")
    kind = type(value)
    tag = _SCALARS.get(kind)
    if tag == "n":
        return ("n",)
    if tag is not None:
        return (tag, value)
    module = getattr(kind, "__module__", "") or ""
    if module.startswith("numpy"):
        return _encode_numpy(value, depth)
    if module.startswith("pandas"):
        return _encode_pandas(value, depth)
    if isinstance(value, bool):
        return ("b", bool(value))
    if isinstance(value, int):
        return ("i", int.__index__(value))
    if isinstance(value, float):
        return ("f", float.__float__(value))
    if isinstance(value, complex):
        return ("c", complex(value.real, value.imag))
    if isinstance(value, str):
        return ("s", str.__str__(value))
    if isinstance(value, (bytes, bytearray)):
        return ("y", bytes(value))
    if isinstance(value, list):
        return ("l", [encode(v, depth + 1) for v in list.__iter__(value)])
    if isinstance(value, tuple):
        return ("t", [encode(v, depth + 1) for v in tuple.__iter__(value)])
    if isinstance(value, dict):
        return ("d", [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in dict.items(value)])
    if isinstance(value, frozenset):
        return ("fs", [encode(v, depth + 1) for v in frozenset.__iter__(value)])
    if isinstance(value, set):
        return ("set", [encode(v, depth + 1) for v in set.__iter__(value)])
    name = getattr(kind, "__qualname__", "?")
    raise Unsupported(f"a value of type {module}.{name} cannot be checked outside the candidate's process")


def _encode_numpy(value, depth):
    np = sys.modules["numpy"]
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            return ("ndo", list(value.shape), [encode(v, depth + 1) for v in value.ravel().tolist()])
        if value.dtype.kind not in _SIMPLE_KINDS or value.dtype.fields is not None:
            raise Unsupported(f"a numpy array of dtype {value.dtype} cannot be checked")
        return ("nd", value.dtype.str, list(value.shape), np.ascontiguousarray(value).tobytes())
    if isinstance(value, np.generic):
        if value.dtype.kind not in _SIMPLE_KINDS and value.dtype.kind != "b":
            raise Unsupported(f"a numpy scalar of dtype {value.dtype} cannot be checked")
        return ("np", value.dtype.str, value.tobytes())
    raise Unsupported(f"a value of type numpy.{type(value).__name__} cannot be checked")


def _encode_array(values, depth):
    np = sys.modules["numpy"]
    return _encode_numpy(np.asarray(values), depth)


def _encode_pandas(value, depth):
    pd = sys.modules["pandas"]
    if isinstance(value, pd.MultiIndex):
        raise Unsupported("a pandas MultiIndex cannot be checked")
    if isinstance(value, pd.Index):
        return ("pdi", _encode_array(value.to_numpy(), depth + 1), encode(value.name, depth + 1))
    if isinstance(value, pd.Series):
        return ("pds", _encode_array(value.to_numpy(), depth + 1), encode(value.index, depth + 1),
                encode(value.name, depth + 1))
    if isinstance(value, pd.DataFrame):
        columns = [encode(c, depth + 1) for c in value.columns]
        data = [_encode_array(value.iloc[:, i].to_numpy(), depth + 1) for i in range(value.shape[1])]
        return ("pdf", columns, data, encode(value.index, depth + 1))
    raise Unsupported(f"a value of type pandas.{type(value).__name__} cannot be checked")


# ---------------------------------------------------------------------------------------------- decode
class Forged(ValueError):
    """The other side sent something that is not a value tree."""


def decode(node, depth=0):
    """The value for a tree made by :func:`encode`; raises :class:`Forged` for anything else."""
    if depth > MAX_DEPTH + 2:
        raise Forged("nested too deeply")
    if type(node) is not tuple or not node or type(node[0]) is not str:
        raise Forged("not a value node")
    tag, n = node[0], len(node)
    if tag == "n" and n == 1:
        return None
    expect = {"b": bool, "i": int, "f": float, "c": complex, "s": str, "y": bytes}.get(tag)
    if expect is not None and n == 2 and type(node[1]) is expect:
        return node[1]
    if tag in ("l", "t", "set", "fs") and n == 2 and type(node[1]) is list:
        items = [decode(v, depth + 1) for v in node[1]]
        try:
            return {"l": list, "t": tuple, "set": set, "fs": frozenset}[tag](items)
        except TypeError as exc:
            raise Forged(f"unhashable set member: {exc}") from None
    if tag == "d" and n == 2 and type(node[1]) is list:
        out = {}
        for pair in node[1]:
            if type(pair) is not list or len(pair) != 2:
                raise Forged("not a dict item")
            try:
                out[decode(pair[0], depth + 1)] = decode(pair[1], depth + 1)
            except TypeError as exc:
                raise Forged(f"unhashable dict key: {exc}") from None
        return out
    if tag in ("nd", "ndo", "np"):
        return _decode_numpy(node, depth)
    if tag in ("pdi", "pds", "pdf"):
        return _decode_pandas(node, depth)
    raise Forged(f"unknown value node {tag[:20]!r}")


def _dtype(np, text):
    if type(text) is not str or len(text) > 16:
        raise Forged("not a dtype")
    try:
        dt = np.dtype(text)
    except (TypeError, ValueError):
        raise Forged("not a dtype") from None
    if dt.hasobject or dt.fields is not None or dt.subdtype is not None or dt.kind not in _SIMPLE_KINDS + "b":
        raise Forged(f"dtype {dt} is not a plain dtype")
    return dt


def _shape(shape):
    if type(shape) is not list or len(shape) > 32 or any(type(d) is not int or d < 0 for d in shape):
        raise Forged("not a shape")
    count = 1
    for d in shape:
        count *= d
    return tuple(shape), count


def _decode_numpy(node, depth):
    np = sys.modules.get("numpy")
    if np is None:
        try:
            import numpy as np
        except ImportError:
            raise Forged("a numpy value, but numpy is not installed in the sandbox") from None
    tag = node[0]
    if tag == "nd" and len(node) == 4 and type(node[3]) is bytes:
        dt = _dtype(np, node[1])
        shape, count = _shape(node[2])
        if dt.itemsize == 0 or len(node[3]) != dt.itemsize * count:
            raise Forged("array data does not match its shape")
        return np.frombuffer(node[3], dtype=dt).reshape(shape).copy()
    if tag == "ndo" and len(node) == 3 and type(node[2]) is list:
        shape, count = _shape(node[1])
        if len(node[2]) != count:
            raise Forged("array data does not match its shape")
        out = np.empty(count, dtype=object)
        for i, v in enumerate(node[2]):
            out[i] = decode(v, depth + 1)
        return out.reshape(shape)
    if tag == "np" and len(node) == 3 and type(node[2]) is bytes:
        dt = _dtype(np, node[1])
        if dt.itemsize == 0 or len(node[2]) != dt.itemsize:
            raise Forged("scalar data does not match its dtype")
        return np.frombuffer(node[2], dtype=dt)[0]
    raise Forged("not a numpy value")


def _decode_pandas(node, depth):
    try:
        import pandas as pd
    except ImportError:
        raise Forged("a pandas value, but pandas is not installed in the sandbox") from None
    tag = node[0]
    if tag == "pdi" and len(node) == 3:
        return pd.Index(_decode_array(node[1], depth), name=_label(node[2], depth))
    if tag == "pds" and len(node) == 4:
        index = decode(node[2], depth + 1)
        values = _decode_array(node[1], depth)
        if not isinstance(index, pd.Index) or len(index) != len(values):
            raise Forged("a series whose index does not match its values")
        return pd.Series(values, index=index, name=_label(node[3], depth))
    if tag == "pdf" and len(node) == 4 and type(node[1]) is list and type(node[2]) is list:
        if len(node[1]) != len(node[2]):
            raise Forged("a frame whose columns do not match its data")
        index = decode(node[3], depth + 1)
        if not isinstance(index, pd.Index):
            raise Forged("a frame without an index")
        columns = [_label(c, depth) for c in node[1]]
        data = [_decode_array(c, depth) for c in node[2]]
        if any(len(c) != len(index) for c in data):
            raise Forged("a frame whose columns differ in length")
        frame = pd.DataFrame({i: c for i, c in enumerate(data)}, index=index)
        frame.columns = pd.Index(columns) if columns else frame.columns
        return frame
    raise Forged("not a pandas value")


def _decode_array(node, depth):
    if type(node) is not tuple or not node or node[0] not in ("nd", "ndo"):
        raise Forged("not an array")
    return _decode_numpy(node, depth + 1)


def _label(node, depth):
    value = decode(node, depth + 1)
    try:
        hash(value)
    except TypeError:
        raise Forged("an unhashable label") from None
    return value


# ---------------------------------------------------------------------------------------------- framing
def send(fd, message):
    data = marshal.dumps(message)
    if len(data) > MAX_MESSAGE:
        raise Unsupported(f"a value of {len(data)} bytes is over the {MAX_MESSAGE}-byte limit")
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view):]


def _read_exactly(fd, n):
    chunks, left = [], n
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError("the other process closed its pipe")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def receive(fd):
    (size,) = _HEADER.unpack(_read_exactly(fd, _HEADER.size))
    if size > MAX_MESSAGE:
        raise Forged(f"a message of {size} bytes")
    try:
        return marshal.loads(_read_exactly(fd, size))
    except (ValueError, EOFError, TypeError) as exc:
        raise Forged(f"not a message: {exc}") from None


# ---------------------------------------------------------------------------------------------- candidate
def _failure(exc):
    try:
        text = str(exc)[:2000]
    except BaseException:
        text = "?"
    name = type(exc).__name__
    return ("raise", name if type(name) is str else "Exception", text if type(text) is str else "?")


def serve(source, rfd, wfd):
    """The candidate's process: run ``source`` as ``__main__``, report how that went, then answer requests
    until the launcher closes the pipe. Never returns."""
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    try:
        exec(compile(source, "<candidate>", "exec"), namespace)
        reply = ("ok", ("n",))
    except BaseException as exc:
        reply = _failure(exc)
    _flush()
    send(wfd, reply)
    while True:
        try:
            request = receive(rfd)
        except EOFError:
            _flush()
            os._exit(0)
        try:
            reply = ("ok", encode(_answer(request, namespace)))
        except BaseException as exc:
            reply = _failure(exc)
        _flush()
        send(wfd, reply)


def _answer(request, namespace):
    kind = request[0]
    if kind == "call":
        _, name, args, kwargs = request
        if name not in namespace:
            raise NameError(f"the solution does not define {name}")
        return namespace[name](*decode(args), **decode(kwargs))
    if kind == "eval":
        return eval(compile(request[1], "<prediction>", "eval"), namespace)
    if kind == "exec":
        _, code, env, want = request
        scope = decode(env)
        scope["__builtins__"] = builtins
        exec(compile(code, "<solution>", "exec"), scope)
        if want not in scope:
            raise NameError(f"the solution does not set {want}")
        return scope[want]
    raise ValueError(f"unknown request {kind!r}")


def _flush():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass


# ---------------------------------------------------------------------------------------------- launcher
_NOT_RAISED = (SystemExit, KeyboardInterrupt, GeneratorExit)


def rebuild_exception(name, text):
    """An exception for the launcher to raise, of the builtin class the candidate named (AssertionError
    stays a failed test, MemoryError a memory verdict); any other name becomes a RuntimeError."""
    text = text if type(text) is str else "?"
    cls = getattr(builtins, name, None) if type(name) is str else None
    if name == "SystemExit":
        return SystemExit(f"the candidate exited: {text[:200]}")
    if isinstance(cls, type) and issubclass(cls, BaseException) and cls not in _NOT_RAISED:
        try:
            return cls(text)
        except TypeError:
            pass
    return RuntimeError("{}: {}".format(name if type(name) is str else "?", text))


class Remote:
    """The launcher's handle on the candidate's process."""

    def __init__(self, pid, wfd, rfd):
        self.pid, self.wfd, self.rfd = pid, wfd, rfd

    def _reply(self):
        try:
            reply = receive(self.rfd)
        except EOFError:
            self._died()
        if type(reply) is not tuple or not reply:
            raise Forged("not a reply")
        if reply[0] == "ok" and len(reply) == 2:
            return decode(reply[1])
        if reply[0] == "raise" and len(reply) == 3:
            raise rebuild_exception(reply[1], reply[2])
        raise Forged("not a reply")

    def _ask(self, request):
        try:
            send(self.wfd, request)
        except (BrokenPipeError, OSError):
            self._died()
        return self._reply()

    def ready(self):
        return self._reply()

    def function(self, name):
        def call(*args, **kwargs):
            return self._ask(("call", name, encode(args), encode(kwargs)))
        call.__name__ = name
        return call

    def eval(self, expression):
        return self._ask(("eval", expression))

    def exec(self, code, env, want="result"):
        env = {k: v for k, v in env.items() if k != "__builtins__"}
        return self._ask(("exec", code, encode(env), want))

    def _died(self):
        _, status = os.waitpid(self.pid, 0)
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            signal.signal(sig, signal.SIG_DFL) if sig not in (signal.SIGKILL, signal.SIGSTOP) else None
            os.kill(os.getpid(), sig)  # the launcher ends the way the candidate did (CPU time, memory, ...)
        code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
        raise RuntimeError(f"the candidate's process ended (exit status {code}) before the checks did")

    def close(self):
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except OSError:
            pass
