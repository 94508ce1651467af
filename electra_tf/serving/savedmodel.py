"""The exported SavedModels: the kept model with its tokenizer in the graph, and the generator.

`export_pretrainer` writes the model pre-training was for (the pretrainer's
`kept_model()`, with GDES's residual folded into its embeddings):

- `<root>/discriminator` for the objectives with one (electra, electra_15,
  all_tokens_mlm), with two signatures: `serving_default` (int32 input_ids,
  input_mask, segment_ids -> sequence_output, pooled_output,
  rtd_probabilities) and `serve_text` (raw strings -> tokens,
  rtd_probabilities, pooled_output, tokenized in the graph with tf-text);
- `<root>/encoder` for the masked-LM objectives (mlm, replace_mlm): the
  main masked LM's encoder, and for teams and mc_bert the discriminator's
  encoder (their heads are pre-training only), with the same signatures
  less rtd_probabilities;

plus `vocab.txt`, `electra_config.json` and a model card, `README.md`
(serving/model_card.py), beside it. It loads with
`tf.saved_model.load` (after `import tensorflow_text`) in a process that
does not import electra_tf.
"""

import os
import shutil

import tensorflow as tf
import tensorflow_text as tf_text

from electra_tf.modeling.models import ElectraDiscriminator, standalone
from electra_tf.serving import model_card
from electra_tf.text.tokenization import bert_preprocess, fast_bert_tokenizer
from electra_tf.text.vocab import load_vocab
from electra_tf.utils.atomic import atomic_directory


def _ids_spec():
    return tf.TensorSpec([None, None], tf.int32)


class DiscriminatorServing(tf.Module):
    """The discriminator with its tokenizer, as a tf.Module to save."""

    def __init__(self, discriminator, vocab_tokens, config, lowercase):
        super().__init__(name="electra_discriminator")
        self.discriminator = discriminator
        self._init_text(vocab_tokens, config, lowercase)

    def _init_text(self, vocab_tokens, config, lowercase):
        self.max_seq_length = config.max_seq_length
        self.cls_id, self.sep_id = config.cls_id, config.sep_id
        self.lowercase = lowercase
        self.vocab = tf.constant(vocab_tokens)
        self.tokenizer = fast_bert_tokenizer(vocab_tokens)

    def _encode(self, input_ids, input_mask, segment_ids):
        out = self.discriminator(
            {"input_ids": input_ids, "input_mask": input_mask, "segment_ids": segment_ids}, training=False)
        sequence = tf.cast(out["sequence_output"], tf.float32)
        probabilities = tf.sigmoid(out["logits"]) * tf.cast(input_mask, tf.float32)
        return {"sequence_output": sequence, "pooled_output": sequence[:, 0], "rtd_probabilities": probabilities}

    @tf.function(input_signature=[_ids_spec(), _ids_spec(), _ids_spec()])
    def serve(self, input_ids, input_mask, segment_ids):
        return self._encode(input_ids, input_mask, segment_ids)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def serve_text(self, text):
        pieces = self.tokenizer.tokenize(bert_preprocess(text, self.lowercase))
        pieces = pieces[:, : self.max_seq_length - 2]
        rows = pieces.nrows()
        cls = tf.fill([rows, 1], self.cls_id)
        sep = tf.fill([rows, 1], self.sep_id)
        ids = tf.concat([cls, pieces, sep], axis=1)
        input_ids, input_mask = tf_text.pad_model_inputs(ids, self.max_seq_length)
        outputs = self._encode(input_ids, input_mask, tf.zeros_like(input_ids))
        outputs.pop("sequence_output")
        return {"tokens": tf.where(input_mask > 0, tf.gather(self.vocab, input_ids), ""), **outputs}


class EncoderServing(DiscriminatorServing):
    """The encoder of a discriminator-sized masked LM (the mlm and replace_mlm objectives) with its tokenizer."""

    def __init__(self, mlm, vocab_tokens, config, lowercase):
        tf.Module.__init__(self, name="electra_encoder")
        self.mlm = mlm
        self._init_text(vocab_tokens, config, lowercase)

    def _encode(self, input_ids, input_mask, segment_ids):
        sequence = tf.cast(self.mlm.encoder(input_ids, segment_ids, input_mask, training=False), tf.float32)
        return {"sequence_output": sequence, "pooled_output": sequence[:, 0]}


class GeneratorServing(tf.Module):
    def __init__(self, generator):
        super().__init__(name="electra_generator")
        self.generator = generator

    @tf.function(input_signature=[_ids_spec(), _ids_spec(), _ids_spec(), _ids_spec()])
    def serve(self, input_ids, input_mask, segment_ids, masked_lm_positions):
        logits = self.generator({"input_ids": input_ids, "input_mask": input_mask, "segment_ids": segment_ids,
                                 "masked_lm_positions": masked_lm_positions}, training=False)
        return {"logits": logits}


def _save_atomically(module, signatures, export_dir, vocab_file, config_json, card):
    """Writes into a temporary sibling, then swaps it in: never a half-written export."""
    with atomic_directory(export_dir, replace=True) as staging:
        tf.saved_model.save(module, staging, signatures=signatures)
        shutil.copyfile(vocab_file, os.path.join(staging, "vocab.txt"))
        with open(os.path.join(staging, "electra_config.json"), "w", encoding="utf-8") as f:
            f.write(config_json)
        model_card.write_card(staging, card)


def export_pretrainer(pretrainer, vocab_file, export_root, lowercase=True, export_generator=False, record=None,
                      model_dir="<model_dir>"):
    """Writes `export_root/discriminator` or `export_root/encoder` (and `export_root/generator`); returns its path.

    Each directory gets a model card (`README.md`) stating `record`, the
    run's `training_record.json` (run_state.load_training_record), and how to
    load the model.
    """
    config = pretrainer.config
    record = record or {}
    kept = pretrainer.kept_model()
    if isinstance(kept, ElectraDiscriminator) and pretrainer.objective.export_name() == "discriminator":
        module, path = DiscriminatorServing(kept, load_vocab(vocab_file), config, lowercase), "discriminator"
    else:
        module, path = EncoderServing(kept, load_vocab(vocab_file), config, lowercase), "encoder"
    card = model_card.pretrained_card(config, lowercase, path, record, model_dir=model_dir)
    path = os.path.join(export_root, path)
    _save_atomically(module, {"serving_default": module.serve, "serve_text": module.serve_text},
                     path, vocab_file, config.to_json(), card)
    if export_generator:
        generator = GeneratorServing(standalone(pretrainer.generator))
        card = model_card.pretrained_card(config, lowercase, "generator", record, model_dir=model_dir)
        _save_atomically(generator, {"serving_default": generator.serve},
                         os.path.join(export_root, "generator"), vocab_file, config.to_json(), card)
    return path
