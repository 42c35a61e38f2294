"""Dataset sources: CIFAR pickles, image folders, file lists, CSV manifests, the built-in demo set."""
