"""Masking rules and the sealed form, without a stack."""

from __future__ import annotations

import pytest

from bus import crypto
from schemas.secrets import is_secret, keep_masked, mask


@pytest.mark.parametrize(
    "key", ["apiKey", "api_key", "x-api-key", "api-key", "token", "botToken", "clientSecret", "password", "cookie"]
)
def test_secret_names(key: str) -> None:
    assert is_secret(key)


@pytest.mark.parametrize("key", ["maxTokens", "max_tokens", "keywords", "tokens", "customHeaders", "baseUrl"])
def test_not_secret_names(key: str) -> None:
    assert not is_secret(key)


def test_mask_headers_proxy_and_sealed_values() -> None:
    ring = crypto.Keyring.of(crypto.new_key())
    sealed = ring.seal("sk-abcdefghijkl9999", "sk-****9999")
    doc = {
        "apiKey": sealed,
        "customHeaders": {"x-api-key": "sekret-123", "Authorization": ring.seal("Bearer t", "****")},
        "proxy": "socks5://user:pw123@proxy:1080",
        "note": sealed,
        "bot": {"x-api-key": "abcdefghijkl5678"},
    }
    shown = mask(doc)
    assert shown == {
        "apiKey": "sk-****9999",
        "customHeaders": {"x-api-key": "****", "Authorization": "****"},
        "proxy": "socks5://user:****@proxy:1080",
        "note": "sk-****9999",
        "bot": {"x-api-key": "****5678"},
    }
    # Sending back what was read keeps every stored value.
    assert keep_masked(doc, shown) == doc
    assert ring.open(sealed) == "sk-abcdefghijkl9999"


def test_a_tampered_or_foreign_ciphertext_does_not_open() -> None:
    ring = crypto.Keyring.of(crypto.new_key())
    other = crypto.Keyring.of(crypto.new_key())
    sealed = ring.seal("secret-value", "****")
    with pytest.raises(crypto.SecretKeyError):
        other.open(sealed)
    tampered = sealed[:-3] + ("AAA" if not sealed.endswith("AAA") else "BBB")
    with pytest.raises(crypto.SecretKeyError):
        ring.open(tampered)
    assert ring.open("plain, from before encryption") == "plain, from before encryption"
