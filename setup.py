"""Builds the optional C kernel (kandisc/model/_basis_native.c); everything else is in pyproject.toml.

The kernel has no Python or torch headers and is loaded with ctypes (kandisc/model/native.py).
``optional=True``: without a C compiler the install still succeeds and kandisc uses its eager
torch path.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "kandisc.model._basis_native",
            sources=["kandisc/model/_basis_native.c"],
            depends=["kandisc/model/_basis_native_impl.h"],
            extra_compile_args=["-O3", "-std=c99"],
            optional=True,
        )
    ]
)
