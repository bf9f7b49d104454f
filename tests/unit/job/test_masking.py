"""Masking must give the same bytes however the stream is cut."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skyrunner.job._masking import Masker, render_section_end, render_section_start


def mask_whole(masker: Masker, data: bytes) -> bytes:
    return masker.feed(data) + masker.flush()


def mask_split(masker: Masker, data: bytes, cuts: list[int]) -> bytes:
    out = b""
    start = 0
    for cut in sorted(set(cuts)):
        out += masker.feed(data[start:cut])
        start = cut
    return out + masker.feed(data[start:]) + masker.flush()


SECRETS = ["s3cr3tValue99", "s3cr3t", "glcbt-64_JOBTOKEN", "pa$$word"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"secret is s3cr3tValue99\n", b"secret is [MASKED]\n"),
        (b"short s3cr3t here", b"short [MASKED] here"),
        (b"token glpat-abcDEF_123.x= end", b"token glpat-[MASKED] end"),
        (b"job glcbt-64_JOBTOKEN!", b"job [MASKED]!"),
        (b"url https://h/x?private_token=abc&y=1", b"url https://h/x?private_token=[MASKED]&y=1"),
        (b"s3 ?X-Amz-Signature=deadbeef ok", b"s3 ?X-Amz-Signature=[MASKED] ok"),
        (b"no prefix glpat- alone", b"no prefix glpat- alone"),
        (b"private_token=notinurl", b"private_token=notinurl"),
        (b"pa$$word", b"[MASKED]"),
        (b"", b""),
    ],
    ids=[
        "exact",
        "shorter-secret",
        "glpat",
        "job-token",
        "url-param",
        "amz-case",
        "bare-prefix",
        "param-outside-url",
        "regex-chars",
        "empty",
    ],
)
def test_masks_whole_text(text: bytes, expected: bytes) -> None:
    assert mask_whole(Masker(SECRETS), text) == expected


def test_secret_split_across_writes() -> None:
    masker = Masker(["s3cr3tValue99"])
    assert masker.feed(b"value: s3cr3t") == b"value: "
    assert masker.feed(b"Value99 done") == b"[MASKED] done"


def test_token_running_past_a_chunk_is_masked_once() -> None:
    masker = Masker()
    assert masker.feed(b"glpat-abc") == b"glpat-[MASKED]"
    assert masker.feed(b"def") == b""
    assert masker.feed(b"ghi and more") == b" and more"


def test_no_secrets_passes_through() -> None:
    masker = Masker(token_prefixes=(), url_params=())
    assert masker.feed(b"anything") == b"anything"


def test_section_markers_have_gitlab_bytes() -> None:
    assert render_section_start("get_sources", at=1767225600) == b"section_start:1767225600:get_sources\r\x1b[0K"
    assert render_section_start("x", at=1, collapsed=True) == b"section_start:1:x[collapsed=true]\r\x1b[0K"
    assert render_section_end("step_script", at=2.9) == b"section_end:2:step_script\r\x1b[0K"
    with pytest.raises(ValueError):
        render_section_end("bad name", at=0)


alphabet = st.sampled_from(list(b"s3cr3tValue99glpat-_x?&=private_tokn \n$pawordGLCBT64JOBTKEN"))


@settings(max_examples=400, deadline=None)
@given(
    parts=st.lists(
        st.one_of(
            st.sampled_from([s.encode() for s in SECRETS] + [b"glpat-", b"?private_token="]),
            st.binary(max_size=6),
            st.lists(alphabet, max_size=8).map(bytes),
        ),
        max_size=12,
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=120), max_size=10),
)
def test_masking_does_not_depend_on_chunking(parts: list[bytes], cuts: list[int]) -> None:
    data = b"".join(parts)
    whole = mask_whole(Masker(SECRETS), data)
    assert mask_split(Masker(SECRETS), data, [c for c in cuts if c <= len(data)]) == whole
    for secret in SECRETS:
        assert secret.encode() not in whole or (secret == "pa$$word" and b"[MASKED]" in whole)
