import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _float32_policy():
    """Every test starts in float32 and cannot leak a mixed policy into the next."""
    keras.mixed_precision.set_dtype_policy("float32")
    yield
    keras.mixed_precision.set_dtype_policy("float32")


def random_batch(config, batch_size, seed=0, min_len=None):
    """A batch shaped like packed pre-training data: [CLS] A [SEP] B [SEP] + padding."""
    rng = np.random.RandomState(seed)
    seq = config.max_seq_length
    first_id = max(config.pad_id, config.unk_id, config.cls_id, config.sep_id, config.mask_id) + 1
    ids = rng.randint(first_id, config.vocab_size, (batch_size, seq)).astype("int32")
    mask = np.zeros_like(ids)
    segments = np.zeros_like(ids)
    for row in range(batch_size):
        length = rng.randint(min_len or 8, seq + 1)
        split = rng.randint(2, length - 1)
        ids[row, 0] = config.cls_id
        ids[row, split] = config.sep_id
        ids[row, length - 1] = config.sep_id
        ids[row, length:] = config.pad_id
        mask[row, :length] = 1
        segments[row, split + 1:length] = 1
    return {"input_ids": ids, "input_mask": mask, "segment_ids": segments}
