"""Count a post's length the way X does (twitter-text v3 weighting).

X normalises text to NFC, counts every link as 23, counts an emoji (including ZWJ
sequences, flags, keycaps and skin tones) as 2, and weighs each other code point 1 if
it falls in the Latin and general-punctuation ranges below, else 2 (CJK and most other
scripts). The published twitter-text-parser package implements this but imports
pkg_resources, which the setuptools Home Assistant pins no longer ships, so the rules
live here. Where this is unsure (an unusual emoji), it errs on the long side: a post
refused here can be shortened, a post X refuses is lost.

check_message() says whether a message from outside (an automation, a template) can be
posted at all, before it is queued.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
import re
from typing import Literal
import unicodedata

MAX_WEIGHTED_LENGTH = 280
# The most characters a message may have before it is counted at all: far beyond
# any post (280 counted characters, where only links, at 23 each, can be longer than
# they count), and little enough that checking it takes a few milliseconds.
MAX_MESSAGE_CHARACTERS = 10_000
URL_LENGTH = 23
SCALE = 100
DEFAULT_WEIGHT = 200
# (first code point, last code point, weight) from twitter-text's v3 configuration.
WEIGHTED_RANGES = (
    (0x0000, 0x10FF, 100),
    (0x2000, 0x200D, 100),
    (0x2010, 0x201F, 100),
    (0x2032, 0x2037, 100),
)
EMOJI_WEIGHT = 200

# Links with a scheme, a www. host, or a bare host under a common top-level domain.
# Hosts may be international; a path ends at the first non-ASCII character, as in
# twitter-text, so the text after it is counted as text. No link starts inside a word,
# a handle or a host name.
#
# Counting takes time linear in the text, whatever it holds. Labels are matched
# possessively: one can end only where its letters and digits do, so giving back
# characters never helps, and trying to would cost time growing with their number.
_LABEL = r"[a-z0-9]++(?:-++[a-z0-9]++)*+"
_TOP_LEVEL = (
    r"(?:com|net|org|info|io|co|me|ly|gl|be|uk|us|de|nl|fr|es|it|eu|ca|au|tv|app|dev)"
)
_PREFIXED = r"(?:https?://|www\.)"
# A link may start after a hyphen, so a run of labels with hyphens offers a start
# after each one. Where a bare host fails to be a link, no later start inside the same
# run can succeed (it would see the same labels, fewer of them), so such a run is
# passed over whole, up to a hyphen before a scheme or www., where a link can still
# start. Without that, every start inside a run such as "a-a-a-…" would scan the rest
# of it again, and counting would take time growing with the square of the text.
_PASSED_LABEL = rf"[a-z0-9]++(?:(?:-(?!{_PREFIXED}))++[a-z0-9]++)*+"
_LINK_OR_HOST = re.compile(
    r"(?<![\w@.])(?:"
    r"(?P<link>https?://[^\s/]++(?:/[!-~]*+)?+|www\.[^\s/]++(?:/[!-~]*+)?+|"
    rf"(?:{_LABEL}\.)+{_TOP_LEVEL}(?![\w-])(?:/[^\s]*+)?+)"
    rf"|(?=[a-z0-9.]*+-){_PASSED_LABEL}(?:\.{_PASSED_LABEL})*+)",
    re.IGNORECASE,
)
_EMOJI_BASE = (
    r"[\U0001F000-\U0001FAFF\u2600-\u27BF\u2300-\u23FF\u2B00-\u2BFF"
    r"\u2190-\u21FF\u3030\u303D\u3297\u3299\u00A9\u00AE\u203C\u2049\u2122\u2139]"
)
_EMOJI_TAIL = r"(?:\uFE0F|\u20E3|[\U0001F3FB-\U0001F3FF]|[\U000E0020-\U000E007F])*"
_EMOJI = re.compile(
    r"[\U0001F1E6-\U0001F1FF]{2}"  # a flag: two regional indicators
    r"|[0-9#*]\uFE0F?\u20E3"  # a keycap
    rf"|{_EMOJI_BASE}{_EMOJI_TAIL}(?:\u200D{_EMOJI_BASE}{_EMOJI_TAIL})*"
)


# Code points by weight, in runs, for counting them all at once.
_WEIGHT_CLASSES = tuple(
    (
        re.compile(
            "["
            + "".join(
                f"\\U{first:08x}-\\U{last:08x}"
                for first, last, range_weight in WEIGHTED_RANGES
                if range_weight == weight
            )
            + "]+"
        ),
        weight,
    )
    for weight in sorted({weight for _, _, weight in WEIGHTED_RANGES})
)
# Joins the text between links, so it is weighed at once: no emoji sequence spans it.
_SEPARATOR = "\n"


def weighted_length(text: str) -> int:
    """The length X counts for `text`, in time linear in its length.

    Any text is counted; callers that take text from outside cap its size first
    (check_message does), as even linear work grows with what is sent.
    """
    normalized = unicodedata.normalize("NFC", text)
    between_links: list[str] = []
    position = 0
    for match in _LINK_OR_HOST.finditer(normalized):
        if match.lastgroup == "link":
            between_links.append(normalized[position : match.start()])
            position = match.end()
    between_links.append(normalized[position:])
    links = len(between_links) - 1
    total = links * (URL_LENGTH * SCALE - _SEPARATOR_WEIGHT) + _weigh_without_links(
        _SEPARATOR.join(between_links)
    )
    return total // SCALE


def _weigh_without_links(text: str) -> int:
    without_emoji, emoji_count = _EMOJI.subn("", text)
    total = emoji_count * EMOJI_WEIGHT + len(without_emoji) * DEFAULT_WEIGHT
    for pattern, weight in _WEIGHT_CLASSES:
        lighter = len(without_emoji) - len(pattern.sub("", without_emoji))
        total += lighter * (weight - DEFAULT_WEIGHT)
    return total


_SEPARATOR_WEIGHT = _weigh_without_links(_SEPARATOR)


# Nothing a reader would see: whitespace, and the invisible format characters
# (zero-width spaces and joiners, direction marks, word joiners, fillers, byte-order
# marks, variation selectors).
_INVISIBLE = re.compile(
    r"[\s\u00ad\u034f\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u202a-\u202e"
    r"\u2060-\u2064\u206a-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0]*"
)
# Half of a UTF-16 pair on its own: no character, and no JSON writer stores it.
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")

type MessageProblemKey = Literal[
    "tweet_empty", "tweet_too_large", "tweet_invalid_text", "tweet_too_long"
]


@dataclass(frozen=True, slots=True)
class MessageProblem:
    """Why a message cannot be posted: a translation key and its placeholders."""

    key: MessageProblemKey
    placeholders: Mapping[str, str] = field(default_factory=dict)


def check_message(message: str) -> MessageProblem | None:
    """Why `message` cannot be posted as it is, or None when it can.

    Meant for a message as it arrives, before anything is added to it or it is
    queued: the size is capped before any pattern runs, and counting is linear.
    """
    if len(message) > MAX_MESSAGE_CHARACTERS:
        return MessageProblem(
            "tweet_too_large",
            {
                "length": str(len(message)),
                "max_characters": str(MAX_MESSAGE_CHARACTERS),
            },
        )
    if _LONE_SURROGATE.search(message):
        # Refused rather than replaced: a post with a replacement mark in it would go
        # out to the ISP garbled, and stored as it is, it would break every save.
        return MessageProblem("tweet_invalid_text")
    if _INVISIBLE.fullmatch(message):
        return MessageProblem("tweet_empty")
    length = weighted_length(message.strip())
    if length > MAX_WEIGHTED_LENGTH:
        return MessageProblem(
            "tweet_too_long",
            {"length": str(length), "max_length": str(MAX_WEIGHTED_LENGTH)},
        )
    return None
