"""The original fine-tuning optimizer: `ElectraAdamW` with layer-wise learning rates.

google-research/electra `model/optimization.py` (`_get_layer_lrs`) gives a
variable at depth d the learning rate times decay ** (num_layers + 2 - d):
depth 0 for the embeddings and their projection, i + 1 for Transformer
layer i, num_layers + 2 for the task head (every layer of it: the inner
dense layer of the transformers-shaped classification head and of the
original's QA head learn at the head's rate too). Depth num_layers + 1 is
unused, so the top layer gets decay ** 2 rather than decay: it belonged to
a pooler that was removed (google-research/electra#51, where the author
calls it a small mistake). The default keeps the original's mapping, as
its published results were obtained with it.
"""

from electra_tf.training.optimization import ElectraAdamW, WarmupPolynomialDecay


def layer_depths(classifier):
    """{variable path: depth} for every trainable variable of an `ElectraClassifier`.

    Raises a ValueError for a variable that belongs to none of the groups
    (as the original does), so a new layer cannot silently train at the
    wrong rate.
    """
    encoder = classifier.encoder
    num_layers = len(encoder.blocks)
    groups = [(encoder.embeddings, 0)]
    if encoder.projection is not None:
        groups.append((encoder.projection, 0))
    groups += [(block, i + 1) for i, block in enumerate(encoder.blocks)]
    groups.append((classifier.head, num_layers + 2))
    depths = {}
    for layer, depth in groups:
        for variable in layer.trainable_weights:
            depths.setdefault(variable.path, depth)
    unknown = [v.path for v in classifier.trainable_weights if v.path not in depths]
    if unknown:
        raise ValueError(f"no layer-wise learning rate for {', '.join(unknown)}")
    return depths


def layerwise_lr_multipliers(classifier, decay):
    """{variable path: decay ** (num_layers + 2 - depth)}; empty (all 1) when decay <= 0.

    Example:

    >>> classifier = ElectraClassifier(ElectraConfig.for_size("tiny"), num_classes=2)
    >>> multipliers = layerwise_lr_multipliers(classifier, 0.8)
    >>> sorted(set(round(m, 4) for m in multipliers.values()))  # 2 layers: embeddings, layer_0, layer_1, head
    [0.4096, 0.512, 0.64, 1.0]
    """
    if decay <= 0:
        return {}
    num_layers = len(classifier.encoder.blocks)
    return {path: float(decay ** (num_layers + 2 - depth)) for path, depth in layer_depths(classifier).items()}


def create_finetuning_optimizer(classifier, num_train_steps, learning_rate=1e-4, layerwise_lr_decay=0.8,
                                warmup_proportion=0.1, weight_decay_rate=0.01, clip_norm=1.0, epsilon=1e-6):
    """The original recipe for `classifier`, over `num_train_steps` updates.

    AdamW without bias correction (beta 0.9/0.999), weight decay off for
    LayerNorm parameters and biases, global-norm clipping, a learning rate
    that warms up over `warmup_proportion` of the steps (multiplying the
    linear decay to 0, so it peaks at 0.9 x the rate), and layer-wise decay.

    Args:
        classifier: the `ElectraClassifier` to train (its variables get the layer-wise multipliers).
        num_train_steps: the number of updates; warmup and decay are fractions of it.
        learning_rate: the peak learning rate before warmup's factor (the original's 1e-4 default).
        layerwise_lr_decay: multiplier per layer below the head (0 or less turns it off).
        warmup_proportion: the share of the steps spent warming up.
        weight_decay_rate: decoupled weight decay, not applied to LayerNorm parameters or biases.
        clip_norm: global gradient-norm clipping (0 or None turns it off).
        epsilon: Adam's epsilon.

    Example:

    >>> classifier = ElectraClassifier(ElectraConfig.for_size("tiny"), num_classes=2)
    >>> optimizer = create_finetuning_optimizer(classifier, num_train_steps=1000)
    >>> classifier.compile(optimizer=optimizer)
    >>> float(optimizer.learning_rate)  # step 0 of the warmup
    0.0
    """
    schedule = WarmupPolynomialDecay(learning_rate, num_train_steps, num_train_steps * warmup_proportion, 1.0)
    return ElectraAdamW(schedule, weight_decay=weight_decay_rate, epsilon=epsilon, bias_correction=False,
                        global_clipnorm=clip_norm or None,
                        learning_rate_multipliers=layerwise_lr_multipliers(classifier, layerwise_lr_decay))
