"""SecretFilter: registered secrets and token-looking strings never reach the log."""

from __future__ import annotations

import logging

from skyrunner.logs import SecretFilter


def test_longest_secret_masked_first_and_short_ones_ignored() -> None:
    secrets = SecretFilter()
    secrets.add(["abcd", "xy"])
    secrets.add(["abcdefgh"])  # added later, still masked before its prefix "abcd"
    assert secrets.mask("abcdefgh abcd xy glrt-t0k3n") == "[MASKED] [MASKED] xy glrt-[MASKED]"


def test_filter_masks_message_args() -> None:
    secrets = SecretFilter()
    secrets.add(["hunter22"])
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "password %s", ("hunter22",), None)
    assert secrets.filter(record) and record.getMessage() == "password [MASKED]"
