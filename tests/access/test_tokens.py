"""Access tokens: what they carry, what makes them unacceptable, the key file, the cache."""

from __future__ import annotations

import base64
import os
import stat
import threading
import time

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from carelight.access.principal import Principal, Role
from carelight.access.tokens import (
    KEY_FILE,
    LEEWAY,
    TokenError,
    TokenService,
    issuer_for,
    load_signing_key,
    public_jwk,
)
from carelight.config import Settings

AUD = "http://testserver/fhir"
ISS = "http://testserver"
NURSE = Principal(
    "nurse",
    Role.NURSE,
    "Demo nurse",
    organization_id="X9A-org",
    organization_code="X9A",
    organization_name="Brackenfold and Harrowgill Teaching Hospitals NHS Trust",
    scopes=frozenset({"user/*.read", "user/*.write"}),
)
PATIENT = Principal(
    "9434765919",
    Role.PATIENT,
    "Theodore Ramsden",
    patient_id="Y99101-81986917",
    nhs_number="9434765919",
    scopes=frozenset({"patient/*.read"}),
)


def service(key=None, **kw) -> TokenService:
    return TokenService(key or Ed25519PrivateKey.generate(), issuer=ISS, audience=AUD, **kw)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parts(token: str) -> tuple[dict, dict, str]:
    header, payload, signature = token.split(".")
    return orjson.loads(unb64(header)), orjson.loads(unb64(payload)), signature


def test_a_token_carries_the_principal_and_verifies_back_to_it():
    tokens = service()
    for principal in (NURSE, PATIENT):
        assert tokens.verify(tokens.issue(principal)) == principal


def test_claims_follow_rfc_9068():
    tokens = service(clock=lambda: 1_800_000_000.4)
    header, claims, _ = parts(tokens.issue(PATIENT, frozenset({"patient/Observation.read"})))
    assert header == {"alg": "EdDSA", "kid": tokens.kid, "typ": "at+jwt"}
    assert claims.pop("jti")
    assert claims == {
        "iss": ISS,
        "aud": AUD,
        "sub": "9434765919",
        "client_id": "9434765919",
        "iat": 1_800_000_000,
        "exp": 1_800_003_600,
        "scope": "patient/Observation.read",
        "role": "patient",
        "name": "Theodore Ramsden",
        "patient": "Y99101-81986917",
        "nhs": "9434765919",
    }
    _, nurse, _ = parts(tokens.issue(NURSE, client_id="demo-app"))
    assert (nurse["org"], nurse["org_code"], nurse["client_id"]) == ("X9A-org", "X9A", "demo-app")
    assert nurse["scope"] == "user/*.read user/*.write"


def test_every_token_is_unique():
    tokens = service()
    assert tokens.issue(NURSE) != tokens.issue(NURSE)


def test_expired_tokens_are_refused():
    now = [1_800_000_000.0]
    tokens = service(clock=lambda: now[0])
    token = tokens.issue(NURSE, lifetime=60)
    assert tokens.verify(token) == NURSE
    now[0] += 60 + LEEWAY - 1
    assert tokens.verify(token) == NURSE  # within the allowed clock difference
    now[0] += 1
    with pytest.raises(TokenError, match="expired") as caught:
        tokens.verify(token)  # also once it has been cached
    assert caught.value.expired
    fresh = service(key=tokens._private_key, clock=lambda: now[0])
    with pytest.raises(TokenError, match="expired"):
        fresh.verify(token)  # and when it never was


def test_tokens_from_the_future_are_refused():
    tokens = service(clock=lambda: 1_800_000_000.0)
    later = service(key=tokens._private_key, clock=lambda: 1_800_000_000.0 + LEEWAY + 5)
    with pytest.raises(TokenError, match="future"):
        tokens.verify(later.issue(NURSE))


def resign(tokens: TokenService, header: dict, claims: dict) -> str:
    signing_input = f"{b64(orjson.dumps(header))}.{b64(orjson.dumps(claims))}"
    return f"{signing_input}.{b64(tokens._private_key.sign(signing_input.encode()))}"


def test_tampered_tokens_are_refused():
    tokens = service()
    token = tokens.issue(NURSE)
    _, claims, signature = parts(token)
    claims["role"] = "admin"
    forged = f"{token.split('.')[0]}.{b64(orjson.dumps(claims))}.{signature}"
    with pytest.raises(TokenError, match="signature does not verify"):
        tokens.verify(forged)
    flipped = bytearray(unb64(signature))
    flipped[0] ^= 1
    with pytest.raises(TokenError, match="signature does not verify"):
        tokens.verify(f"{token.rsplit('.', 1)[0]}.{b64(bytes(flipped))}")
    with pytest.raises(TokenError, match="not a well-formed JWT"):
        tokens.verify(token + ".x")
    with pytest.raises(TokenError, match="not a well-formed JWT"):
        tokens.verify("not-a-token")
    with pytest.raises(TokenError, match="not a well-formed JWT"):
        tokens.verify(f"{b64(b'[1]')}.{token.split('.', 1)[1]}")


def test_a_token_from_another_key_is_refused():
    ours, theirs = service(), service()
    token = theirs.issue(NURSE)
    with pytest.raises(TokenError, match="key this server does not know"):
        ours.verify(token)
    # Even if it claims our key id, the signature gives it away.
    header, claims, _ = parts(token)
    header["kid"] = ours.kid
    with pytest.raises(TokenError, match="signature does not verify"):
        ours.verify(resign(theirs, header, claims))


def test_no_algorithm_but_eddsa_is_accepted():
    tokens = service()
    header, claims, _ = parts(tokens.issue(NURSE))
    for alg in ("none", "HS256", "RS256"):
        bad = f"{b64(orjson.dumps(header | {'alg': alg}))}.{b64(orjson.dumps(claims))}.e30"
        with pytest.raises(TokenError, match=f"signed with EdDSA, not {alg}"):
            tokens.verify(bad)


def test_only_access_tokens_are_accepted():
    tokens = service()
    header, claims, _ = parts(tokens.issue(NURSE))
    with pytest.raises(TokenError, match="typ must be at"):
        tokens.verify(resign(tokens, header | {"typ": "JWT"}, claims))


def test_the_audience_must_be_this_server():
    tokens = service()
    elsewhere = TokenService(tokens._private_key, issuer=ISS, audience="http://127.0.0.1:9000/fhir")
    with pytest.raises(TokenError, match="another server; this one is http://testserver/fhir"):
        tokens.verify(elsewhere.issue(NURSE))
    _, claims, _ = parts(tokens.issue(NURSE))
    header = {"alg": "EdDSA", "kid": tokens.kid, "typ": "at+jwt"}
    assert tokens.verify(resign(tokens, header, claims | {"aud": [AUD, "other"]})) == NURSE


def test_issuer_and_claims_are_checked():
    tokens = service()
    _, claims, _ = parts(tokens.issue(NURSE))
    header = {"alg": "EdDSA", "kid": tokens.kid, "typ": "at+jwt"}
    with pytest.raises(TokenError, match="not issued by http://testserver"):
        tokens.verify(resign(tokens, header, claims | {"iss": "http://evil.example"}))
    for claim in ("sub", "exp", "role"):
        without = {k: v for k, v in claims.items() if k != claim}
        with pytest.raises(TokenError, match=f"no '{claim}' claim"):
            tokens.verify(resign(tokens, header, without))
    with pytest.raises(TokenError, match="unknown role 'superuser'"):
        tokens.verify(resign(tokens, header, claims | {"role": "superuser"}))
    with pytest.raises(TokenError, match="must be numbers"):
        tokens.verify(resign(tokens, header, claims | {"exp": "never"}))
    with pytest.raises(TokenError, match="must be strings"):
        tokens.verify(resign(tokens, header, claims | {"org": ["X9A-org"]}))


def test_the_cache_is_bounded_and_keyed_by_the_token():
    tokens = service(cache_size=3)
    issued = [tokens.issue(NURSE) for _ in range(5)]
    for token in issued:
        tokens.verify(token)
    assert list(tokens._cache) == issued[2:]
    tokens.verify(issued[2])  # a hit moves it to the back
    tokens.verify(issued[0])
    assert list(tokens._cache) == [issued[4], issued[2], issued[0]]


def test_verification_is_fast_once_cached():
    """The gate and audit together may add 0.15 ms to a read: a cached verify is far less."""
    tokens = service()
    token = tokens.issue(NURSE)
    tokens.verify(token)
    n = 20_000
    started = time.perf_counter()
    for _ in range(n):
        tokens.verify(token)
    per_verify = (time.perf_counter() - started) / n
    assert per_verify < 20e-6, f"{per_verify * 1e6:.1f} µs per cached verify"


def test_the_cache_is_safe_across_threads():
    tokens = service(cache_size=8)
    issued = [tokens.issue(NURSE) for _ in range(32)]
    errors = []

    def work():
        try:
            for _ in range(20):
                for token in issued:
                    assert tokens.verify(token) == NURSE
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(tokens._cache) == 8


def test_the_signing_key_is_made_once_and_kept_private(tmp_path):
    settings = Settings(home=tmp_path / "home", database_url="unused", base_url=AUD)
    first = TokenService.from_settings(settings)
    path = tmp_path / "home" / "keys" / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    second = TokenService.from_settings(settings)
    assert second.kid == first.kid
    assert second.verify(first.issue(NURSE)) == NURSE
    assert (first.issuer, first.audience) == (ISS, AUD)
    assert [p.name for p in path.parent.iterdir()] == [KEY_FILE]  # no temporary files left


def test_concurrent_first_use_agrees_on_one_key(tmp_path):
    path = tmp_path / "keys" / KEY_FILE
    keys = []
    threads = [
        threading.Thread(target=lambda: keys.append(load_signing_key(path))) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    public = {k.public_key().public_bytes_raw() for k in keys}
    assert len(keys) == 8 and len(public) == 1


def test_a_key_file_that_is_not_ed25519_is_refused(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    path = tmp_path / KEY_FILE
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.write_bytes(pem)
    os.chmod(path, 0o600)
    with pytest.raises(ValueError, match="not an Ed25519 private key"):
        load_signing_key(path)


def test_the_jwk_is_the_public_key():
    tokens = service()
    jwk = tokens.jwks()["keys"][0]
    assert {k: jwk[k] for k in ("kty", "crv", "alg", "use")} == {
        "kty": "OKP",
        "crv": "Ed25519",
        "alg": "EdDSA",
        "use": "sig",
    }
    public = Ed25519PublicKey.from_public_bytes(unb64(jwk["x"]))
    token = tokens.issue(NURSE)
    signing_input, signature = token.rsplit(".", 1)
    public.verify(unb64(signature), signing_input.encode())  # raises if not


def test_issuer_is_the_server_root():
    assert issuer_for("http://127.0.0.1:8000/fhir") == "http://127.0.0.1:8000"
    assert issuer_for("https://care.example/api/fhir/") == "https://care.example/api"
    assert issuer_for("https://care.example") == "https://care.example"


def test_the_key_id_is_the_rfc_7638_thumbprint():
    # RFC 8037, appendix A.2 and A.3: an Ed25519 public key and its JWK thumbprint.
    public = Ed25519PublicKey.from_public_bytes(
        unb64("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
    )
    assert public_jwk(public)["kid"] == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
