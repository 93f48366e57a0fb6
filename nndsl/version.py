"""The package version: a leaf module every part of nndsl (and the build) reads it from."""

__version__ = "0.1.0"
