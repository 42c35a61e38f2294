"""naviewer.attacks: craft data-poisoning backdoors for contrastive learning and analyse their geometry.

``make_attack(name, **settings)`` gives one of ``na`` (Noisy Alignment), ``patch`` (SSL-Backdoor),
``ctrl`` (CTRL) and ``corruptencoder``; ``attack.craft(clean, rng, ctx)`` returns a
:class:`CraftResult` (poisoned dataset + JSON-able ground truth). ``layout`` holds the one crop
sampler and the crop-event probabilities; ``triggers`` the trigger patterns; ``export`` writes a
crafted set to disk. Only numpy (and Pillow for resizing/IO) is needed here.
"""

from naviewer.attacks.base import (
    ATTACKS,
    Attack,
    CraftedDataset,
    CraftResult,
    make_attack,
    poison_mask,
    register_attack,
    settings_fields,
)

# The registry (base.ATTACKS, which make_attack and settings_fields read) is filled here: importing
# each attack module runs its @register_attack. Every import of naviewer.attacks.<anything> runs this
# file first, so base.make_attack finds all four without importing this package itself. A new attack
# module is imported here and listed in _REGISTERED.
from naviewer.attacks.corruptencoder import CorruptEncoderAttack, CorruptEncoderSettings
from naviewer.attacks.ctrl import CTRLAttack, CTRLSettings
from naviewer.attacks.noisy_alignment import NASettings, NoisyAlignmentAttack
from naviewer.attacks.patch import PatchAttack, PatchSettings

_REGISTERED = (CorruptEncoderAttack, CTRLAttack, NoisyAlignmentAttack, PatchAttack)
for _attack in _REGISTERED:
    register_attack(_attack)  # already done by the decorator; stated here so the package owns the list
del _attack

__all__ = [
    "ATTACKS",
    "Attack",
    "CTRLAttack",
    "CTRLSettings",
    "CorruptEncoderAttack",
    "CorruptEncoderSettings",
    "CraftResult",
    "CraftedDataset",
    "NASettings",
    "NoisyAlignmentAttack",
    "PatchAttack",
    "PatchSettings",
    "make_attack",
    "poison_mask",
    "settings_fields",
]
