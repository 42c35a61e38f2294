"""PyInstaller runtime hook: load the CUDA stand-in libraries before torchvision is imported.

The registry's torchvision wheel (built against CUDA torch) lists libc10_cuda.so, libtorch_cuda.so
and libcudart.so.13 as NEEDED. The CPU bundle ships tiny stand-ins (see make_cuda_stubs.sh); loading
them globally first makes the dynamic loader match them by soname when torchvision/_C.so loads,
whatever LD_LIBRARY_PATH the user has. Missing stand-ins are skipped: torchvision then fails loudly.
"""

import ctypes
import os
import sys

_base = getattr(sys, "_MEIPASS", os.path.dirname(sys.executable))
for _name in ("libcudart.so.13", "libc10_cuda.so", "libtorch_cuda.so"):
    _path = os.path.join(_base, _name)
    if os.path.exists(_path):
        ctypes.CDLL(_path, mode=ctypes.RTLD_GLOBAL)
