"""Reading a PyTorch `pytorch_model.bin` state dict into NumPy arrays, without torch.

`torch.save` writes a zip archive: `<name>/data.pkl`, a pickle whose
tensors are calls of `torch._utils._rebuild_tensor_v2` on storages it
names by key, and `<name>/data/<key>`, each storage's raw bytes. The
unpickler below builds arrays from those bytes and accepts no other
callable than the handful a state dict uses, so a file cannot run code
(as `torch.load(weights_only=True)` guarantees). Files in torch's legacy
format (before torch 1.6) are refused with a message.
"""

import collections
import pickle
import zipfile

import numpy as np

from electra_tf.utils.errors import UserError

_DTYPES = {"FloatStorage": np.float32, "HalfStorage": np.float16, "DoubleStorage": np.float64,
           "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16, "CharStorage": np.int8,
           "ByteStorage": np.uint8, "BoolStorage": np.bool_, "BFloat16Storage": "bfloat16"}


def _numpy_dtype(name):
    dtype = _DTYPES[name]
    if dtype == "bfloat16":
        import ml_dtypes  # a dependency of TensorFlow

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(dtype)


def _rebuild_tensor(storage, offset, size, stride, *_):
    if not size:
        return np.array(storage[offset])
    strides = [s * storage.itemsize for s in stride]
    return np.lib.stride_tricks.as_strided(storage[offset:], shape=tuple(size), strides=strides).copy()


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, archive, root):
        super().__init__(file)
        self.archive, self.root = archive, root

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return lambda data, requires_grad, hooks: data
        if module == "torch" and name in _DTYPES:
            return name
        raise pickle.UnpicklingError(f"{module}.{name} is not part of a state dict")

    def persistent_load(self, saved_id):
        kind, storage_type, key, _, numel = saved_id
        if kind != "storage":
            raise pickle.UnpicklingError(f"unknown persistent id {kind!r}")
        raw = self.archive.read(f"{self.root}/data/{key}")
        return np.frombuffer(raw, dtype=_numpy_dtype(storage_type), count=numel)


def load_state_dict(path):
    """{name: NumPy array} of the state dict `torch.save` wrote to `path`.

    Args:
        path: a `pytorch_model.bin` (torch's zip format).

    Example:

    >>> import torch
    >>> path = os.path.join(tempfile.mkdtemp(), "pytorch_model.bin")
    >>> torch.save({"weight": torch.arange(6.0).reshape(2, 3).t(), "bias": torch.ones(2).half()}, path)
    >>> state = load_state_dict(path)
    >>> state["weight"].tolist(), state["bias"].dtype
    ([[0.0, 3.0], [1.0, 4.0], [2.0, 5.0]], dtype('float16'))
    """
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise UserError(f"cannot read {path} ({e}); torch's files from before version 1.6 are not read: load it "
                        "in transformers and save_pretrained it again (model.safetensors)") from None
    with archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise UserError(f"{path} is not a PyTorch state dict (no data.pkl); give model.safetensors instead")
        root = pickles[0].rsplit("/", 1)[0]
        try:
            with archive.open(pickles[0]) as f:
                state = _Unpickler(f, archive, root).load()
        except (pickle.UnpicklingError, KeyError, ValueError, TypeError) as e:
            raise UserError(f"cannot read {path} ({str(e).splitlines()[0]}); give the weights as "
                            "model.safetensors") from None
    if not isinstance(state, dict):
        raise UserError(f"{path} holds a {type(state).__name__}, not a state dict; give model.safetensors")
    return dict(state)
