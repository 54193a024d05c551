"""Pickle streams, disassembled and never run.

What is checked: every import the stream makes (``GLOBAL``, ``INST``, and ``STACK_GLOBAL``
whose module and name come off the stack) against the ``ImportPolicy``, and every call
(``REDUCE``, ``NEWOBJ``, ``NEWOBJ_EX``, ``OBJ``) and state change (``BUILD``) against what it
applies to: a call of anything not imported by name (the result of another call, say) and
``BUILD`` on an imported class or function are ``unsafe_call``; an extension-registry code
(``EXT1/2/4``) or a ``STACK_GLOBAL`` whose names are not plain strings is
``unresolved_import``. Those findings make the file UNSAFE.

How: a symbolic run of the unpickler's stack, mark stack and memo, driven by pickletools'
opcode table (each opcode's argument format and stack effect), in which a value is only ever
a string, an import, a small int or "anything". ``STACK_GLOBAL`` arguments are resolved
through ``MEMOIZE``/``PUT``/``GET``/``DUP`` as the unpickler would. ``pickletools.genops``
itself is not used because it reads every argument into memory (a 4 GiB ``BINBYTES8``
included): here byte arguments are skipped with ``seek``, strings longer than
``ScanLimits.max_name_chars`` are skipped too (no module or attribute has such a name, so
one used as an import is ``unresolved_import``), and opcodes, stack and memo are capped.

A stream that does not parse is ERROR (``malformed``), unless what was read before the fault
already made it UNSAFE: the unpickler would have run those opcodes before failing. A file
may hold several pickles: the legacy ``torch.save`` format (a magic-number pickle, then four
more, then raw storage bytes) is read as exactly five; otherwise pickles after the first are
scanned as long as they parse, as a loader calling ``pickle.load`` repeatedly would see them.
"""

from __future__ import annotations

import io
import pickletools
from dataclasses import dataclass
from typing import IO

from modelregistry_server.metadata.domain.scanning.model import FindingKind, FindingLog, ScanLimits
from modelregistry_server.metadata.domain.scanning.policy import ImportClass, ImportPolicy
from modelregistry_server.metadata.domain.scanning.reader import (
    BlockReader,
    LimitReached,
    Malformed,
)

_OPS: dict[int, pickletools.OpcodeInfo] = {ord(op.code): op for op in pickletools.opcodes}
_MARK = pickletools.markobject
_PREFIX_WIDTH = {
    pickletools.TAKEN_FROM_ARGUMENT1: 1,
    pickletools.TAKEN_FROM_ARGUMENT4: 4,
    pickletools.TAKEN_FROM_ARGUMENT4U: 4,
    pickletools.TAKEN_FROM_ARGUMENT8U: 8,
}
_LATIN1_STRINGS = {"BINSTRING", "SHORT_BINSTRING"}
_UTF8_STRINGS = {"BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8"}
_STRINGS = _LATIN1_STRINGS | _UTF8_STRINGS | {"STRING", "UNICODE"}
_PUTS = {"PUT", "BINPUT", "LONG_BINPUT"}
_GETS = {"GET", "BINGET", "LONG_BINGET"}
_CALLS = {"REDUCE", "NEWOBJ", "NEWOBJ_EX"}
_EXTENSIONS = {"EXT1", "EXT2", "EXT4"}
HIGHEST_PROTOCOL = 5
TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # torch.serialization.MAGIC_NUMBER
TORCH_LEGACY_PICKLES = 5


class _Anything:
    def __repr__(self) -> str:
        return "<anything>"


ANYTHING = _Anything()


@dataclass(frozen=True)
class _Import:
    module: str
    name: str


class _Memo:
    """Which memo keys are set (as the unpickler's checks need) and the values that matter.

    Keys set in order (every pickler does that) cost nothing; other keys and kept values
    are capped. A value not kept reads back as "anything", which can only make a later
    import unresolved, never resolve one wrongly.
    """

    def __init__(self, cap: int) -> None:
        self._cap = cap
        self._dense = 0  # keys 0.._dense-1 are all set
        self._sparse: set[int] = set()
        self._values: dict[int, object] = {}

    def __len__(self) -> int:
        return self._dense + len(self._sparse)

    def __contains__(self, key: int) -> bool:
        return 0 <= key < self._dense or key in self._sparse

    def put(self, key: int, value: object) -> None:
        if key == self._dense:
            self._dense += 1
            while self._dense in self._sparse:
                self._sparse.remove(self._dense)
                self._dense += 1
        elif key > self._dense and key not in self._sparse:
            if len(self._sparse) >= self._cap:
                raise LimitReached(f"more than {self._cap} memo keys out of order")
            self._sparse.add(key)
        keep = isinstance(value, str | _Import)
        if keep and (key in self._values or len(self._values) < self._cap):
            self._values[key] = value
        else:
            self._values.pop(key, None)

    def get(self, key: int) -> object:
        return self._values.get(key, ANYTHING)


class _Walk:
    """The symbolic unpickler over one stream; ``run_one`` reads one pickle up to STOP."""

    def __init__(
        self,
        reader: BlockReader,
        policy: ImportPolicy,
        limits: ScanLimits,
        log: FindingLog,
        where: str,
    ) -> None:
        self.reader = reader
        self.policy = policy
        self.limits = limits
        self.log = log
        self.where = where
        self.opcodes = 0
        self.stack: list[object] = []
        self.marks: list[int] = []
        self.memo = _Memo(limits.max_pickle_memo)

    def run_one(self) -> object:
        """Walk one pickle; return what STOP would return (a value as this module knows it)."""
        self.stack, self.marks = [], []
        self.memo = _Memo(self.limits.max_pickle_memo)
        while True:
            offset = self.reader.tell()
            self.opcodes += 1
            if self.opcodes > self.limits.max_pickle_opcodes:
                raise LimitReached(f"more than {self.limits.max_pickle_opcodes} opcodes", offset)
            code = self.reader.read(1)[0]
            op = _OPS.get(code)
            if op is None:
                raise Malformed(f"unknown opcode 0x{code:02x}", offset)
            try:
                arg = self._argument(op)
            except (ValueError, UnicodeDecodeError) as exc:
                raise Malformed(f"bad argument to {op.name}: {exc}", offset) from exc
            popped, sliced = self._pop(op, offset)
            if op.name == "STOP":
                return popped[0]
            self._apply(op, arg, popped, sliced, offset)
            if len(self.stack) > self.limits.max_pickle_stack:
                raise LimitReached(f"stack deeper than {self.limits.max_pickle_stack}", offset)

    def _argument(self, op: pickletools.OpcodeInfo) -> object:
        spec = op.arg
        if spec is None:
            return None
        cap = self.limits.max_name_chars
        if spec.n >= 0:
            return spec.reader(io.BytesIO(self.reader.read(spec.n)))
        if spec.n == pickletools.UP_TO_NEWLINE:
            if op.name in ("GLOBAL", "INST"):
                return self._line_pair(cap)
            line = self.reader.readline(cap)
            return ANYTHING if line is None else spec.reader(io.BytesIO(line))
        width = _PREFIX_WIDTH[spec.n]
        signed = spec.n == pickletools.TAKEN_FROM_ARGUMENT4
        length = int.from_bytes(self.reader.read(width), "little", signed=signed)
        if length < 0:
            raise ValueError(f"negative length {length}")
        if op.name in _STRINGS and length <= 4 * cap:
            data = self.reader.read(length)
            if op.name in _LATIN1_STRINGS:
                return data.decode("latin-1")
            return data.decode("utf-8", "surrogatepass")
        if op.name == "LONG1":
            return int.from_bytes(self.reader.read(length), "little", signed=True)
        self.reader.skip(length)  # bytes, huge strings, LONG4: their content never matters
        return ANYTHING

    def _line_pair(self, cap: int) -> tuple[str, str] | None:
        lines = [self.reader.readline(cap), self.reader.readline(cap)]
        if lines[0] is None or lines[1] is None:
            return None
        module, name = (line[:-1].decode("utf-8") for line in lines if line is not None)
        return module, name

    def _pop(self, op: pickletools.OpcodeInfo, offset: int) -> tuple[list[object], list[object]]:
        """Pop what ``op`` consumes: (the items it pops, the items above the MARK it pops to)."""
        before = op.stack_before
        sliced: list[object] = []
        if _MARK in before or (
            op.name == "POP" and self.marks and self.marks[-1] == len(self.stack)
        ):
            if not self.marks:
                raise Malformed(f"{op.name} without a MARK", offset)
            mark = self.marks.pop()
            sliced = self.stack[mark:]
            del self.stack[mark:]
            count = before.index(_MARK) if _MARK in before else 0
        else:
            count = len(before)
        fence = self.marks[-1] if self.marks else 0
        if len(self.stack) - count < fence or (op.name in _PUTS and len(self.stack) <= fence):
            raise Malformed(f"{op.name} on an empty stack", offset)
        popped = self.stack[len(self.stack) - count :]
        del self.stack[len(self.stack) - count :]
        return popped, sliced

    def _apply(
        self,
        op: pickletools.OpcodeInfo,
        arg: object,
        popped: list[object],
        sliced: list[object],
        offset: int,
    ) -> None:
        name = op.name
        push = self.stack.append
        if name in _STRINGS:
            push(
                arg if isinstance(arg, str) and len(arg) <= self.limits.max_name_chars else ANYTHING
            )
        elif name in ("GLOBAL", "INST"):
            imported = self._import(arg, offset)
            push(imported if name == "GLOBAL" else ANYTHING)
        elif name == "STACK_GLOBAL":
            push(self._import(tuple(popped), offset))
        elif name in _PUTS or name == "MEMOIZE":
            key = len(self.memo) if name == "MEMOIZE" else arg
            if not isinstance(key, int) or key < 0:
                raise Malformed(f"{name} with key {key!r}", offset)
            self.memo.put(key, popped[0] if popped else self.stack[-1])
            self.stack.extend(popped)
        elif name in _GETS:
            if not isinstance(arg, int) or arg not in self.memo:
                raise Malformed(f"{name} of memo key {arg!r}, never set", offset)
            push(self.memo.get(arg))
        elif name == "DUP":
            self.stack.extend(popped * 2)
        elif name == "OBJ":
            if not sliced:
                raise Malformed("OBJ without a class", offset)
            self._check_call(name, sliced[0], offset)
            push(ANYTHING)
        elif name in _CALLS:
            self._check_call(name, popped[0], offset)
            push(ANYTHING)
        elif name == "BUILD":
            self._check_build(popped[0], offset)
            push(popped[0])
        elif name in _EXTENSIONS:
            self._flag(FindingKind.UNRESOLVED_IMPORT, f"import by extension code {arg}", offset)
            push(ANYTHING)
        elif name == "PROTO":
            if not isinstance(arg, int) or arg > HIGHEST_PROTOCOL:
                raise Malformed(f"unsupported pickle protocol {arg}", offset)
        elif name == "MARK":
            self.marks.append(len(self.stack))
        elif name == "LONG1":
            push(arg)
        else:
            self.stack.extend([ANYTHING] * len(op.stack_after))

    def _import(self, names: object, offset: int) -> object:
        if names is None:  # GLOBAL or INST with a line over max_name_chars
            detail = f"import of a name over {self.limits.max_name_chars} characters"
            self._flag(FindingKind.UNKNOWN_IMPORT, detail, offset)
            return ANYTHING
        if not (isinstance(names, tuple) and all(isinstance(n, str) for n in names)):
            detail = "import of a module or name that is not a string written in the stream"
            self._flag(FindingKind.UNRESOLVED_IMPORT, detail, offset)
            return ANYTHING
        module, name = names
        verdict = self.policy.classify(module, name)
        if verdict is ImportClass.DENIED:
            self._flag(FindingKind.DENIED_IMPORT, f"import {module}.{name}", offset)
        elif verdict is ImportClass.UNKNOWN:
            self._flag(FindingKind.UNKNOWN_IMPORT, f"import {module}.{name}", offset)
        return _Import(module, name)

    def _check_call(self, opname: str, callee: object, offset: int) -> None:
        if not isinstance(callee, _Import):
            detail = f"{opname} calls an object that was not imported by name"
            self._flag(FindingKind.UNSAFE_CALL, detail, offset)

    def _check_build(self, target: object, offset: int) -> None:
        if isinstance(target, _Import):
            detail = f"BUILD changes the imported {target.module}.{target.name} itself"
            self._flag(FindingKind.UNSAFE_CALL, detail, offset)

    def _flag(self, kind: FindingKind, detail: str, offset: int) -> None:
        self.log.add(kind, f"{self.where}{detail}", offset)


def scan_pickle_stream(
    raw: IO[bytes],
    size: int,
    policy: ImportPolicy,
    limits: ScanLimits,
    log: FindingLog,
    where: str = "",
) -> None:
    """Scan the pickle(s) in the next ``size`` bytes of ``raw``, adding findings to ``log``.

    ``where`` prefixes every finding's detail (an archive member's name and ": ").
    """
    reader = BlockReader(raw, size)
    walk = _Walk(reader, policy, limits, log, where)
    try:
        first = walk.run_one()
        if isinstance(first, int) and first == TORCH_LEGACY_MAGIC:
            for _ in range(TORCH_LEGACY_PICKLES - 1):
                walk.run_one()
            return  # raw storage bytes follow
        while reader.remaining > 0:
            try:
                walk.run_one()
            except Malformed:
                return  # trailing bytes that are no pickle: a single load never reads them
    except Malformed as exc:
        log.add(FindingKind.MALFORMED, f"{where}{exc.detail}", exc.offset)
    except LimitReached as exc:
        log.add(FindingKind.LIMIT_EXCEEDED, f"{where}{exc.detail}", exc.offset)
