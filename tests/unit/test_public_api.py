"""The flat public API: one sorted __all__ that names exactly the public objects of the package root."""

from __future__ import annotations

import dropcopy_client


def test_all_is_sorted_and_unique() -> None:
    assert list(dropcopy_client.__all__) == sorted(set(dropcopy_client.__all__))


def test_all_matches_the_public_names() -> None:
    public = {
        name
        for name, value in vars(dropcopy_client).items()
        if not name.startswith("_")
        and not getattr(value, "__name__", "").startswith("dropcopy_client.")
        and name not in {"annotations"}
    }
    assert public == set(dropcopy_client.__all__)


def test_every_exported_name_resolves() -> None:
    for name in dropcopy_client.__all__:
        assert getattr(dropcopy_client, name) is not None
