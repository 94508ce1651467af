"""Pre-training objectives, one module each, behind one interface (`base.Objective`).

| name | models | what the kept model learns |
|---|---|---|
| `electra` | generator + discriminator | replaced or original, every real token |
| `electra_15` | generator + discriminator | replaced or original, the masked positions only |
| `mlm` | one masked LM | the original token at the masked positions ([MASK] or kept) |
| `replace_mlm` | generator + masked LM | the original token at the masked positions, filled by the generator |
| `all_tokens_mlm` | generator + encoder with copy and vocabulary heads | every token's identity, copying or not |
| `teams` | generator + discriminator sharing layers | replaced or not, and the original among candidates |
| `mc_bert` | meta controller + main model | at every token, the original among candidates, or "unchanged" |

A new objective subclasses `Objective` (or `GeneratorObjective` to reuse the
generator and its sampling), is added to `OBJECTIVES` here and its name to
`modeling.config.OBJECTIVES`, and names its metrics `<group>_<what>`.
"""

from electra_tf.pretraining.objectives.all_tokens_mlm import AllTokensMlm
from electra_tf.pretraining.objectives.base import GeneratorObjective, Objective
from electra_tf.pretraining.objectives.electra import Electra, Electra15
from electra_tf.pretraining.objectives.mc_bert import McBert
from electra_tf.pretraining.objectives.mlm import Mlm
from electra_tf.pretraining.objectives.replace_mlm import ReplaceMlm
from electra_tf.pretraining.objectives.teams import Teams

OBJECTIVES = {cls.name: cls for cls in (Electra, Mlm, Electra15, ReplaceMlm, AllTokensMlm, Teams, McBert)}

__all__ = ["OBJECTIVES", "Objective", "GeneratorObjective", "create"]


def create(config, num_train_steps=None, rematerialize=False):
    """The objective `config.objective` names.

    Example:

    >>> type(create(ElectraConfig.for_size("tiny", objective="replace_mlm"))).__name__
    'ReplaceMlm'
    """
    return OBJECTIVES[config.objective](config, num_train_steps, rematerialize)
