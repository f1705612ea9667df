"""Post length as X counts it (twitter-text v3 weighting), and the message check."""

from __future__ import annotations

import time

import pytest

from custom_components.isp_watch.tweet_length import (
    MAX_MESSAGE_CHARACTERS,
    MAX_WEIGHTED_LENGTH,
    MessageProblem,
    check_message,
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
        # A link may start after a hyphen, and not inside a word or a host name.
        ("x-https://example.com/long/path", 25),
        ("a.-b.com", 26),
        ("-example.com", 24),
        ("well-known.example.com/path", 23),
        ("a--b.com", 23),
        ("no-tld.here", 11),
        ("speed-test.net-more", 19),
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


# Shapes that made the link pattern rescan the rest of the text from every position.
HOSTILE_UNITS = ["a-", "a-a.", "1.", "-a.-", "a-http:", "a-www."]


def _fastest_count(text: str) -> float:
    """The shortest of a few timings: the one least disturbed by other work."""
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        weighted_length(text)
        timings.append(time.perf_counter() - start)
    return min(timings)


@pytest.mark.parametrize("unit", HOSTILE_UNITS)
def test_counting_takes_time_linear_in_the_length(unit: str) -> None:
    """100 times the text takes about 100 times as long, not 10,000 times.

    Time linear in the length makes the ratio about 100; the square of the length,
    as the link pattern once took ("a-" * 16,000 counted in 9.7 s), makes it about
    10,000. The bound sits a factor 20 above the one and 5 below the other: a busy
    machine, which slows the long count more often than the short one, does not reach
    it with linear counting, and no quadratic counting stays under it.
    """
    short = unit * (1_000 // len(unit))
    long = unit * (100_000 // len(unit))
    _fastest_count(short)  # compiled patterns and warm caches for both

    ratio = _fastest_count(long) / _fastest_count(short)

    assert ratio < 2_000


@pytest.mark.parametrize(
    "message",
    ["", " ", "\n\t ", "\u3000", "\u200b", " \ufeff\u200d\u2060 ", "\u00ad\u200e"],
)
def test_message_without_visible_text_is_empty(message: str) -> None:
    """Nothing to read, nothing to post: X would get only the ISP's handle."""
    assert check_message(message) == MessageProblem("tweet_empty")


@pytest.mark.parametrize(
    "message",
    [
        "Download 12.3 Mbit/s of 100 since 08:15.",
        "x" * 280,
        "  " + "x" * 280 + "\n",
        "😀",
    ],
)
def test_message_that_fits_passes(message: str) -> None:
    """A message X takes passes; whitespace around it does not count."""
    assert check_message(message) is None


def test_message_too_long_says_by_how_much() -> None:
    """The user hears the length X counts and the limit."""
    assert check_message("字" * 141) == MessageProblem(
        "tweet_too_long", {"length": "282", "max_length": str(MAX_WEIGHTED_LENGTH)}
    )


@pytest.mark.parametrize(
    "message",
    [
        "x" * (MAX_MESSAGE_CHARACTERS + 1),
        "a-" * 5_000_000,  # 10 MB of the shape that once froze the event loop
        " " * (MAX_MESSAGE_CHARACTERS + 1),
    ],
    ids=["one-over", "ten-megabytes", "blank"],
)
def test_message_over_the_size_cap_is_not_counted(message: str) -> None:
    """Past the cap the message is refused by its size alone, whatever it holds."""
    assert check_message(message) == MessageProblem(
        "tweet_too_large",
        {
            "length": str(len(message)),
            "max_characters": str(MAX_MESSAGE_CHARACTERS),
        },
    )


def test_message_at_the_size_cap_is_counted() -> None:
    """Up to the cap the message is counted as X counts it."""
    problem = check_message("x" * MAX_MESSAGE_CHARACTERS)
    assert problem == MessageProblem(
        "tweet_too_long",
        {
            "length": str(MAX_MESSAGE_CHARACTERS),
            "max_length": str(MAX_WEIGHTED_LENGTH),
        },
    )


@pytest.mark.parametrize("message", ["Slow again \ud83d today", "\udc00", "ok \udfff"])
def test_message_with_a_lone_surrogate_is_refused(message: str) -> None:
    """Half a character pair is no character: refused, never stored or posted."""
    assert check_message(message) == MessageProblem("tweet_invalid_text")
