"""Icons, Qt themes, the desktop entry and AppStream metadata, shipped as ``naviewer.resources``.

This folder sits at the top of the repository and is mapped onto the package name
``naviewer.resources`` in ``pyproject.toml``, so ``importlib.resources.files("naviewer.resources")``
finds the files in installed and editable installs alike. It holds data only: no code, no Qt.
"""
