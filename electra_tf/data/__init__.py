"""The pre-training data format (TFRecords + dataset_info.json) and its tf.data reader.

The corpus tools write this format; `training` reads it.
"""
