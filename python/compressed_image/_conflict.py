"""Detect the original compressed-image distribution installed over the same package.

This distribution is ``compressed-image-rs``; the original C++/pybind11 library is the
distribution ``compressed-image`` (1.0.1 on PyPI). Both install the import package
``compressed_image``, so pip, which does not check for files owned by another
distribution, lets the one installed second overwrite the first's ``__init__.py`` and
``py.typed``; uninstalling either then deletes files the other needs. Rather than run on
such a mixture, importing raises ImportError naming both distributions and the fix, in
either installation order:

* original installed second: its ``__init__.py`` imports its extension from
  ``compressed_image.lib64`` (``compressed_image.lib`` off Linux). This distribution
  ships those two subpackages with an ``__init__.py`` that the original's wheel does not
  contain (pip leaves it in place), so that import runs :func:`raise_conflict`.
* this distribution installed second: its ``__init__.py`` calls
  :func:`check_no_original_distribution` before loading the extension.
"""

from importlib import metadata

OURS = "compressed-image-rs"
ORIGINAL = "compressed-image"


def _installed_version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def conflict_message():
    """The explanation and fix for both distributions sharing ``compressed_image/``."""
    ours = _installed_version(OURS) or "?"
    original = _installed_version(ORIGINAL) or "?"
    return (
        f"the distributions {OURS} ({ours}) and {ORIGINAL} ({original}, the original C++ "
        "build) are both installed in this environment; both provide the package "
        "'compressed_image', so the one installed second has overwritten files of the "
        "other. Fix: pip uninstall -y "
        f"{ORIGINAL} {OURS}, then pip install only the one you want (use separate "
        "virtual environments to compare them)."
    )


def raise_conflict():
    """Raise ImportError with :func:`conflict_message`."""
    raise ImportError(conflict_message(), name="compressed_image")


def check_no_original_distribution():
    """Raise ImportError if the original distribution is installed too."""
    if _installed_version(ORIGINAL) is not None:
        raise_conflict()
