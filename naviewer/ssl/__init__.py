"""Self-supervised training: backbones, methods, batched augmentation, trainer, embeddings.

    from naviewer.ssl import build_method, METHODS, BackboneConfig, Trainer, TrainConfig
    method = build_method("simclr", backbone=BackboneConfig(arch="resnet18", cifar_stem=True))
    Trainer(method, store, TrainConfig(epochs=200), run_dir).fit(ctx)
"""

from naviewer.ssl.augment import AugmentParams, AugmentSettings, BatchAugment, EvalTransform
from naviewer.ssl.backbones import ARCHS, BackboneConfig, build_backbone
from naviewer.ssl.checkpoints import LoadedEncoder, load_encoder, load_training_checkpoint
from naviewer.ssl.device import resolve_device
from naviewer.ssl.embed import extract_embeddings
from naviewer.ssl.methods import METHODS, SSLMethod, build_method, method_class
from naviewer.ssl.trainer import LRSchedule, TrainConfig, Trainer, TrainHook, build_trainer, seed_everything

__all__ = [
    "ARCHS", "AugmentParams", "AugmentSettings", "BackboneConfig", "BatchAugment", "EvalTransform", "LRSchedule",
    "LoadedEncoder", "METHODS", "SSLMethod", "TrainConfig", "TrainHook", "Trainer", "build_backbone", "build_method",
    "build_trainer", "extract_embeddings", "load_encoder", "load_training_checkpoint", "method_class",
    "resolve_device", "seed_everything",
]
