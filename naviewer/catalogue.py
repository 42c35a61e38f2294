"""The torch-free catalogue: the SSL methods (names, labels, default learning rates) and their
augmentation recipes as the papers publish them. The method classes, the CLI's parsers and the
Train dialog all read it, so a method or a default lives in one place (a test checks the classes).

Each method trains by default with its own paper's CIFAR recipe; MoCo v2's ``aug+`` (crop scale
0.2-1, Gaussian blur p 0.5), which the attack papers' toolbox uses for every method, is a named
alternative. Every run records the recipe it used (``TrainConfig.augment_recipe``); fields of
``TrainConfig.augment`` override single settings on top of it.

Sources: SimCLR (Chen et al. 2020, appendix B.9: CIFAR-10 crops at 0.08-1, colour jitter strength
0.5, no blur); MoCo v2 (Chen et al. 2020, "aug+"); BYOL (Grill et al. 2020, table 6: blur 1.0 / 0.1
and solarisation 0 / 0.2 on the two views; naviewer draws both views from one distribution, so blur
p is their mean and solarisation is left out); SimSiam (Chen & He 2021, CIFAR: MoCo v2's
augmentation without blur).
"""

from __future__ import annotations

from typing import Any, Mapping

#: method -> (label a person reads, base learning rate at batch 256, weight decay): each class's defaults
METHODS: dict[str, tuple[str, float, float]] = {
    "simclr": ("SimCLR", 0.5, 1e-4),
    "mocov2": ("MoCo v2", 0.06, 1e-4),
    "byol": ("BYOL", 0.05, 1e-4),
    "simsiam": ("SimSiam", 0.1, 1e-4),
}
METHOD_NAMES = tuple(METHODS)
#: the largest base learning rate and weight decay a run accepts, on every path (the CLI's options and
#: TrainConfig): lr 1e300 overflowed inside torch's optimiser; LARS-style rates (~5) stay far below
LR_MAX, WEIGHT_DECAY_MAX = 1000.0, 10.0
#: more epochs than any recipe trains (the papers' longest is 1,000): a larger count is a typo, not a plan
EPOCHS_MAX = 100_000


def method_label(name: str) -> str:
    return METHODS[name][0] if name in METHODS else str(name)


def default_lr(name: str) -> float:
    return METHODS[name][1]


#: recipe -> (AugmentSettings fields, one line for --help and the Train dialog)
RECIPES: dict[str, tuple[dict[str, Any], str]] = {
    "aug+": ({"scale": (0.2, 1.0), "jitter": (0.4, 0.4, 0.4, 0.1), "jitter_p": 0.8, "grayscale_p": 0.2,
              "blur_p": 0.5, "hflip_p": 0.5},
             "MoCo v2 aug+: crops 0.2-1, jitter 0.4/0.4/0.4/0.1 p 0.8, grey 0.2, blur p 0.5 (the attack toolbox's)"),
    "simclr-cifar": ({"scale": (0.08, 1.0), "jitter": (0.4, 0.4, 0.4, 0.1), "jitter_p": 0.8, "grayscale_p": 0.2,
                      "blur_p": 0.0, "hflip_p": 0.5},
                     "SimCLR's CIFAR recipe: crops 0.08-1, jitter strength 0.5 p 0.8, grey 0.2, no blur"),
    "byol": ({"scale": (0.08, 1.0), "jitter": (0.4, 0.4, 0.2, 0.1), "jitter_p": 0.8, "grayscale_p": 0.2,
              "blur_p": 0.55, "hflip_p": 0.5},
             "BYOL: crops 0.08-1, jitter 0.4/0.4/0.2/0.1 p 0.8, grey 0.2, blur p 0.55 (mean of 1.0/0.1), no solarise"),
    "simsiam-cifar": ({"scale": (0.2, 1.0), "jitter": (0.4, 0.4, 0.4, 0.1), "jitter_p": 0.8, "grayscale_p": 0.2,
                       "blur_p": 0.0, "hflip_p": 0.5},
                      "SimSiam's CIFAR recipe: MoCo v2 aug+ without blur"),
}

#: each method's paper recipe (its default)
METHOD_RECIPES = {"simclr": "simclr-cifar", "mocov2": "aug+", "byol": "byol", "simsiam": "simsiam-cifar"}
#: what every run used before recipes were recorded (a checkpoint without the field trained with it)
LEGACY_RECIPE = "aug+"


def default_recipe(method: str) -> str:
    return METHOD_RECIPES.get(str(method), LEGACY_RECIPE)


def check_recipe(name: str) -> str:
    from naviewer.errors import NaviewerError

    if name not in RECIPES:
        raise NaviewerError(f"unknown augmentation recipe {name!r}; choose from {', '.join(RECIPES)}")
    return name


def augment_values(recipe: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """AugmentSettings fields of ``recipe`` with ``overrides`` on top."""
    values = dict(RECIPES[check_recipe(recipe)][0])
    values.update(dict(overrides or {}))
    return values


def recipes_help() -> str:
    """For --help: every recipe, its line, and which method takes it by default."""
    owners = {recipe: [m for m, r in METHOD_RECIPES.items() if r == recipe] for recipe in RECIPES}
    return "; ".join(f"{name} ({line}{'; default of ' + ', '.join(owners[name]) if owners[name] else ''})"
                     for name, (_, line) in RECIPES.items())


#: DIFT's kNN preset measured on 2 CPU cores (docs/performance.md, "Detection"): DiftConfig.fast() and
#: naviewer bench detect both read it, so the benchmark measures what the demo and the docs use
DIFT_FAST = {"hnsw_m": 8, "hnsw_ef_construction": 64, "hnsw_ef": 64, "knn_dims": 64, "knn_rerank": 10}


#: the registered post-hoc detectors (naviewer.defense.detectors, which imports torch) and their one-line
#: summaries, here for the torch-free CLI help and the GUI; the detector classes read their summary from it
#: and a test keeps the names the same
DETECTOR_SUMMARIES = {
    "crop_density": "crop-aware: how densely an image's best crop sits among other images' crops (composites)",
    "dao": "density ratio to the neighbours weighted by their local dimension (Huang et al., ICLR 2025)",
    "dbscan": "B1: every sample DBSCAN puts in a cluster",
    "dift": "DIFT: dense candidates far from the anchors (MinDist, GMM), then label spreading",
    "kdist": "distance to the k-th neighbour; dense (small) by default",
    "lid": "local intrinsic dimension (MLE); its sign flips with the setting, see both tails",
    "optics": "B1: every sample OPTICS puts in a cluster",
    "patchsearch": "PatchSearch: image windows that, pasted elsewhere, pull images into the sample's cluster (patches)",
    "slof": "k-distance over the neighbours' (simplified LOF)",
}
DETECTOR_NAMES = tuple(DETECTOR_SUMMARIES)
#: what the detection matrix can do after removing DIFT's flags (naviewer.workflows.matrix, run_cell)
MATRIX_RESTARTS = ("retrain", "continue", "oracle")

#: what a drop means, said wherever one is shown: the red "contaminated" frame on two clean anchors while two poisoned
#: ones stayed (an encoder that had not learned the patch: its poisons were sparse, not dense) read as a finding
SCREEN_DROP_WORDS = ("they sit in the densest pile, where poisons crowd once the encoder has learned them; the screen "
                     "does not clear the anchors it keeps")
