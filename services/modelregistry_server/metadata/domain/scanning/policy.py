"""Which imports a pickle may make: an allowlist, a deny list, and "unknown" for the rest.

Unpickling an import (``GLOBAL``, ``STACK_GLOBAL``, ``INST``) hands the loader any callable
in any importable module, and ``REDUCE`` calls it: that is how a pickle runs code. So the
policy is an **allowlist**: the names a tensor checkpoint needs to rebuild its tensors (the
set PyTorch's own ``weights_only`` loader accepts) and plain containers. Anything else is
**unknown** and makes the file UNSAFE, because the scanner cannot tell a harmless class
from ``os.system`` by looking at it: an sklearn estimator in a ``.joblib`` is UNSAFE with an
``unknown_import`` finding, which is the truth (loading it runs that class's code). An
operator who trusts more names extends the allowlist with ``ImportPolicy.allowing``.

The **deny list** names what is known to execute code, touch files or the network, or load
another pickle. It is not what keeps a file out (unknown does that already): it names the
finding ``denied_import`` so a person sees at once that a file is hostile rather than
unusual, and it always wins, so no extension of the allowlist can admit ``os.system``.
Python 2 names (``__builtin__``, ``copy_reg``...) are judged under their Python 3 names too,
as the unpickler maps them.
"""

from __future__ import annotations

import _compat_pickle
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum


class ImportClass(StrEnum):
    ALLOWED = "allowed"
    DENIED = "denied"
    UNKNOWN = "unknown"


def _words(text: str) -> list[str]:
    return text.split()


def _names(module: str, *names: str) -> set[tuple[str, str]]:
    return {(module, name) for name in names}


_TORCH_DTYPES = _words(
    "float16 float32 float64 bfloat16 half float double complex32 complex64 complex128 cfloat "
    "cdouble int8 int16 int32 int64 short int long uint8 uint16 uint32 uint64 bool "
    "float8_e4m3fn float8_e5m2 float8_e4m3fnuz float8_e5m2fnuz float8_e8m0fnu "
    "qint8 quint8 qint32 quint4x2 quint2x4 strided sparse_coo contiguous_format "
    "channels_last channels_last_3d preserve_format"
)
_TORCH_KINDS = _words("Double Float Half BFloat16 Long Int Short Char Byte Bool")
_TORCH_STORAGES = [f"{kind}Storage" for kind in _TORCH_KINDS] + _words(
    "ComplexDoubleStorage ComplexFloatStorage QUInt8Storage QInt8Storage QInt32Storage "
    "QUInt4x2Storage QUInt2x4Storage UntypedStorage TypedStorage"
)
_TORCH_REBUILD = _words(
    "_rebuild_tensor _rebuild_tensor_v2 _rebuild_tensor_v3 _rebuild_parameter "
    "_rebuild_parameter_with_state _rebuild_qtensor _rebuild_sparse_tensor "
    "_rebuild_meta_tensor_no_storage _rebuild_nested_tensor _rebuild_wrapper_subclass "
    "_rebuild_device_tensor_from_cpu_tensor _rebuild_device_tensor_from_numpy"
)

# What a tensor checkpoint needs (PyTorch's weights_only set), numpy arrays, plain containers.
DEFAULT_ALLOWED: frozenset[tuple[str, str]] = frozenset(
    _names("collections", "OrderedDict", "Counter", "defaultdict", "deque")
    | _names("builtins", *_words("set frozenset bytearray bytes complex slice range"))
    | _names("builtins", *_words("bool int float str list dict tuple"))
    | _names("_codecs", "encode")  # how protocol 2 writes bytes
    | _names("torch._utils", *_TORCH_REBUILD)
    | _names("torch", "Size", "Tensor", "device", *_TORCH_DTYPES, *_TORCH_STORAGES)
    | _names("torch", *(f"{kind}Tensor" for kind in _TORCH_KINDS))
    | _names("torch.storage", "UntypedStorage", "TypedStorage")
    | _names("torch.nn.parameter", "Parameter")
    | _names("torch.serialization", "_get_layout")
    | _names("numpy", "dtype", "ndarray")
    | _names("numpy.core.multiarray", "_reconstruct", "scalar")
    | _names("numpy._core.multiarray", "_reconstruct", "scalar")
    | _names("numpy.core.numeric", "_frombuffer")
    | _names("numpy._core.numeric", "_frombuffer")
)

# Whole modules (and their submodules): processes, files, network, code, other pickles.
DEFAULT_DENIED_MODULES: frozenset[str] = frozenset(
    _words(
        "os posix nt posixpath ntpath subprocess _posixsubprocess sys runpy socket shutil "
        "importlib pty webbrowser ctypes _ctypes pickle _pickle cPickle dill cloudpickle marshal "
        "code codeop pdb bdb timeit cProfile profile trace pydoc multiprocessing asyncio signal "
        "threading _thread http urllib urllib2 httplib ftplib smtplib telnetlib ssl requests "
        "aiohttp httpx tempfile glob zipimport pkgutil venv ensurepip pip setuptools distutils "
        "commands platform io _io types inspect ast gc resource "
        "numpy.f2py numpy.testing numpy.distutils torch.hub torch._inductor torch.jit "
        "torch.utils.cpp_extension torch.package"
    )
)

# Single names in modules that are otherwise harmless.
DEFAULT_DENIED_NAMES: frozenset[tuple[str, str]] = frozenset(
    _names(
        "builtins",
        *_words("eval exec compile open getattr setattr delattr __import__ globals locals vars"),
        *_words("input breakpoint exit quit help type apply execfile file reload"),
    )
    | _names("operator", "attrgetter", "itemgetter", "methodcaller", "call")
    | _names("_operator", "attrgetter", "itemgetter", "methodcaller", "call")
    | _names("functools", "partial", "reduce", "partialmethod", "singledispatch")
    | _names("_functools", "partial", "reduce")
    | _names("numpy", "load", "fromfile", "loadtxt", "genfromtxt", "memmap")
    | _names("numpy.lib.npyio", "load")
    | _names("joblib", "load")
    | _names("torch", "load", "from_file", "compile")
    | _names("torch.serialization", "load")
)


def _py3(module: str, name: str) -> tuple[str, str]:
    """The names the unpickler imports for a Python 2 pickle (protocol < 3)."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


@dataclass(frozen=True)
class ImportPolicy:
    """The allowlist and the deny list one scan applies (see the module docstring)."""

    allowed: frozenset[tuple[str, str]] = DEFAULT_ALLOWED
    denied_modules: frozenset[str] = DEFAULT_DENIED_MODULES
    denied_names: frozenset[tuple[str, str]] = field(default=DEFAULT_DENIED_NAMES)

    def allowing(self, names: Iterable[tuple[str, str]]) -> ImportPolicy:
        """This policy with more (module, name) pairs allowed; denied ones stay denied."""
        return ImportPolicy(self.allowed | frozenset(names), self.denied_modules, self.denied_names)

    def classify(self, module: str, name: str) -> ImportClass:
        """ALLOWED, DENIED or UNKNOWN for the import of ``name`` from ``module``."""
        candidates = {(module, name), _py3(module, name)}
        if any(self._denied(m, n) for m, n in candidates):
            return ImportClass.DENIED
        if candidates & self.allowed:
            return ImportClass.ALLOWED
        return ImportClass.UNKNOWN

    def _denied(self, module: str, name: str) -> bool:
        parts = module.split(".")
        if any(".".join(parts[:i]) in self.denied_modules for i in range(1, len(parts) + 1)):
            return True
        # Protocol 4 resolves dotted names attribute by attribute: "eval.__call__" is eval.
        return (module, name.split(".")[0]) in self.denied_names


DEFAULT_POLICY = ImportPolicy()
