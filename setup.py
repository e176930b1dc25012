"""Builds the compiled decoder (dropcopy_client/_cdecode.pyx) with Cython; everything else is in pyproject.toml.

``pip install .``, ``pip install -e .`` and ``python -m build`` all run this with Cython from
``[build-system] requires``. The extension is optional: without a C compiler the install still succeeds and
``dropcopy_client._decode`` falls back to its pure-Python decoder (``IMPLEMENTATION == "python"``);
``tests/unit/test_decode_implementations.py`` fails loudly in that case, so ``make test`` cannot pass on a build
that did not produce it.
"""

from __future__ import annotations

from setuptools import Extension, setup

try:
    from Cython.Build import cythonize
except ImportError:  # only without build isolation and without Cython installed
    import warnings

    warnings.warn(
        "Cython is not installed: dropcopy_client is built without its compiled decoder", stacklevel=1
    )
    ext_modules = []
else:
    ext_modules = cythonize(
        [Extension("dropcopy_client._cdecode", ["dropcopy_client/_cdecode.pyx"])],
        compiler_directives={"language_level": "3"},
    )
    for extension in ext_modules:
        extension.optional = True  # a failed compile is a warning (cythonize drops the constructor's flag)

setup(ext_modules=ext_modules)
