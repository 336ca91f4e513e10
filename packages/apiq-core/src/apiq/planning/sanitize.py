"""Text from strangers, made safe to show a language model: visible, bounded, undelimited.

Spec descriptions, titles and API responses are written by whoever published the API.
Before any of it enters a prompt it goes through `sanitize_text`:

- Unicode NFC, so one text has one spelling;
- invisible characters removed: controls (all of Cc but newline and tab), format characters
  (Cf: zero-width spaces and joiners, bidi embeddings/overrides/isolates, word joiner, BOM,
  soft hyphen, the tag block U+E0000-E007F that can smuggle ASCII), surrogates, private use
  and unassigned code points, variation selectors, the combining grapheme joiner and the
  Hangul/Khmer/Braille blanks that render as nothing;
- line and paragraph separators (U+2028/2029, NEL, CR) become newlines; runs of other
  whitespace become one space, and at most one blank line is kept;
- look-alikes of the prompt's own delimiters (`<api_data>`, `</api_data>`) and chat-template
  tokens (`<|im_end|>`) removed, so data cannot close its own block;
- capped at `cap` characters, with an ellipsis when cut.

`api_data` wraps sanitized text in the `<api_data>` block the system prompt declares to be
data, never instructions.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["ELLIPSIS", "api_data", "sanitize_text", "strip_invisible"]

ELLIPSIS = "…"
"""Ends text that was cut to its cap."""

_DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})
_INVISIBLE_MARKS = frozenset(
    {
        0x034F,  # combining grapheme joiner
        0x115F,  # Hangul choseong filler
        0x1160,  # Hangul jungseong filler
        0x17B4,  # Khmer vowel inherent AQ
        0x17B5,  # Khmer vowel inherent AA
        0x2800,  # Braille pattern blank
        0x3164,  # Hangul filler
        0xFFA0,  # halfwidth Hangul filler
    }
)
_LINE_BREAKS = str.maketrans({"\r": "\n", "\x85": "\n", "\u2028": "\n", "\u2029": "\n"})
_DELIMITERS = re.compile(r"<\s*/?\s*api_data\s*>?|<\|[^|<>]{0,64}\|>", re.IGNORECASE)
_SPACES = re.compile(r"[^\S\n]+")
_AROUND_NEWLINE = re.compile(r" ?\n ?")
_BLANK_LINES = re.compile(r"\n{3,}")


def _visible(char: str) -> bool:
    code = ord(char)
    if code < 0x80:
        return (code >= 0x20 and code != 0x7F) or char in "\n\t"
    if code in _INVISIBLE_MARKS or 0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF:
        return False  # variation selectors change nothing a reader can see
    if 0x180B <= code <= 0x180F:
        return False  # Mongolian free variation selectors and vowel separator
    return unicodedata.category(char) not in _DROPPED_CATEGORIES


def strip_invisible(text: str) -> str:
    """`text` in NFC with every invisible character removed and nothing else changed.

    For strings whose exact spelling matters (property names, enum values): no whitespace
    is collapsed and nothing is cut.
    """
    text = unicodedata.normalize("NFC", text.translate(_LINE_BREAKS))
    if text.isascii() and text.isprintable():
        return text
    return "".join(char for char in text if _visible(char))


def sanitize_text(text: str, cap: int) -> str:
    """`text` fit for a prompt (module docstring): visible, collapsed, at most `cap` long.

    Args:
        text: Any text, typically from a spec or an API response.
        cap: Most characters returned (at least 1); longer text ends with an ellipsis.
    """
    if cap < 1:
        raise ValueError(f"cap must be at least 1, not {cap}")
    text = _DELIMITERS.sub("", strip_invisible(text))
    text = _SPACES.sub(" ", text)
    text = _BLANK_LINES.sub("\n\n", _AROUND_NEWLINE.sub("\n", text)).strip()
    # Removing a delimiter can join the halves of another one (`<api<api_data>_data>`).
    while _DELIMITERS.search(text):
        text = _DELIMITERS.sub("", text)
    if len(text) <= cap:
        return text
    return text[: cap - 1].rstrip() + ELLIPSIS


def api_data(text: str, cap: int) -> str:
    """`text` sanitized and wrapped in the `<api_data>` block prompts treat as data only."""
    return f"<api_data>{sanitize_text(text, cap)}</api_data>"
