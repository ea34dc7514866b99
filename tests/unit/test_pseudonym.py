"""Keyed pseudonyms are stable, key-dependent, short and never reveal the number."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.common.pseudonym import Pseudonymizer, opaque_id
from services.common.settings import Secret

KEY_A = Secret(b"a" * 32)
KEY_B = Secret(b"b" * 32)


def test_stable_for_the_same_key() -> None:
    assert Pseudonymizer(KEY_A)("+8613800138000") == Pseudonymizer(KEY_A)("+8613800138000")


def test_depends_on_the_key() -> None:
    assert Pseudonymizer(KEY_A)("+8613800138000") != Pseudonymizer(KEY_B)("+8613800138000")


def test_shape_is_redis_key_friendly() -> None:
    pseudonym = Pseudonymizer(KEY_A)("+8613800138000")
    assert len(pseudonym) == 26
    assert pseudonym.isalnum()
    assert pseudonym == pseudonym.lower()
    assert "13800138000" not in pseudonym


def test_kafka_key_is_the_pseudonym_bytes() -> None:
    pseudonymize = Pseudonymizer(KEY_A)
    assert pseudonymize.kafka_key("+12025550123") == pseudonymize("+12025550123").encode()


def test_rejects_weak_key_and_empty_number() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        Pseudonymizer(Secret(b"short"))
    with pytest.raises(ValueError, match="empty"):
        Pseudonymizer(KEY_A)("")


def test_repr_hides_key() -> None:
    assert "a" * 32 not in repr(Pseudonymizer(KEY_A))


@given(st.lists(st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True), min_size=2, max_size=50, unique=True))
def test_distinct_numbers_get_distinct_pseudonyms(numbers: list[str]) -> None:
    pseudonymize = Pseudonymizer(KEY_A)
    assert len({pseudonymize(n) for n in numbers}) == len(numbers)


def test_opaque_id_is_short_and_stable() -> None:
    assert opaque_id("abc@10.0.0.1") == opaque_id("abc@10.0.0.1")
    assert len(opaque_id("x" * 500)) == 24
    assert "10.0.0.1" not in opaque_id("abc@10.0.0.1")
