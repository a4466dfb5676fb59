"""gi_lib: a small library for replicating gradient inversion attacks and defenses.

Images live in [0, 1] everywhere in the library; models normalise internally.
"""

__version__ = "0.1.0"
