"""Adapters between gi_lib and federated learning frameworks.

Each adapter is an optional extra: importing this package needs nothing
beyond gi_lib's own requirements; a framework is imported when used.
"""
