"""Read the tensors of a TorchScript archive (OpenAI's original CLIP `ViT-*.pt` files) without running or
unpickling anything else.

`torch.load(..., weights_only=True)` refuses these archives (their pickle builds `__torch__.*` module objects), and
`torch.jit.load` would deserialise the archive's code. A TorchScript archive is a zip file:

    <name>/data.pkl          pickle of the module tree: GLOBAL '__torch__.<class>', NEWOBJ, BUILD {attribute: value}
    <name>/data/<key>        raw little-endian storage bytes, referenced from data.pkl by persistent id
                             ('storage', torch.<Type>Storage, key, location, numel)
    <name>/code/, constants.pkl, version, byteorder ...

`state_dict_from_torchscript` unpickles data.pkl with an allow-list: module classes become inert records of their
attributes (no class code exists or runs), tensors are rebuilt from their storages with `torch._utils`' layout
(offset, size, stride), and every other global is refused. Walking the records gives the `module.sub.attr` keys of
the archive's parameters and buffers, as `ScriptModule.state_dict()` would.
"""

from __future__ import annotations

import pickle
import zipfile
from collections import OrderedDict
from typing import Any

import torch

# torch.<Name>Storage -> dtype: the storage types a TorchScript pickle names in its persistent ids
_STORAGE_DTYPES = {
    "HalfStorage": torch.float16, "FloatStorage": torch.float32, "DoubleStorage": torch.float64,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8, "BoolStorage": torch.bool,
}
_JIT_LIST_BUILDERS = ("build_intlist", "build_doublelist", "build_boollist", "build_tensorlist", "build_strlist")


class NotTorchScript(ValueError):
    """The file is not a TorchScript archive (or not one this reader understands)."""


def is_torchscript(path: str) -> bool:
    """A zip archive with TorchScript's `<name>/constants.pkl` (absent from `torch.save` files)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.count("/") == 1 and n.endswith("/constants.pkl") for n in z.namelist())


class _Record:
    """A TorchScript module object: only its attributes, set by BUILD."""

    def __init__(self, *args: Any) -> None:
        self.attributes: dict[str, Any] = {}

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise pickle.UnpicklingError(f"unexpected module state of type {type(state).__name__}")
        self.attributes = state


def _rebuild_tensor(storage: torch.Tensor, offset: int, size: tuple, stride: tuple, *_: Any) -> torch.Tensor:
    """torch._utils._rebuild_tensor_v2's layout on a flat storage tensor; requires_grad and hooks are ignored."""
    return storage.as_strided(tuple(size), tuple(stride), offset)


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str) -> None:
        import io

        super().__init__(io.BytesIO(data))
        self.archive, self.prefix = archive, prefix
        self.records: dict[tuple[str, str], type] = {}
        self.storages: dict[str, torch.Tensor] = {}  # key -> flat storage, shared by every view of it

    def find_class(self, module: str, name: str) -> Any:
        if module == "__torch__" or module.startswith("__torch__."):
            return self.records.setdefault((module, name), type(name, (_Record,), {}))
        if (module, name) in (("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_tensor")):
            return _rebuild_tensor
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        if module == "torch.jit._pickle" and name in _JIT_LIST_BUILDERS:
            return list
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} (only tensors and module attributes are read)")

    def persistent_load(self, pid: Any) -> torch.Tensor:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], torch.dtype)):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r:.80}")
        _, dtype, key, _location, numel = pid
        if key not in self.storages:
            raw = self.archive.read(f"{self.prefix}/data/{key}")
            storage = torch.frombuffer(bytearray(raw), dtype=dtype) if raw else torch.empty(0, dtype=dtype)
            if storage.numel() < numel:
                raise pickle.UnpicklingError(f"storage {key} holds {storage.numel()} values, the pickle expects {numel}")
            self.storages[key] = storage
        return self.storages[key]


def _flatten(obj: _Record, prefix: str, out: dict[str, torch.Tensor]) -> None:
    for name, value in obj.attributes.items():
        if isinstance(value, torch.Tensor):
            out[prefix + name] = value
        elif isinstance(value, _Record):
            _flatten(value, f"{prefix}{name}.", out)


def state_dict_from_torchscript(path: str) -> dict[str, torch.Tensor]:
    """Every tensor attribute of the archive's module tree, keyed like `ScriptModule.state_dict()`.

    Raises NotTorchScript if `path` is not such an archive, pickle.UnpicklingError if its pickle holds anything but
    module records, tensors and plain values."""
    if not is_torchscript(path):
        raise NotTorchScript(f"{path} is not a TorchScript archive")
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        prefix = next(n for n in names if n.count("/") == 1 and n.endswith("/constants.pkl")).split("/")[0]
        order = archive.read(f"{prefix}/byteorder").decode().strip() if f"{prefix}/byteorder" in names else "little"
        if order != "little":
            raise NotTorchScript(f"{path} stores {order}-endian tensors; only little-endian archives are read")
        root = _Unpickler(archive.read(f"{prefix}/data.pkl"), archive, prefix).load()
    if not isinstance(root, _Record):
        raise pickle.UnpicklingError(f"{path}: data.pkl does not hold a module")
    out: dict[str, torch.Tensor] = {}
    _flatten(root, "", out)
    return out
