"""Reading other systems' pickles without running their code (docs/importing.md#safety).

A pickle can name any importable callable and have it called while loading. Score files need
none of that: this unpickler resolves only the few globals that plain containers and numpy
arrays are rebuilt from, and refuses every other name before anything is called, so a payload
such as ``os.system`` is never executed.
"""

from __future__ import annotations

import gzip
import io
import pickle
from pathlib import Path
from typing import Any

from slrbench.errors import SlrbenchError

# (module, name) pairs a pickle of lists, dicts, tuples, strings, numbers and numpy arrays uses.
_NUMPY_MODULES = ("numpy.core.multiarray", "numpy._core.multiarray")
ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    [(module, "_reconstruct") for module in _NUMPY_MODULES]
    + [(module, "scalar") for module in _NUMPY_MODULES]
    + [("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
       ("numpy", "ndarray"), ("numpy", "dtype"),
       ("builtins", "list"), ("builtins", "dict"), ("builtins", "tuple"), ("builtins", "set"),
       ("builtins", "frozenset"), ("builtins", "str"), ("builtins", "bytes"),
       ("builtins", "bytearray"), ("builtins", "int"), ("builtins", "float"),
       ("builtins", "complex"), ("builtins", "bool"), ("builtins", "slice"),
       ("collections", "OrderedDict"),
       ("_codecs", "encode")]  # how Python-2 era pickles store bytes
)
GZIP_MAGIC = b"\x1f\x8b"


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only `ALLOWED_GLOBALS`; anything else raises before it is called."""

    def __init__(self, file: io.BufferedIOBase, source: str) -> None:
        super().__init__(file, encoding="latin1")  # Python-2 pickles (numpy arrays) load too
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED_GLOBALS:
            raise SlrbenchError(
                f"{self.source}: refused to load: the pickle asks for '{module}.{name}'; "
                "expected numpy arrays, lists, dicts, strings and numbers only (nothing in it "
                "was run)")
        return super().find_class(module, name)


def load_pickle(path: str | Path) -> Any:
    """The object in a plain or gzip'd pickle file, through `RestrictedUnpickler`."""
    path = Path(path)
    data = path.read_bytes()
    if data[:2] == GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise SlrbenchError(f"{path}: a damaged gzip file ({exc}); expected a pickle or a "
                                "gzip'd pickle") from None
    try:
        return RestrictedUnpickler(io.BytesIO(data), str(path)).load()
    except SlrbenchError:
        raise
    except Exception as exc:  # any malformed stream: truncated, not a pickle, bad opcodes
        raise SlrbenchError(f"{path}: not a readable pickle ({type(exc).__name__}: "
                            f"{str(exc)[:80]}); expected a pickle file") from None
