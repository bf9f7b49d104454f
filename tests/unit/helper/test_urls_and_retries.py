"""URL redaction and the transfer retry policy (with an injected sleep)."""

from __future__ import annotations

import pytest

from skyrunner.helper.transfer import TransferError, backoff_delay, with_retries
from skyrunner.helper.urls import display_url, origin_of, strip_credentials, switch_base


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://u:tok@h/g/p.git", "https://h/g/p.git"),
        ("http://h:9000/b/o?X-Amz-Signature=abc&X-Amz-Credential=k", "http://h:9000/b/o"),
        ("https://h/p#frag", "https://h/p"),
    ],
    ids=["userinfo", "presigned", "fragment"],
)
def test_display_url(url: str, shown: str) -> None:
    assert display_url(url) == shown


def test_origin_and_switch() -> None:
    assert origin_of("https://gitlab-ci-token:x@h:8443/g/p.git") == "https://h:8443/"
    assert strip_credentials("https://h/p") == "https://h/p"
    assert switch_base("http://a:1/api/v4/jobs/1/artifacts?x=1", "https://b:2/else") == (
        "https://b:2/api/v4/jobs/1/artifacts?x=1"
    )


def test_backoff_doubles_and_caps() -> None:
    assert [backoff_delay(n, 1.0) for n in (1, 2, 3, 4, 10)] == [1.0, 2.0, 4.0, 8.0, 30.0]


def test_retries_only_retryable_errors() -> None:
    calls: list[int] = []
    slept: list[float] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise TransferError("503", status=503, retryable=True)
        return "ok"

    notes: list[str] = []
    result = with_retries(
        flaky, attempts=3, backoff_s=0.5, on_retry=lambda e, d: notes.append(f"{e} {d}"), sleep=slept.append
    )
    assert result == "ok" and slept == [0.5, 1.0] and notes == ["503 0.5", "503 1.0"]

    def refused() -> str:
        raise TransferError("403", status=403)

    with pytest.raises(TransferError, match="403"):
        with_retries(refused, attempts=5, backoff_s=1, on_retry=lambda e, d: None, sleep=slept.append)
    assert slept == [0.5, 1.0]

    calls.clear()
    with pytest.raises(TransferError, match="503"):
        with_retries(flaky, attempts=2, backoff_s=0, on_retry=lambda e, d: None, sleep=slept.append)
