"""Builds the optional C kernel (kandisc/model/_basis_native.c); everything else is in pyproject.toml.

The kernel has no Python or torch headers and is loaded with ctypes (kandisc/model/native.py).
``optional=True``: without a C compiler the install still succeeds and kandisc uses its eager
torch path.
"""

import hashlib
from pathlib import Path

from setuptools import Extension, setup

SOURCES = [
    "kandisc/model/_basis_native.c",
    "kandisc/model/_basis_native_impl.h",
    "kandisc/model/_layer_native_impl.h",
]
# Compiled into the library so that kandisc/model/native.py can refuse a build from other sources.
DIGEST = hashlib.sha256(b"".join(Path(name).read_bytes() for name in SOURCES)).hexdigest()[:16]

setup(
    ext_modules=[
        Extension(
            "kandisc.model._basis_native",
            sources=SOURCES[:1],
            depends=SOURCES[1:],
            define_macros=[("KANDISC_SOURCE_DIGEST", f'"{DIGEST}"')],
            extra_compile_args=["-O3", "-std=c99", "-pthread"],
            extra_link_args=["-pthread"],
            optional=True,
        )
    ]
)
