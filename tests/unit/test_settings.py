"""Settings load from FRAUDMESH_* variables and fail fast, listing every problem."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from services.common.settings import CommonSettings, LogFormat, Secret, SettingsError, load
from services.reputation.settings import ReputationSettings

KEY = "ab" * 32


def test_defaults_and_required_key() -> None:
    settings = load(CommonSettings, {"FRAUDMESH_PSEUDONYM_KEY": KEY})
    assert settings.kafka_bootstrap == "127.0.0.1:19092"
    assert settings.pseudonym_key.reveal() == bytes.fromhex(KEY)
    assert settings.log_format is LogFormat.JSON


def test_types_are_converted() -> None:
    settings = load(
        CommonSettings,
        {
            "FRAUDMESH_PSEUDONYM_KEY": KEY,
            "FRAUDMESH_REDIS_POOL_SIZE": "7",
            "FRAUDMESH_REDIS_TIMEOUT_S": "0.2",
            "FRAUDMESH_LOG_FORMAT": "text",
            "FRAUDMESH_TENANT_REGIONS": "op-cn=cn, op-us=US",
        },
    )
    assert settings.redis_pool_size == 7
    assert settings.redis_timeout_s == pytest.approx(0.2)
    assert settings.log_format is LogFormat.TEXT
    assert settings.region_for("op-cn") == "CN"
    assert settings.region_for("op-us") == "US"
    assert settings.region_for("someone-else") == "CN"


def test_every_problem_is_listed_at_once() -> None:
    with pytest.raises(SettingsError) as info:
        load(
            CommonSettings,
            {"FRAUDMESH_REDIS_POOL_SIZE": "many", "FRAUDMESH_LOG_FORMAT": "xml"},
        )
    text = str(info.value)
    assert "FRAUDMESH_PSEUDONYM_KEY: required but not set" in text
    assert "FRAUDMESH_REDIS_POOL_SIZE='many'" in text
    assert "FRAUDMESH_LOG_FORMAT='xml': expected one of: json, text" in text
    assert len(info.value.problems) == 3


def test_semantic_validation_fails_fast() -> None:
    with pytest.raises(SettingsError, match="at least 32 bytes"):
        load(CommonSettings, {"FRAUDMESH_PSEUDONYM_KEY": "short"})
    with pytest.raises(SettingsError, match="tenant=REGION"):
        load(CommonSettings, {"FRAUDMESH_PSEUDONYM_KEY": KEY, "FRAUDMESH_TENANT_REGIONS": "oops"})


def test_secret_from_file_and_never_shown(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    settings = load(ReputationSettings, {"FRAUDMESH_PSEUDONYM_KEY_FILE": str(key_file)})
    assert settings.pseudonym_key == Secret(bytes.fromhex(KEY))
    assert KEY not in repr(settings)
    assert "***" in repr(settings)
    with pytest.raises(SettingsError, match="FRAUDMESH_PSEUDONYM_KEY_FILE: cannot read"):
        load(CommonSettings, {"FRAUDMESH_PSEUDONYM_KEY_FILE": str(tmp_path / "missing")})


def test_bad_secret_value_is_not_echoed() -> None:
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class WithPort(CommonSettings):
        port: int = 1

    with pytest.raises(SettingsError) as info:
        load(WithPort, {"FRAUDMESH_PSEUDONYM_KEY": "tooshort-secret", "FRAUDMESH_PORT": "x"})
    assert "tooshort-secret" not in str(info.value)


def test_service_settings_validate_their_own_fields() -> None:
    with pytest.raises(SettingsError, match="DEDUPE_TTL_S"):
        load(ReputationSettings, {"FRAUDMESH_PSEUDONYM_KEY": KEY, "FRAUDMESH_DEDUPE_TTL_S": "5"})


def test_admin_api_off_loopback_needs_mutual_tls() -> None:
    from services.decision.settings import DecisionSettings

    base = {"FRAUDMESH_PSEUDONYM_KEY": "ab" * 32, "FRAUDMESH_ADMIN_TOKEN": "t" * 32}
    for bind in ("0.0.0.0", "::", "10.0.0.5", "admin.example.net"):
        with pytest.raises(SettingsError, match="needs mutual TLS"):
            load(DecisionSettings, {**base, "FRAUDMESH_ADMIN_BIND": bind})
    for bind in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        assert load(DecisionSettings, {**base, "FRAUDMESH_ADMIN_BIND": bind}).admin_bind == bind
    tls = {
        "FRAUDMESH_ADMIN_TLS_CERT_FILE": "/c.pem",
        "FRAUDMESH_ADMIN_TLS_KEY_FILE": "/k.pem",
        "FRAUDMESH_ADMIN_TLS_CLIENT_CA_FILE": "/ca.pem",
    }
    anywhere = "0.0.0.0"
    assert load(DecisionSettings, {**base, **tls, "FRAUDMESH_ADMIN_BIND": anywhere}).admin_bind == anywhere
    with pytest.raises(SettingsError, match="set together"):
        load(DecisionSettings, {**base, "FRAUDMESH_ADMIN_TLS_CERT_FILE": "/c.pem"})


def test_admin_tokens_name_their_principals() -> None:
    from services.common.settings import TextSecret, token_principals

    assert token_principals(TextSecret(b"x" * 16)) == {b"x" * 16: "admin"}
    assert token_principals(TextSecret(b"noc " + b"a" * 16 + b"\nbackup " + b"b" * 20)) == {
        b"a" * 16: "noc",
        b"b" * 20: "backup",
    }
    for bad in (b"short", b"noc short\nx " + b"y" * 16, b"a b c"):
        with pytest.raises(ValueError, match="16 bytes"):
            token_principals(TextSecret(bad))
