"""Tokenizers: offsets tile the text, decode inverts encode, BPE sizes, save/load, compression (the merge tracer:
test_bpe_trace.py)."""

from __future__ import annotations

import json
import random

import pytest

from engine.extract.bundled import DATA_DIR
from engine.transform import tokenization
from engine.transform.byte_level import readable
from engine.transform.tokenization import (
    MAX_CHAR_VOCAB,
    BPETokenizer,
    CharTokenizer,
    Token,
    Tokenizer,
    compression_table,
    tokenizer_from_dict,
    train_bpe,
)

# A mixed alphabet: ASCII, accents (precomposed and combining), CJK, emoji (with skin tone and ZWJ
# sequences), odd whitespace and control characters, a ligature and the last code point.
ALPHABET = [*"abcdefghijklmnopqrstuvwxyz ABCXYZ0123456789\n\n\t.,;:'\"!?-_()"]
ALPHABET += [
    *"éèàüößçñÅ",
    "e\u0301",
    "日",
    "本",
    "語",
    "한",
    "🙂",
    "👍🏽",
    "👨‍👩‍👧",
    "😀",
    "\u00a0",
    "\u3000",
    "\r",
    "ﬁ",
]
ALPHABET += ["\x00", "\U0010ffff", "’", "—"]
EDGE_CASES = [
    "",
    " ",
    "a",
    "\n",
    "🙂",
    "  leading and trailing  ",
    "日本語のテキスト",
    "naïve café",
    "x" * 300,
]


def random_strings(n: int = 300, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return EDGE_CASES + ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 60))) for _ in range(n)]


@pytest.fixture(scope="module")
def bpe() -> BPETokenizer:
    text = (DATA_DIR / "tinyshakespeare.txt").read_text(encoding="utf-8")[:60_000]
    return train_bpe(text + " naïve café 日本語 🙂🙂🙂", vocab_size=512)


def assert_tiles(tokens: list[Token], text: str) -> None:
    """Every token's span is text[start:end], spans are contiguous and cover the whole text."""
    pos = 0
    for tok in tokens:
        assert tok.start == pos, (text, tokens)
        assert tok.end >= tok.start
        assert text[tok.start : tok.end] == tok.text
        pos = tok.end
    assert pos == len(text)


def test_bpe_offsets_tile_the_original_text(bpe):
    for text in random_strings():
        tokens = bpe.encode_with_offsets(text)
        assert_tiles(tokens, text)
        assert [t.id for t in tokens] == bpe.encode(text)


def test_char_offsets_tile_the_original_text():
    for text in random_strings(seed=1):
        tok = CharTokenizer.from_text(text)
        assert_tiles(tok.encode_with_offsets(text), text)


def test_char_vocabulary_is_capped_with_a_plain_reason():
    alphabet = "".join(map(chr, range(0x4E00, 0x4E00 + MAX_CHAR_VOCAB)))
    assert CharTokenizer.from_text(alphabet * 2).vocab_size == MAX_CHAR_VOCAB
    with pytest.raises(ValueError, match=f"uses {MAX_CHAR_VOCAB + 1} different characters.*at most {MAX_CHAR_VOCAB}"):
        CharTokenizer.from_text(alphabet + "\u9fa0")
    # Measuring is not modelling: the compression table still counts characters of any text.
    assert compression_table(alphabet + "\u9fa0", [256])[0].vocab_size == MAX_CHAR_VOCAB + 1


@pytest.mark.parametrize("seed", [2, 3])
def test_decode_inverts_encode(bpe, seed):
    for text in random_strings(seed=seed):
        assert bpe.decode(bpe.encode(text)) == text
        char = CharTokenizer.from_text(text)
        assert char.decode(char.encode(text)) == text


def test_chips_group_split_characters(bpe):
    for text in random_strings(seed=4):
        chips = bpe.token_chips(text)
        assert "".join(c.text for c in chips) == text
        assert [i for c in chips for i in c.ids] == bpe.encode(text)
        assert all(c.text for c in chips)  # a chip always holds at least one whole character
    # An emoji unknown to the vocabulary: 4 byte tokens, one chip, readable pieces.
    (chip,) = bpe.token_chips("👽")
    assert chip.text == "👽" and chip.pieces == ("<0xF0>", "<0x9F>", "<0x91>", "<0xBD>")
    tokens = bpe.encode_with_offsets("👽")
    assert [t.text for t in tokens] == ["", "", "", "👽"] and all(t.partial for t in tokens)


def test_token_text_is_readable_not_byte_symbols(bpe):
    tokens = bpe.encode_with_offsets("To be, or not to be")
    assert all("Ġ" not in t.text and "Ġ" not in t.raw for t in tokens)
    assert " be" in [t.text for t in tokens]
    ids = bpe.encode(" the")
    assert len(ids) == 1 and bpe.id_to_token(ids[0]) == " the" and bpe.raw_token(ids[0]) == "Ġthe"
    assert readable("é".encode()[:1]) == "<0xC3>"


@pytest.mark.parametrize("vocab_size", [256, 300, 1000])
def test_bpe_vocab_size_is_what_was_asked(vocab_size):
    text = "".join(random_strings(200, seed=5)) * 3
    tok = train_bpe(text, vocab_size)
    assert tok.vocab_size == vocab_size == tok.requested_vocab_size
    assert len(tok.vocab()) == vocab_size


def test_bpe_small_text_stops_early_and_says_so():
    tok = train_bpe("hello world", vocab_size=1000)
    assert tok.vocab_size == 265 and tok.requested_vocab_size == 1000
    with pytest.raises(ValueError, match="256 byte tokens"):
        train_bpe("hello", 100)


def test_save_load_round_trip(bpe):
    data = bpe.to_dict()
    again = tokenizer_from_dict(json.loads(json.dumps(data)))  # plain JSON-able data
    assert isinstance(again, BPETokenizer) and again.vocab_size == bpe.vocab_size
    for text in random_strings(50, seed=6):
        assert again.encode(text) == bpe.encode(text)
    assert again.encode_with_offsets("héllo 🙂") == bpe.encode_with_offsets("héllo 🙂")
    char = CharTokenizer.from_text("hello")
    assert tokenizer_from_dict(char.to_dict()).encode("hole") == char.encode("hole")
    with pytest.raises(ValueError, match="unknown tokenizer kind"):
        tokenizer_from_dict({"kind": "wordpiece"})


def test_bpe_survives_a_weights_only_checkpoint(bpe, tmp_path):
    torch = pytest.importorskip("torch")
    torch.save({"tokenizer": bpe.to_dict()}, tmp_path / "ckpt.pt")
    loaded = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    assert tokenizer_from_dict(loaded["tokenizer"]).encode("to be or not") == bpe.encode("to be or not")


def test_safe_chunks_pre_tokenize_like_the_whole_text(bpe):
    from tokenizers.pre_tokenizers import ByteLevel

    pre = ByteLevel(add_prefix_space=False)
    rng = random.Random(8)
    pieces = ["word", "Word.", " ", "\n", "\n\n", "\n\n\n", "  \n", "\t", "'s", "🙂", "42"]
    for _ in range(300):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))
        chunks = tokenization.safe_chunks(text)
        assert "".join(chunks) == text
        assert [w for c in chunks for w, _ in pre.pre_tokenize_str(c)] == [
            w for w, _ in pre.pre_tokenize_str(text)
        ]


def test_long_texts_encode_like_short_ones(bpe):
    text = (DATA_DIR / "tinyshakespeare.txt").read_text(encoding="utf-8")[:150_000]
    assert len(tokenization.safe_chunks(text)) > 100
    assert bpe.encode(text) == bpe.hf.encode(text).ids  # the parallel path gives the same ids


def test_both_tokenizers_share_the_interface(bpe):
    for tok in (bpe, CharTokenizer.from_text("abc")):
        assert isinstance(tok, Tokenizer)
        assert tok.id_to_token(0) in tok.vocab()


def test_compression_table_rows():
    text = "To be, or not to be, that is the question. " * 30
    rows = compression_table(text, [400, 300])
    assert [r.tokenizer for r in rows] == ["char", "bpe", "bpe"]
    assert rows[0].tokens == len(text) and rows[0].chars_per_token == 1.0
    assert rows[1].requested_vocab_size == 300 and rows[2].requested_vocab_size == 400
    assert rows[0].tokens > rows[1].tokens >= rows[2].tokens  # a bigger vocabulary gives shorter sequences
    assert rows[2].chars_per_token == pytest.approx(len(text) / rows[2].tokens)
