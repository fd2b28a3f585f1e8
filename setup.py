"""Builds the C core (csrc/) into roimc._core with cffi in API mode."""
from setuptools import setup

setup(cffi_modules=["roimc/_build_core.py:ffibuilder"])
