"""`ElectraConfig`: every model and objective hyperparameter, in one place."""

import dataclasses
import json

# What each does: electra_tf/pretraining/objectives/ and docs/objectives.md.
OBJECTIVES = ("electra", "mlm", "electra_15", "replace_mlm", "all_tokens_mlm", "teams", "mc_bert")
# How the generator's embeddings relate to the discriminator's (the main model's).
EMBEDDING_SHARING = ("tied", "untied", "gdes")
SAMPLERS = ("gumbel", "inverse_cdf")

# Paper values (Clark et al. 2020, Table 6 and configure_pretraining.py).
# "tiny" exists for tests: small enough to train a step in milliseconds.
_SIZES = {
    "tiny": dict(
        embedding_size=32, hidden_size=64, num_layers=2, num_heads=2,
        intermediate_size=128, generator_hidden_size=0.5, mask_prob=0.15,
        max_seq_length=32, max_position_embeddings=128,
    ),
    "small": dict(
        embedding_size=128, hidden_size=256, num_layers=12, num_heads=4,
        intermediate_size=1024, generator_hidden_size=0.25, mask_prob=0.15,
        max_seq_length=128,
    ),
    "base": dict(
        embedding_size=768, hidden_size=768, num_layers=12, num_heads=12,
        intermediate_size=3072, generator_hidden_size=1 / 3, mask_prob=0.15,
        max_seq_length=512,
    ),
    "large": dict(
        embedding_size=1024, hidden_size=1024, num_layers=24, num_heads=16,
        intermediate_size=4096, generator_hidden_size=0.25, mask_prob=0.25,
        max_seq_length=512,
    ),
}
SIZES = tuple(_SIZES)
TOWERS = ("discriminator", "generator")


@dataclasses.dataclass(frozen=True)
class ElectraConfig:
    """Hyperparameters of both towers and of the pre-training objective.

    The discriminator has `hidden_size`, `num_heads` and `intermediate_size`;
    the generator has those three times `generator_hidden_size` and the
    depth times `generator_layers` (fractions, as the original's
    `generator_hidden_size` and `generator_layers`). Special token ids default to the standard BERT
    uncased `vocab.txt`; `special_token_ids(path)` reads them from any
    vocabulary, and that is what the runners pass in.

    Args:
        vocab_size: rows of the word embedding table (the vocabulary's size).
        embedding_size: width of the shared embeddings, projected to each tower's width.
        hidden_size: the discriminator's hidden width.
        num_layers: the discriminator's Transformer layers.
        num_heads: the discriminator's attention heads.
        intermediate_size: the discriminator's feed-forward width.
        generator_hidden_size: the generator's width as a fraction of the discriminator's.
        generator_layers: the generator's depth as a fraction of the discriminator's (1.0).
        max_position_embeddings: rows of the position table.
        type_vocab_size: rows of the segment table.
        hidden_dropout_prob: dropout on embeddings and hidden states (0.1 in the paper).
        attention_probs_dropout_prob: dropout on attention probabilities (0.1 in the paper).
        initializer_range: standard deviation of the truncated-normal initialiser (BERT's 0.02).
        layer_norm_epsilon: LayerNorm's epsilon (BERT's 1e-12).
        max_seq_length: tokens per example.
        mask_prob: the share of tokens masked and predicted.
        mask_token_prob: of the masked tokens, the share shown as `[MASK]` (the rest keep their token).
        gen_weight: the loss weight of the generator's MLM (1).
        disc_weight: the loss weight of replaced-token detection (50).
        temperature: the generator's sampling temperature (at step 0 when `final_temperature` is set).
        final_temperature: if above 0, the temperature moves linearly from `temperature` at step 0 to
            this at the last step (0: constant).
        disallow_correct: never sample the original token at a masked position (the original's option).
        embedding_sharing: "tied" (one embedding set for both towers, the original's default),
            "untied" (the generator has its own, of its hidden width, as the original's
            `untied_generator_embeddings`) or "gdes" (DeBERTaV3's gradient-disentangled sharing: the
            discriminator reads stop_gradient(generator's) + a residual that starts at zero).
        untied_generator_embeddings: the original's name for `embedding_sharing="untied"`.
        sampler: how replacements are drawn from the generator's softmax: "inverse_cdf" (one
            uniform per position; faster, bench/RESULTS.md) or "gumbel" (Gumbel-max, the
            original's): the same distribution, other draws.
        objective: one of `OBJECTIVES` (see `electra_tf.pretraining.objectives`).
        candidate_size: candidates per position of the selection objectives, the original included;
            0: the objective's default (teams 5, mc_bert 10 with the reject option).
        mws_weight: teams' loss weight of multi-word selection (2, TF Model Garden's `teams.py` default).
        teams_rtd_weight: teams' loss weight of replaced-token detection (5, TF Model Garden's `teams.py`
            default).
        num_task_agnostic_layers: teams: discriminator layers both of its tasks share; the detection
            task has `num_layers` minus these of its own (0: `num_layers - 1`, Model Garden's 11 of 12).
        shared_generator_layers: teams: the share of the generator's layers that are the discriminator's
            bottom layers (0.5, Model Garden's 3 of 6; 0: none).
        seed: seeds masking, sampling, initialisation and data order.
        pad_id: the id of `[PAD]` in the vocabulary.
        unk_id: the id of `[UNK]` in the vocabulary.
        cls_id: the id of `[CLS]` in the vocabulary.
        sep_id: the id of `[SEP]` in the vocabulary.
        mask_id: the id of `[MASK]` in the vocabulary.

    Example:

    >>> config = ElectraConfig.for_size("small")
    >>> config.generator_dims
    (64, 1, 256)
    >>> ElectraConfig.for_size("tiny", vocab_size=1000).max_predictions_per_seq  # int(0.155 * 32)
    4
    >>> ElectraConfig.for_size("small", generator_layers=0.5).tower_layers("generator")
    6
    """

    vocab_size: int = 30522
    embedding_size: int = 128
    hidden_size: int = 256
    num_layers: int = 12
    num_heads: int = 4
    intermediate_size: int = 1024
    generator_hidden_size: float = 0.25
    generator_layers: float = 1.0
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    initializer_range: float = 0.02
    layer_norm_epsilon: float = 1e-12
    max_seq_length: int = 128
    mask_prob: float = 0.15
    # Of the masked positions, this share shows [MASK]; the rest keep the
    # original token (no random-token replacement, unlike BERT's 80/10/10).
    mask_token_prob: float = 0.85
    gen_weight: float = 1.0
    disc_weight: float = 50.0
    temperature: float = 1.0
    sampler: str = "inverse_cdf"
    final_temperature: float = 0.0
    disallow_correct: bool = False
    embedding_sharing: str = "tied"
    untied_generator_embeddings: bool = False
    objective: str = "electra"
    candidate_size: int = 0
    mws_weight: float = 2.0
    teams_rtd_weight: float = 5.0
    num_task_agnostic_layers: int = 0
    shared_generator_layers: float = 0.5
    seed: int = 0
    pad_id: int = 0
    unk_id: int = 100
    cls_id: int = 101
    sep_id: int = 102
    mask_id: int = 103

    def __post_init__(self):
        problems = []
        if self.objective not in OBJECTIVES:
            problems.append(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if self.sampler not in SAMPLERS:
            problems.append(f"sampler must be one of {SAMPLERS}, got {self.sampler!r}")
        if not 0.0 < self.mask_prob < 1.0:
            problems.append(f"mask_prob must be in (0, 1), got {self.mask_prob}")
        if not 0.0 < self.generator_hidden_size <= 1.0:
            problems.append(
                f"generator_hidden_size is a fraction of hidden_size in (0, 1], got {self.generator_hidden_size}")
        if not 0.0 < self.generator_layers <= 1.0 or round(self.num_layers * self.generator_layers) < 1:
            problems.append(f"generator_layers is a fraction of num_layers in (0, 1] giving at least one layer, "
                            f"got {self.generator_layers} of {self.num_layers}")
        if self.embedding_sharing not in EMBEDDING_SHARING:
            problems.append(f"embedding_sharing must be one of {EMBEDDING_SHARING}, got {self.embedding_sharing!r}")
        elif self.untied_generator_embeddings and self.embedding_sharing == "gdes":
            problems.append("untied_generator_embeddings (embedding_sharing=untied) and embedding_sharing=gdes "
                            "exclude each other; choose one")
        if self.hidden_size % self.num_heads:
            problems.append(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")
        if self.max_seq_length > self.max_position_embeddings:
            problems.append(
                f"max_seq_length {self.max_seq_length} exceeds max_position_embeddings "
                f"{self.max_position_embeddings}")
        if self.temperature <= 0:
            problems.append(f"temperature must be positive, got {self.temperature}")
        if self.final_temperature < 0:
            problems.append(f"final_temperature must be positive (or 0: no schedule), got {self.final_temperature}")
        problems += self._selection_problems()
        gen_hidden, gen_heads, _ = self.generator_dims
        if gen_hidden % gen_heads:
            problems.append(f"generator hidden size {gen_hidden} is not divisible by its {gen_heads} heads")
        for name in ("pad_id", "unk_id", "cls_id", "sep_id", "mask_id"):
            if not 0 <= getattr(self, name) < self.vocab_size:
                problems.append(f"{name} {getattr(self, name)} is outside the vocabulary (size {self.vocab_size})")
        if problems:
            raise ValueError("; ".join(problems))

    def _selection_problems(self):
        """What is wrong with the settings of teams and mc_bert (nothing for the other objectives)."""
        problems = []
        if self.candidate_size < 0 or self.candidate_size == 1 or self.candidate_size > self.vocab_size // 2:
            problems.append(f"candidate_size must be 0 (the objective's default) or from 2 to half the vocabulary "
                            f"({self.vocab_size // 2}), got {self.candidate_size}")
        if self.objective == "mc_bert" and self.candidate_size == 2:
            problems.append("mc_bert's candidates are the reject option, the original and at least one other: "
                            "candidate_size must be at least 3")
        if self.objective != "teams":
            return problems
        if not 0 <= self.num_task_agnostic_layers < self.num_layers:
            problems.append(f"num_task_agnostic_layers must be below num_layers ({self.num_layers}), or 0 for "
                            f"num_layers - 1; got {self.num_task_agnostic_layers}")
        if not 0.0 <= self.shared_generator_layers <= 1.0:
            problems.append(f"shared_generator_layers is a fraction of the generator's layers in [0, 1], got "
                            f"{self.shared_generator_layers}")
        elif self.shared_generator_blocks and self.generator_dims != self.discriminator_dims:
            problems.append("teams shares the generator's bottom layers with the discriminator, so the generator "
                            "must be as wide: set generator_hidden_size=1.0 (Model Garden's TEAMS: full width, "
                            "generator_layers=0.5), or shared_generator_layers=0")
        if self.sharing == "gdes":
            problems.append("teams shares the embeddings as they are (tied) or not at all (untied); "
                            "embedding_sharing=gdes is not supported with it")
        if self.disc_weight != ElectraConfig.disc_weight:
            problems.append("teams weighs replaced-token detection with teams_rtd_weight (default 5, Model "
                            "Garden's), not disc_weight: leave disc_weight at its default")
        return problems

    @property
    def task_agnostic_layers(self):
        """teams: the discriminator layers under both its tasks (`num_task_agnostic_layers`; 0: all but one)."""
        return self.num_task_agnostic_layers or self.num_layers - 1

    @property
    def shared_generator_blocks(self):
        """teams: how many of the generator's bottom layers are the discriminator's (rounded down)."""
        return int(self.tower_layers("generator") * self.shared_generator_layers)

    @classmethod
    def for_size(cls, name, **overrides):
        """The paper's configuration for `name` ("small", "base", "large"; "tiny" for tests), with `overrides`."""
        if name not in _SIZES:
            raise ValueError(f"unknown model size {name!r}; choose one of {SIZES}")
        return cls(**{**_SIZES[name], **overrides})

    @property
    def max_predictions_per_seq(self):
        # The original's int((mask_prob + 0.005) * max_seq_length): 19 for small.
        return int((self.mask_prob + 0.005) * self.max_seq_length)

    @property
    def generator_dims(self):
        """(hidden, heads, intermediate) of the generator."""
        fraction = self.generator_hidden_size
        return (
            int(round(self.hidden_size * fraction)),
            max(1, int(round(self.num_heads * fraction))),
            int(round(self.intermediate_size * fraction)),
        )

    @property
    def discriminator_dims(self):
        """(hidden, heads, intermediate) of the discriminator."""
        return (self.hidden_size, self.num_heads, self.intermediate_size)

    def tower_dims(self, tower):
        """(hidden, heads, intermediate) of the "discriminator" or "generator" tower."""
        _check_tower(tower)
        return self.discriminator_dims if tower == "discriminator" else self.generator_dims

    def tower_layers(self, tower):
        """Transformer layers of the "discriminator" or "generator" tower."""
        _check_tower(tower)
        return self.num_layers if tower == "discriminator" else int(round(self.num_layers * self.generator_layers))

    @property
    def sharing(self):
        """The embedding sharing in effect: `embedding_sharing`, or "untied" if `untied_generator_embeddings`."""
        return "untied" if self.untied_generator_embeddings else self.embedding_sharing

    def tower_embedding_size(self, tower):
        """Width of the tower's embedding tables: the generator's own are its hidden size when untied."""
        _check_tower(tower)
        if tower == "generator" and self.sharing == "untied":
            return self.generator_dims[0]
        return self.embedding_size

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown ElectraConfig fields: {', '.join(unknown)}")
        # Configs recorded before `sampler` existed were trained with Gumbel-max.
        return cls(**{"sampler": "gumbel", **values})

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text):
        return cls.from_dict(json.loads(text))



def _check_tower(tower):
    if tower not in TOWERS:
        raise ValueError(f"tower must be one of {TOWERS}, got {tower!r}")


class BuiltFromConfig:
    """`get_config`/`from_config` for Keras layers and models whose only argument is an ElectraConfig."""

    def get_config(self):
        return {**super().get_config(), "config": self.config.to_dict()}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        return cls(ElectraConfig.from_dict(config.pop("config")), **config)


# Help text for the flags generated from these fields (electra_tf.training.run_flags).
FIELD_HELP = {
    "vocab_size": "Vocabulary size; taken from --vocab_file when one is given.",
    "embedding_size": "Width of the shared token/position/segment embeddings.",
    "hidden_size": "Discriminator hidden size.",
    "num_layers": "Discriminator Transformer layers (the generator has --generator_layers of them).",
    "num_heads": "Discriminator attention heads.",
    "intermediate_size": "Discriminator feed-forward size.",
    "generator_hidden_size": "Generator size as a fraction of the discriminator's hidden size, heads and "
                             "feed-forward size (1/4 small and large, 1/3 base).",
    "generator_layers": "Generator depth as a fraction of the discriminator's (the original's generator_layers; "
                        "1.0).",
    "max_position_embeddings": "Rows of the position embedding table.",
    "type_vocab_size": "Number of segment ids.",
    "hidden_dropout_prob": "Dropout on embeddings and hidden states.",
    "attention_probs_dropout_prob": "Dropout on attention probabilities.",
    "initializer_range": "Std of the truncated-normal weight initialiser.",
    "layer_norm_epsilon": "LayerNorm epsilon.",
    "max_seq_length": "Tokens per example; must equal the data's sequence length.",
    "mask_prob": "Share of real tokens masked per example (0.15; 0.25 for large).",
    "mask_token_prob": "Share of masked positions shown as [MASK]; the rest keep their token.",
    "gen_weight": "Weight of the generator's MLM loss.",
    "disc_weight": "Weight of the discriminator's replaced-token-detection loss (mc_bert: of its multi-choice loss, "
                   "its lambda, 50 as in its code).",
    "temperature": "Temperature of the generator's sampling (at step 0 when --final_temperature is set).",
    "final_temperature": "If above 0, the sampling temperature moves linearly from --temperature at step 0 to this "
                         "at --num_train_steps (Fast-ELECTRA's decreasing temperature); 0 keeps it constant.",
    "disallow_correct": "Never sample the original token at a masked position, so every masked token is replaced "
                        "(the original's disallow_correct).",
    "embedding_sharing": "tied: one embedding set for both towers (the original); untied: the generator has its own "
                         "(of its hidden width); gdes: DeBERTaV3's gradient-disentangled sharing, the "
                         "discriminator's embeddings are stop_gradient(generator's) + a residual starting at zero.",
    "untied_generator_embeddings": "The original's name for --embedding_sharing=untied.",
    "sampler": "How replacements are drawn from the generator: inverse_cdf (one random number per masked "
               "position, faster) or gumbel (Gumbel-max, as the original): the same distribution.",
    "objective": "electra: generator + replaced-token detection on every token; electra_15: detection on the "
                 "masked positions only; mlm: a BERT-style masked LM of the discriminator's size; replace_mlm: "
                 "masked LM on generator-filled (not [MASK]) positions; all_tokens_mlm: predict every token's "
                 "identity with a copy mechanism (ELECTRA paper, section 3.5); teams: detection from an intermediate "
                 "layer plus multi-word selection at the masked positions (Shen et al. 2021); mc_bert: a multi-choice "
                 "cloze test with a reject option at every token (Xu et al. 2020).",
    "candidate_size": "teams and mc_bert: candidates per position, the original included (0: the objective's "
                      "default, teams 5, mc_bert 10 with its reject option).",
    "mws_weight": "teams: weight of the multi-word selection loss (Model Garden's 2).",
    "teams_rtd_weight": "teams: weight of its replaced-token detection loss (Model Garden's 5; --disc_weight is "
                        "ELECTRA's and mc_bert's).",
    "num_task_agnostic_layers": "teams: discriminator layers shared by detection and selection; detection has the "
                                "remaining ones of its own (0: all but one, Model Garden's 11 of 12).",
    "shared_generator_layers": "teams: share of the generator's layers that are the discriminator's bottom ones "
                               "(0.5, Model Garden's 3 of 6; 0: none). Needs --generator_hidden_size=1.0.",
    "seed": "Seed of masking, sampling, initialisation and data order.",
}
