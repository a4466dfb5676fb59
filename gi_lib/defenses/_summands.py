"""What the additively homomorphic backends check before adding two ciphertexts.

A ciphertext of the LWE, Paillier and CKKS backends (:mod:`gi_lib.defenses._lwe`,
:mod:`gi_lib.defenses._paillier`, :mod:`gi_lib.defenses._ckks`) holds a flat
vector of ``size`` values and says how many fresh encryptions were added into
it (``count``, public). Each scheme's parameters are checked for a largest
number of summands; past it a sum may no longer decrypt correctly. The
integer parameters (summands, key and value bits, dimensions) are checked
alike (:func:`check_integer`).
"""

from __future__ import annotations

from typing import Protocol


class Summable(Protocol):
    """A ciphertext of a flat vector that counts its summands."""

    size: int
    count: int


def check_integer(
    scheme: str, name: str, value: float, minimum: int = 1, hint: str = ""
) -> None:
    """A ValueError (``"<scheme>: <name> must be ..."``, then ``hint``)
    unless ``value`` is an integer of at least ``minimum``."""
    if int(value) != value or value < minimum:
        least = (
            "a positive integer"
            if minimum == 1
            else f"an integer of at least {minimum}"
        )
        raise ValueError(f"{scheme}: {name} must be {least}{hint}, got {value}.")


def check_sizes(a: Summable, b: Summable, *, parts: tuple[int, int]) -> None:
    """A ValueError unless ``a`` and ``b`` hold as many values in as many
    parts (``parts``: each one's number of slots, chunks or blocks)."""
    if a.size != b.size or parts[0] != parts[1]:
        raise ValueError(f"cannot add ciphertexts of {a.size} and {b.size} values.")


def summed_count(a: Summable, b: Summable, max_summands: int | None, why: str) -> int:
    """The number of encryptions the sum of ``a`` and ``b`` holds; a
    ValueError past ``max_summands`` (``None``: no limit), whose message
    ends with ``why`` (the limit and what it protects)."""
    count = a.count + b.count
    if max_summands is not None and count > max_summands:
        raise ValueError(
            f"adding these ciphertexts gives a sum of {count} encryptions{why}"
        )
    return count
