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
    settings_fields,
)
from naviewer.attacks.corruptencoder import CorruptEncoderAttack, CorruptEncoderSettings
from naviewer.attacks.ctrl import CTRLAttack, CTRLSettings
from naviewer.attacks.noisy_alignment import NASettings, NoisyAlignmentAttack
from naviewer.attacks.patch import PatchAttack, PatchSettings

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
