"""Post length as X counts it (twitter-text v3 weighting)."""

from __future__ import annotations

import pytest

from custom_components.isp_watch.tweet_length import (
    MAX_WEIGHTED_LENGTH,
    weighted_length,
)


@pytest.mark.parametrize(
    ("text", "length"),
    [
        ("Hello", 5),
        ("a" * 280, 280),
        ("Ünïcödé Latin", 13),
        ("“quoted” — dash", 15),
        ("wait…", 6),  # U+2026 is outside the light ranges
        ("日本語", 6),
        ("한국어 텍스트", 13),
        ("😀", 2),
        ("👨‍👩‍👧‍👦", 2),  # one family: a ZWJ sequence counts as one emoji
        ("👍🏽", 2),  # skin tone belongs to the emoji
        ("🇳🇱🇧🇪", 4),  # two flags
        ("1️⃣", 2),  # keycap
        ("❤️", 2),
        ("e\u0301", 1),  # NFC turns e + combining accent into é
        ("see https://example.com/a/very/long/path?query=1", 27),
        ("www.example.org/status", 23),
        ("example.com", 23),
        ("speed 3.5 Mbit/s", 16),
        ("e.g. this", 9),
        ("@isp_support hi", 15),
        ("The line is slow: 12.3 Mbit/s.", 30),
        ("http://a.co and https://t.co/abc", 51),
        ("cafe\u0301 ok", 7),
        ("https://例え.jp/パス", 27),  # the path stops at the first non-ASCII
        ("https://例え.jp/path", 23),
    ],
)
def test_weighted_length(text: str, length: int) -> None:
    """Each sample counts as X counts it."""
    assert weighted_length(text) == length


def test_limit_with_links_and_cjk() -> None:
    """A link always costs 23, however long it is; CJK fills the limit twice as fast."""
    assert weighted_length("x" * 257 + " https://example.com/" + "y" * 500) == 281
    assert weighted_length("字" * 140) == MAX_WEIGHTED_LENGTH
    assert weighted_length("字" * 141) > MAX_WEIGHTED_LENGTH
    assert weighted_length("😀" * 140) == MAX_WEIGHTED_LENGTH
    # NFC: 280 letters with combining accents are 280 accented letters.
    assert weighted_length("e\u0301" * 280) == MAX_WEIGHTED_LENGTH
