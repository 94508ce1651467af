"""The pre-training data format (TFRecords + dataset_info.json) and its tf.data reader.

`data_prep` writes this format; `training` reads it.
"""
