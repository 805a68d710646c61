"""Token groups and display labels for the embedding map (lesson 5): which tokens a learner can highlight together.

A token's group is decided from its text alone, so the same rule serves character and BPE vocabularies:
- one character: `whitespace`, `digit`, `upper` (an upper-case letter), `vowel` / `consonant` (a lower-case
  Latin letter, accents ignored: "é" is a vowel), `punctuation` (Unicode punctuation and symbols), else `other`.
  The first rule that matches wins, so "A" is `upper`: a character model has to learn that "A" and "a" play
  the same part, and whether their vectors end up close is one of the things the map shows.
- several characters (a BPE token): `whitespace` ("\\n\\n"), `word` (a space then letters: " the", the start of
  a word; GPT-2 vocabulary files spell the space "Ġ"), `piece` (letters with no space: "ing", the inside or
  end of a word), `digit` ("19", " 42"), `punctuation` (",", " --"), else `other` (mixed, or stray bytes of a
  split character such as "<0xF0>").

Groups are named by what the tokens are, never by a colour: the UI picks colours (and must not rely on colour
alone). Byte-level BPE and its "Ġ" spelling: Radford et al. 2019 (GPT-2); see engine.transform.tokenization.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True)
class TokenGroup:
    """One group a learner can highlight: its id, a label for a legend, and what belongs to it."""

    name: str
    label: str
    description: str


GROUPS: tuple[TokenGroup, ...] = (
    TokenGroup("vowel", "vowels", "a, e, i, o, u (lower case, accents ignored)"),
    TokenGroup("consonant", "consonants", "the other lower-case letters"),
    TokenGroup("upper", "upper case", "capital letters"),
    TokenGroup("digit", "digits", "0-9 and numbers"),
    TokenGroup("punctuation", "punctuation", "punctuation marks and symbols"),
    TokenGroup("whitespace", "whitespace", "spaces, tabs, newlines"),
    TokenGroup("word", "whole words", "BPE tokens that start a word: a space, then letters"),
    TokenGroup("piece", "word pieces", "BPE tokens of letters without a leading space"),
    TokenGroup("other", "other", "anything else: mixed tokens, stray bytes, other scripts"),
)
GROUP_NAMES: tuple[str, ...] = tuple(g.name for g in GROUPS)

_VISIBLE = {" ": "␣", "\n": "⏎", "\t": "⇥", "\r": "␍"}
_SPACE_SPELLINGS = (" ", "Ġ")  # a word-start space as text, and as GPT-2 vocabulary files spell it


def token_label(text: str) -> str:
    """A token's text as a label one can see: spaces, newlines, tabs as symbols, other control characters as
    escapes, the empty token as "∅".

    >>> [token_label(t) for t in ["a", " ", "\\n", " the", "\\x07", ""]]
    ['a', '␣', '⏎', '␣the', '\\\\x07', '∅']
    """
    if not text:
        return "∅"
    out = []
    for ch in text:
        if ch in _VISIBLE:
            out.append(_VISIBLE[ch])
        elif unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Zs"):  # invisible: show its code
            out.append(ch.encode("unicode_escape").decode("ascii"))
        else:
            out.append(ch)
    return "".join(out)


def _char_group(ch: str) -> str:
    if ch.isspace():
        return "whitespace"
    if ch.isdigit():
        return "digit"
    if ch.isupper():
        return "upper"
    if ch.isalpha():
        base = unicodedata.normalize("NFKD", ch)[0].lower()  # "é" -> "e" + combining accent
        if "a" <= base <= "z":
            return "vowel" if base in "aeiou" else "consonant"
        return "other"  # a letter of another script (no vowel/consonant split that fits every script)
    if unicodedata.category(ch)[0] in "PS":
        return "punctuation"
    return "other"


def token_group(text: str) -> str:
    """The group (one of `GROUP_NAMES`) a token belongs to, from its text (see the module docstring).

    >>> [token_group(c) for c in ["e", "t", "É", "7", "!", " ", "\\n", "é"]]
    ['vowel', 'consonant', 'upper', 'digit', 'punctuation', 'whitespace', 'whitespace', 'vowel']
    >>> [token_group(t) for t in [" the", "Ġthe", "ing", " 42", " --", "\\n\\n", "e,", "<0xF0>"]]
    ['word', 'word', 'piece', 'digit', 'punctuation', 'whitespace', 'other', 'other']
    """
    if len(text) == 1:
        return _char_group(text)
    if not text:
        return "other"
    if text.isspace():
        return "whitespace"
    starts_word = text[0] in _SPACE_SPELLINGS
    if (text[1:] if starts_word else text).isalpha():
        return "word" if starts_word else "piece"
    rest = text.lstrip(" ")
    if rest.isdigit():
        return "digit"
    if rest and all(unicodedata.category(ch)[0] in "PS" for ch in rest):
        return "punctuation"
    return "other"
