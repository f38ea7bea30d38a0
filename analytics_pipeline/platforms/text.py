"""Text helpers shared by every platform module."""

from __future__ import annotations

import re
import unicodedata

__all__ = ["extract_hashtags"]

# Links are removed before looking for tags: `https://x.com/a#frag` has a fragment, not a tag.
_URL = re.compile(r"(?i)\b(?:[a-z][a-z0-9+.\-]*://|www\.)\S+")
# A tag starts at `#` (or the full-width U+FF03 used in CJK text) that does not follow a word
# character, `&` (HTML entities such as `&#39;`) or another `#`: `C#`, `foo#bar`, `##x` are
# not tags.
_TAG_START = re.compile("(?<![\\w&#\uff03])[#\uff03]")
_JOINERS = frozenset({"\u200c", "\u200d"})  # ZWNJ / ZWJ, part of words in Indic scripts
_COMBINING = frozenset({"Mn", "Mc", "Me"})


def _is_tag_char(char: str) -> bool:
    # `\w` alone would cut `#नमस्ते` after three letters: vowel signs are combining marks.
    return (
        char.isalnum()
        or char == "_"
        or char in _JOINERS
        or unicodedata.category(char) in _COMBINING
    )


def _normalize(tag: str) -> str:
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", tag).casefold())


def extract_hashtags(text: str | None) -> tuple[str, ...]:
    """The hashtags of a caption: normalized, without `#`, de-duplicated in first-seen order.

    Rules (shared by every platform, so tags compare across platforms):
    - A tag is `#` followed by letters, digits, `_` and combining marks (any script). It ends at
      the first other character (`#summer!` -> `summer`, `#don't` -> `don`).
    - Normalized with Unicode casefold + NFC: `#Summer`, `#SUMMER` and `#summer` are one tag;
      `#Straße` is `strasse`.
    - Ignored: `#` inside URLs (`https://x.com/a#frag`), `#` glued to a preceding word or `&`
      (`C#`, `foo#bar`, `&#39;`), and tags with no letter at all (`#1`, `#2026`, `#_`): like
      X and Instagram, a purely numeric tag is a number ("we're #1"), not a hashtag.
    """
    if not text:
        return ()
    text = _URL.sub(" ", text)
    seen: dict[str, None] = {}
    for match in _TAG_START.finditer(text):
        end = match.end()
        while end < len(text) and _is_tag_char(text[end]):
            end += 1
        raw = text[match.end() : end]
        if not any(char.isalpha() for char in raw):
            continue
        seen.setdefault(_normalize(raw), None)
    return tuple(seen)
