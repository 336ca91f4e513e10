"""Redactor: canary secrets of every kind never leave in clear."""

from __future__ import annotations

import base64
import json
import re
import threading
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apiq.errors import ConfigurationError
from apiq.redaction import MIN_SECRET_LENGTH, Redactor

KEY = b"k" * 32
API_KEY = "sk_live_CANARY_4f9a2b7c1d"
BEARER = "eyJhbGciOiJIUzI1NiJ9.CANARY+bearer/tok=="
BASIC_USER, BASIC_PASS = "canary-user", "p@ss w0rd/CANARY!"
REFRESH = "rt-CANARY-8c1e0f&refresh=1"
CANARIES = [API_KEY, BEARER, BASIC_PASS, REFRESH, f"{BASIC_USER}:{BASIC_PASS}"]
MARKER = re.compile(r"\[REDACTED:[0-9a-f]{8}\]")


@pytest.fixture
def redactor() -> Redactor:
    r = Redactor(hmac_key=KEY)
    for secret in (API_KEY, BEARER, REFRESH):
        assert r.register(secret)
    r.register_basic(BASIC_USER, BASIC_PASS)
    return r


def encodings(secret: str) -> list[str]:
    raw = secret.encode()
    b64 = base64.b64encode(raw).decode()
    return [
        secret,
        b64,
        b64.rstrip("="),
        base64.urlsafe_b64encode(raw).decode(),
        quote(secret, safe=""),
        quote_plus(secret),
        json.dumps(secret)[1:-1],
    ]


def assert_clean(text: str) -> None:
    for canary in CANARIES:
        for form in encodings(canary):
            assert form not in text, (canary, form)


def test_json_response_echoing_credentials(redactor: Redactor) -> None:
    basic = base64.b64encode(f"{BASIC_USER}:{BASIC_PASS}".encode()).decode()
    echoed = {
        "headers": {"Authorization": f"Basic {basic}", "X-Echo": f"Bearer {BEARER}"},
        "args": {"key": API_KEY, "enc": quote(API_KEY, safe=""), "rt": quote_plus(REFRESH)},
        API_KEY: [[{"nested": base64.b64encode(BEARER.encode()).decode()}], b"raw " + b"x"],
        "blob": base64.b64encode(b"prefix:" + REFRESH.encode() + b":suffix").decode(),
        "bytes": f"token={API_KEY}".encode(),
        "note": "nothing secret here",
        "count": 3,
    }
    masked = redactor.mask(echoed)
    assert isinstance(masked, dict)
    text = json.dumps(masked, default=lambda b: b.decode())
    assert_clean(text)
    assert base64.b64decode(echoed["blob"]).decode() not in text  # type: ignore[arg-type]
    assert masked["note"] == "nothing secret here"
    assert masked["count"] == 3
    assert MARKER.fullmatch(masked["headers"]["Authorization"])
    assert masked["headers"]["X-Echo"] == f"Bearer {redactor.marker(BEARER)}"
    assert redactor.marker(API_KEY) in masked  # the key itself was masked


def test_secret_inside_base64_of_a_longer_blob_at_any_alignment(redactor: Redactor) -> None:
    for prefix in (b"", b"a", b"ab", b"abc"):
        blob = base64.b64encode(prefix + API_KEY.encode() + b"tail").decode()
        masked = redactor.mask_text(blob)
        assert MARKER.search(masked)
        # What remains can decode at most a few stray bits of the key, never the key.
        leftover = MARKER.sub("", masked)
        assert len(leftover) <= len(blob) - len(API_KEY)


def test_headers_by_name_without_registration() -> None:
    r = Redactor(hmac_key=KEY)
    headers = {
        "Authorization": "Bearer unregistered",
        "proxy-authorization": "Basic xyz",
        "Cookie": "sid=1",
        "Set-Cookie": "sid=2; HttpOnly",
        "X-API-Key": "abc",
        "Content-Type": "application/json",
    }
    masked = r.mask(headers)
    assert isinstance(masked, dict)
    assert masked["Content-Type"] == "application/json"
    for name in set(headers) - {"Content-Type"}:
        assert masked[name] == r.marker(headers[name])
    pairs = r.mask([("authorization", "Bearer t0k"), ("accept", "*/*")])
    assert pairs == [("authorization", r.marker("Bearer t0k")), ("accept", "*/*")]
    body = r.mask({"user": {"PASSWORD": "hunter2", "client_secret": {"a": 1}, "token": None}})
    assert body == {
        "user": {
            "PASSWORD": r.marker("hunter2"),
            "client_secret": r.marker('{"a": 1}'),
            "token": None,
        }
    }


def test_url_query_userinfo_and_fragment(redactor: Redactor) -> None:
    url = (
        f"https://bob:{quote(BASIC_PASS, safe='')}@api.example.com/v1/{API_KEY}/items"
        f"?page=2&api_key={API_KEY}&Access-Token=unregistered&q={quote_plus(REFRESH)}"
        "#access_token=frag-secret&state=ok"
    )
    masked = redactor.mask_url(url)
    assert_clean(masked)
    for clear in ("bob:", "unregistered", "frag-secret"):
        assert clear not in masked
    assert masked.startswith("https://[REDACTED:")
    assert "@api.example.com/v1/" in masked
    assert "page=2&api_key=[REDACTED:" in masked
    assert masked.endswith("&state=ok")
    assert redactor.mask_url("https://example.com/a?b=c") == "https://example.com/a?b=c"
    assert API_KEY not in redactor.mask_url(f"http://[::1/{API_KEY}")  # unparsable URL
    broken = redactor.mask_url("http://bob:pw-unregistered@[::1/x?token=unregistered-too#f")
    assert "unregistered" not in broken
    assert broken.startswith("http://")


def test_exception_text(redactor: Redactor) -> None:
    exc = RuntimeError(f"401 from upstream: token {BEARER!r} rejected, key={API_KEY}")
    text = redactor.mask_exception(exc)
    assert_clean(text)
    assert text.startswith("401 from upstream: token ")

    class Unprintable(Exception):
        def __str__(self) -> str:
            raise ValueError("boom")

    assert redactor.mask_exception(Unprintable()) == "<Unprintable: unprintable>"


def test_non_secret_text_unchanged(redactor: Redactor) -> None:
    text = 'GET /pets?limit=10 -> 200 OK {"name": "Rex", "tags": ["dog"]} ünïcödé'
    assert redactor.mask_text(text) == text
    assert redactor.mask({"a": [1, 2.5, True, None, text]}) == {"a": [1, 2.5, True, None, text]}


def test_fingerprint_is_keyed_stable_and_not_the_secret() -> None:
    a, b = Redactor(hmac_key=KEY), Redactor(hmac_key=KEY)
    other = Redactor(hmac_key=b"o" * 32)
    fp = a.fingerprint(API_KEY)
    assert re.fullmatch("[0-9a-f]{64}", fp)
    assert fp == b.fingerprint(API_KEY) == a.fingerprint(API_KEY.encode())
    assert fp != other.fingerprint(API_KEY)
    assert API_KEY not in fp
    assert a.marker(API_KEY) == f"[REDACTED:{fp[:8]}]"


def test_short_secrets_are_ignored_and_bad_keys_refused() -> None:
    r = Redactor(hmac_key=KEY)
    assert not r.register("a" * (MIN_SECRET_LENGTH - 1))
    assert r.mask_text("aaa bbb") == "aaa bbb"
    r.register_basic("u", "pw")  # short password: only the base64 "u:pw" form is masked
    assert MARKER.fullmatch(r.mask_text(base64.b64encode(b"u:pw").decode()))
    with pytest.raises(ConfigurationError, match="at least 16"):
        Redactor(hmac_key=b"short")


def test_longest_form_wins_and_bytes_secrets() -> None:
    r = Redactor(hmac_key=KEY)
    r.register("abcd")
    r.register("abcdefgh")
    assert r.mask_text("abcdefgh") == r.marker("abcdefgh")
    r.register(b"\xff\xfe\x00binary")
    assert (
        r.mask_bytes(b"x\xff\xfe\x00binaryx")
        == b"x" + r.marker(b"\xff\xfe\x00binary").encode() + b"x"
    )


def test_concurrent_registration_loses_nothing() -> None:
    r = Redactor(hmac_key=KEY)
    secrets = [f"secret-{i:04d}-canary" for i in range(200)]

    def work(chunk: list[str]) -> None:
        for s in chunk:
            r.register(s)
            r.mask_text(s)

    threads = [threading.Thread(target=work, args=(secrets[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    masked = r.mask_text(" ".join(secrets))
    assert "canary" not in masked


@settings(max_examples=300, deadline=None)
@given(
    secret=st.text(min_size=MIN_SECRET_LENGTH, max_size=40),
    before=st.text(max_size=60),
    after=st.text(max_size=60),
)
def test_registered_secret_never_survives(secret: str, before: str, after: str) -> None:
    r = Redactor(hmac_key=KEY)
    if not r.register(secret):  # fewer than MIN_SECRET_LENGTH bytes is impossible here
        pytest.fail("secret unexpectedly ignored")
    out = r.mask_text(before + secret + after)
    # Between markers no occurrence remains (a marker's own text is not a leak).
    assert all(secret not in part for part in MARKER.split(out))
    assert MARKER.search(out)


@settings(max_examples=200, deadline=None)
@given(
    secret=st.from_regex(r"[A-Za-z0-9_\-]{4,40}", fullmatch=True).filter(
        lambda s: not set(s) <= set("REDACT0123456789abcdef")
    ),
    text=st.lists(st.text(max_size=20), min_size=1, max_size=5),
)
def test_realistic_token_absent_from_output(secret: str, text: list[str]) -> None:
    r = Redactor(hmac_key=KEY)
    r.register(secret)
    out = r.mask_text(secret.join(text) + secret)
    assert secret not in out


@settings(max_examples=200, deadline=None)
@given(
    pairs=st.lists(
        st.tuples(
            st.one_of(
                st.sampled_from(["Authorization", "x-api-key", "Set-Cookie", "date"]),
                st.text(max_size=12),
            ),
            st.one_of(st.just(""), st.just(API_KEY), st.text(max_size=30)),
        ),
        max_size=6,
    )
)
def test_mask_pairs_masks_each_pair_as_mask_does(pairs: list[tuple[str, str]]) -> None:
    r = Redactor(hmac_key=KEY)
    r.register(API_KEY)
    assert r.mask_pairs(pairs) == tuple(r.mask(pair) for pair in pairs)
    assert all(API_KEY not in name + value for name, value in r.mask_pairs(pairs))


def test_nothing_registered_masks_only_by_name() -> None:
    r = Redactor(hmac_key=KEY)
    assert r.mask_text(API_KEY) == API_KEY
    assert r.mask_bytes(API_KEY.encode()) == API_KEY.encode()
    assert r.mask({"token": API_KEY, "note": API_KEY}) == {
        "token": r.marker(API_KEY),
        "note": API_KEY,
    }


def test_a_registered_secret_keeps_its_fingerprint() -> None:
    r = Redactor(hmac_key=KEY)
    before = r.fingerprint(API_KEY)
    r.register(API_KEY)
    assert r.fingerprint(API_KEY) == r.fingerprint(API_KEY.encode()) == before
    assert r.fingerprint(API_KEY + "x") == Redactor(hmac_key=KEY).fingerprint(API_KEY + "x")
