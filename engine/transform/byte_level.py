"""GPT-2's byte-level alphabet: how byte-level BPE spells bytes as characters, and bytes shown as text.

Byte-level BPE (Radford et al. 2019, GPT-2's `encoder.py`) works on UTF-8 bytes, and its vocabulary files spell
each byte as one printable character (`bytes_to_unicode`: a space is "Ġ", a newline "Ċ"), so a token is a string
again. For a learner, a token is better shown as the text its bytes make (`readable`): " the" rather than "Ġthe",
and the stray bytes of a character split over several tokens as <0xNN>.

Used by the tokenizer (`tokenization.BPETokenizer`, its readable token forms) and by the step-through of BPE
training (`bpe_trace`), which both show byte runs to the learner.
"""

from __future__ import annotations


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's map from each byte to a printable character, as byte-level BPE vocabularies spell tokens
    (so a space is "Ġ" and a newline "Ċ"). Printable Latin-1 bytes map to themselves.

    >>> m = bytes_to_unicode()
    >>> m[ord("a")], m[ord(" ")], m[ord("\\n")]
    ('a', 'Ġ', 'Ċ')
    """
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    cs = list(bs)
    n = 0
    for b in range(256):
        if b not in bs:  # control characters, space, NBSP, soft hyphen: shifted to 256, 257, ...
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs, strict=True)}


def readable(piece: bytes) -> str:
    """Bytes as text for display: valid UTF-8 as itself, stray bytes of a split character as <0xNN>.

    >>> readable(" the".encode()), readable("🙂".encode()[:2]), readable("é".encode())
    (' the', '<0xF0><0x9F>', 'é')
    """
    out, i = [], 0
    while i < len(piece):
        for width in (1, 2, 3, 4):
            try:
                out.append(piece[i : i + width].decode("utf-8"))
                i += width
                break
            except UnicodeDecodeError:
                continue
        else:
            out.append(f"<0x{piece[i]:02X}>")
            i += 1
    return "".join(out)
