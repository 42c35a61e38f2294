"""A restricted unpickler for the CIFAR python batches.

A pickle is a program: unpickling an arbitrary file can run any command (``os.system`` via
``__reduce__``). The CIFAR batches only need plain containers (dict, list, bytes, int, str, which
pickle builds without looking anything up) plus numpy's array reconstruction. So ``find_class``
admits exactly those globals, each replaced by a guarded version, and refuses everything else
before it is ever called.

Admitted globals (checked against the official CIFAR-10/100 files, written by Python 2 with
numpy 1, and against re-saved copies written by Python 3 with numpy 2):

- ``numpy.core.multiarray._reconstruct`` / ``numpy._core.multiarray._reconstruct``: only to build
  a plain ``numpy.ndarray``;
- ``numpy.ndarray`` (the class handed to ``_reconstruct``) and ``numpy.dtype`` (refusing object
  dtypes, whose payload would be arbitrary pickled objects);
- ``_codecs.encode``: how a Python 3 pickle at protocol 2 stores ``bytes``; only text codecs.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from naviewer.errors import NaviewerError

# the real reconstruct function, found without naming numpy's private module (moved in numpy 2)
_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(1, dtype=np.uint8))[0]
_TEXT_CODECS = {"latin1", "latin-1", "iso-8859-1", "iso8859-1", "ascii", "utf-8", "utf8"}


class RefusedPickle(Exception):
    """The pickle asked for something outside the allow-list (never executed)."""


def _reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    if subtype is not np.ndarray:
        raise RefusedPickle(f"array subtype {subtype!r}")
    return _RECONSTRUCT(np.ndarray, shape, dtype)


def _dtype(spec: Any, align: bool = False, copy: bool = False) -> np.dtype:
    if not isinstance(spec, (str, bytes)):
        raise RefusedPickle(f"dtype spec {type(spec).__name__}")
    dt = np.dtype(spec.decode("latin1") if isinstance(spec, bytes) else spec, bool(align), bool(copy))
    if dt.hasobject:
        raise RefusedPickle("object dtype")
    return dt


def _encode(text: Any, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    if not isinstance(text, str) or not isinstance(encoding, str) or encoding.lower() not in _TEXT_CODECS:
        raise RefusedPickle(f"_codecs.encode with codec {encoding!r}")
    return text.encode(encoding)


def _empty_bytes(*args: Any) -> bytes:
    """``bytes()``: how Python 3 writes an empty ``b''`` at pickle protocol 2 (a re-saved batch with an empty field
    was refused as malicious). Only the empty call: ``bytes(10**12)`` would allocate a terabyte."""
    if args:
        raise RefusedPickle("bytes() with arguments")
    return b""


def _frombuffer(buf: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    """How numpy writes an array at pickle protocol 5 (Python 3.14's default: a re-saved batch was refused as
    malicious). Only bytes of exactly the size the shape and a plain dtype say, as a copy."""
    if isinstance(buf, pickle.PickleBuffer):
        buf = bytes(buf.raw())
    if not isinstance(buf, (bytes, bytearray)) or not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise RefusedPickle("numpy _frombuffer with a buffer or dtype that is not plain data")
    if not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 0 for d in shape) or order not in ("C", "F"):
        raise RefusedPickle(f"numpy _frombuffer with shape {shape!r}, order {order!r}")
    if int(np.prod(shape, dtype=np.int64)) * dtype.itemsize != len(buf):
        raise RefusedPickle(f"numpy _frombuffer: {len(buf)} bytes for shape {shape} of {dtype}")
    return np.frombuffer(bytes(buf), dtype=dtype).reshape(shape, order=order).copy()


_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("__builtin__", "bytes"): _empty_bytes,
    ("builtins", "bytes"): _empty_bytes,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _dtype,
    ("_codecs", "encode"): _encode,
}


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves only the globals CIFAR batches need."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise RefusedPickle(f"global {module}.{name}") from None

    def persistent_load(self, pid: Any) -> Any:
        raise RefusedPickle("persistent id")


def load_pickle(path: "str | Path") -> Any:
    """Unpickle ``path`` (``encoding="bytes"``, as the CIFAR batches need) through the allow-list.

    Any refusal, truncation or corruption becomes a ``NaviewerError`` naming the file.
    """
    from naviewer.io import check_regular_file

    path = Path(path)
    check_regular_file(path)  # a pipe named data_batch_1 blocked for ever; /dev/zero read until the memory ran out
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise NaviewerError("file not found", path) from None
    except IsADirectoryError:
        raise NaviewerError("expected a file, found a folder", path) from None
    except OSError as exc:
        raise NaviewerError(f"cannot read file: {exc.strerror or exc}", path) from None
    if not data:
        raise NaviewerError("file is empty", path)
    try:
        return RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
    except RefusedPickle as exc:
        raise NaviewerError(
            f"refused to unpickle: the file asks for {exc}, which a CIFAR batch never needs "
            "(possibly a malicious pickle; nothing was executed)",
            path,
        ) from None
    except (pickle.UnpicklingError, EOFError) as exc:
        raise NaviewerError(f"not a readable pickle (truncated or corrupt): {exc}", path) from None
    except (ValueError, TypeError, IndexError, KeyError, AttributeError, UnicodeError, OverflowError) as exc:
        raise NaviewerError(f"corrupt pickle: {type(exc).__name__}: {exc}", path) from None
    except MemoryError:
        raise NaviewerError("corrupt pickle: it asks for more memory than is available", path) from None
