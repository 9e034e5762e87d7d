"""T024: selection_hash is deterministic under array ordering; invalid selections are rejected by name."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenantatlas_pipelines.errors import ErrorCode, TenantAtlasError
from tenantatlas_pipelines.policy_types import REGISTRY
from tenantatlas_pipelines.selection import canonical_json, selection_hash

TYPES = sorted(REGISTRY)


@given(st.lists(st.sampled_from(TYPES), min_size=1, max_size=40), st.randoms())
def test_hash_ignores_order_and_duplicates(types: list[str], rnd) -> None:
    shuffled = list(types)
    rnd.shuffle(shuffled)
    doubled = shuffled + types[: len(types) // 2]
    assert selection_hash({"policy_types": types}) == selection_hash({"policy_types": doubled})


@given(st.sets(st.sampled_from(TYPES), min_size=1), st.sets(st.sampled_from(TYPES), min_size=1))
def test_different_sets_give_different_hashes(a: set[str], b: set[str]) -> None:
    assert (selection_hash({"policy_types": list(a)}) == selection_hash({"policy_types": list(b)})) == (
        a == b
    )


def test_canonical_form_is_exact() -> None:
    payload = {"policy_types": ["mobileApp", "deviceConfiguration", "mobileApp"]}
    text = canonical_json(payload)
    assert text == '{"policy_types":["deviceConfiguration","mobileApp"]}'
    assert selection_hash(payload) == hashlib.sha256(text.encode("utf-8")).hexdigest()


@pytest.mark.parametrize(
    ("payload", "code", "named"),
    [
        (
            {"policy_types": ["deviceConfiguration", "nope", "alsoNope"]},
            ErrorCode.UNKNOWN_POLICY_TYPE,
            "alsoNope",
        ),
        ({"policy_types": ["deviceConfiguration"], "colour": "red"}, ErrorCode.INVALID_SELECTION, "colour"),
        ({"policy_types": []}, ErrorCode.INVALID_SELECTION, "non-empty"),
        ({"policy_types": "deviceConfiguration"}, ErrorCode.INVALID_SELECTION, "policy_types"),
        ({"policy_types": [1]}, ErrorCode.INVALID_SELECTION, "strings"),
        (["deviceConfiguration"], ErrorCode.INVALID_SELECTION, "object"),
    ],
)
def test_invalid_selections_are_rejected_before_hashing(payload, code: ErrorCode, named: str) -> None:
    with pytest.raises(TenantAtlasError) as info:
        selection_hash(payload)
    assert info.value.code == code
    assert named in info.value.message
