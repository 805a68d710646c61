"""engine.train.loop, engine.train.config, engine.train.cli and engine.load.checkpoint: the training step stays short,
the loop learns, stops, diverges politely, saves, loads and resumes, and old configs load as they were trained."""

from __future__ import annotations

import inspect
import json
import math
import signal
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from engine.load.checkpoint import load_checkpoint, read_checkpoint, read_metrics
from engine.train.config import PRESETS, TrainConfig
from engine.train.job import save_run
from engine.train.loop import train_loop, train_step
from engine.train.prepare import prepare
from engine.train.schedule import lr_factor, lr_schedule_points
from engine.transform.data import TextDataset, next_token_examples
from engine.transform.tokenization import CharTokenizer

TINY = PRESETS["tiny"]
REPO = Path(__file__).resolve().parents[3]


def run(config: TrainConfig, text: str, **kwargs):
    state = prepare(config, text)
    records: list[dict] = []
    outcome = train_loop(state, on_record=records.append, **kwargs)
    return state, outcome, records


def test_data_split_and_batches(small_text: str) -> None:
    tok = CharTokenizer.from_text(small_text)
    ds = TextDataset(small_text, tok)
    assert len(ds.train) == 18_000 and len(ds.val) == 2_000
    assert tok.decode(ds.val[:20].tolist()) == small_text[18_000:18_020]  # the last 10% is validation
    x, y = ds.get_batch("train", 4, 8, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (4, 8)
    assert torch.equal(x[:, 1:], y[:, :-1])  # targets are the inputs shifted by one
    x2, _ = ds.get_batch("train", 4, 8, torch.Generator().manual_seed(0))
    assert torch.equal(x, x2)
    with pytest.raises(ValueError, match="block_size"):
        TextDataset("abcdefghij" * 3, CharTokenizer.from_text("abcdefghij")).check_block_size(8)
    assert next_token_examples("hello", CharTokenizer.from_text("hello"), 4, 2) == [("h", "e"), ("he", "l")]


def test_lr_schedule_warms_up_then_decays() -> None:
    c = TrainConfig(warmup_steps=10, min_lr_frac=0.1)
    lrs = [lr_factor(s, c, 100) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:], strict=False))  # never rises after warm-up
    assert lr_factor(100, c, 100) == pytest.approx(0.1)
    points = lr_schedule_points(c, 100, n=5)
    assert points[0][0] == 1 and points[-1][0] == 100 and points[-1][1] == pytest.approx(c.lr * 0.1, rel=0.05)


def test_tiny_run_learns_and_publishes_every_step(small_text: str) -> None:
    state, outcome, records = run(TINY, small_text)
    assert outcome.status == "finished"
    assert [r["step"] for r in records] == list(range(TINY.max_steps + 1))
    first, last = records[0], records[-1]
    assert abs(first["val_loss"] - math.log(state.tokenizer.vocab_size)) < 0.3  # starts near ln(vocab)
    assert last["val_loss"] < first["val_loss"] - 0.5  # from ~4.2 (uniform) to ~3.4 (letter frequencies)
    assert last["final"] and last["train_eval_loss"] is not None
    assert "sample" in first and isinstance(first["sample"], str)  # the gibberish of step 0
    keys = {"step", "train_loss", "val_loss", "lr", "grad_norm", "tokens_per_s", "elapsed_s", "eta_s"}
    assert keys <= set(records[5])
    assert outcome.summary["final_val_loss"] == last["val_loss"]
    assert outcome.summary["params"] == state.model.num_params()


def test_same_seed_same_losses(small_text: str) -> None:
    config = replace(TINY, max_steps=15)
    _, _, a = run(config, small_text)
    _, _, b = run(config, small_text)
    _, _, c = run(replace(config, seed=7), small_text)
    losses = [[r["train_loss"] for r in rs] for rs in (a, b, c)]
    assert losses[0] == losses[1]
    assert losses[0] != losses[2]


@pytest.mark.parametrize("lr, word", [(1e30, "NaN"), (3.0, "shot up")])
def test_absurd_learning_rate_stops_with_a_plain_message(small_text: str, lr: float, word: str) -> None:
    state, outcome, _ = run(replace(TINY, lr=lr), small_text)
    assert outcome.status == "diverged"
    assert state.step < 10
    assert word in outcome.message
    assert "learning rate is too high" in outcome.message and f"lr={lr:g}" in outcome.message


def test_stop_event_ends_the_run(small_text: str) -> None:
    stop = threading.Event()

    def on_record(record: dict) -> None:
        if record["step"] == 7:
            stop.set()

    state = prepare(replace(TINY, max_steps=10_000), small_text)
    outcome = train_loop(state, on_record=on_record, stop_event=stop)
    assert outcome.status == "stopped" and state.step == 8


def test_time_budget_ends_the_run(small_text: str) -> None:
    state, outcome, records = run(replace(TINY, max_steps=None, time_budget=0.5), small_text)
    assert outcome.status == "finished"
    assert state.step > 5
    assert records[-1]["elapsed_s"] < 5.0  # generous: the budget is 0.5 s


def test_a_slow_start_does_not_end_a_timed_run_early(small_text: str) -> None:
    """The first plan is made after 5 steps; if those were slow (a busy machine), the run must re-plan instead
    of stopping at the short first plan with most of its budget unused."""
    import time

    def slow_start(record: dict) -> None:
        if record["step"] <= 5:
            time.sleep(0.3)  # as if the machine were busy during the first steps

    cfg = replace(TINY, max_steps=None, time_budget=3.0, eval_interval=10_000)
    state = prepare(cfg, small_text)
    outcome = train_loop(state, on_record=slow_start)
    assert outcome.status == "finished"
    assert outcome.summary["elapsed_s"] >= 0.8 * 3.0


def test_checkpoint_round_trip_gives_identical_outputs(small_text: str, tmp_path: Path) -> None:
    state, outcome, _ = run(replace(TINY, max_steps=10), small_text)
    save_run(state, outcome, tmp_path)
    model, tok, config, metrics = load_checkpoint(tmp_path)
    assert tok.to_dict() == state.tokenizer.to_dict()
    assert config == state.config.to_dict() and len(metrics) == 11
    idx = torch.tensor([tok.encode("First Citizen")])
    state.model.eval()
    assert torch.equal(model(idx)[0], state.model(idx)[0])
    assert {p.name for p in tmp_path.iterdir()} >= {"ckpt.pt", "config.json", "metrics.jsonl", "summary.json"}
    assert json.loads((tmp_path / "config.json").read_text())["train"]["n_layer"] == TINY.model.n_layer  # stored flat
    assert len(read_metrics(tmp_path)) == 11


def test_resume_continues_the_step_count_and_the_run(small_text: str, tmp_path: Path) -> None:
    config = replace(TINY, max_steps=20)
    _, _, straight = run(config, small_text)

    stop = threading.Event()
    state = prepare(config, small_text)
    outcome = train_loop(state, on_record=lambda r: r["step"] == 10 and stop.set(), stop_event=stop)
    save_run(state, outcome, tmp_path)
    assert read_checkpoint(tmp_path)["step"] == 11

    resumed = prepare(config, small_text, resume_from=tmp_path)
    assert resumed.step == 11
    records: list[dict] = []
    train_loop(resumed, on_record=records.append)
    assert [r["step"] for r in records] == list(range(12, 21))
    # weights, optimizer state and the batch sampler all continue: the losses match an uninterrupted run
    assert [r["train_loss"] for r in records] == pytest.approx([r["train_loss"] for r in straight[12:]], rel=1e-5)


def test_cli_last_line_is_json(small_text: str, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(small_text, encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "engine.train", "--preset", "tiny", "--max-steps", "12", "--corpus", str(corpus),
         "--out", str(tmp_path / "run"), "--seed", "3"],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=True,
    )
    lines = out.stdout.strip().splitlines()
    assert len(lines) > 2  # readable progress first
    result = json.loads(lines[-1])
    assert {"val_loss", "train_loss", "steps", "tokens_per_s", "params", "device", "elapsed_s"} <= set(result)
    assert result["steps"] == 12
    assert (tmp_path / "run" / "ckpt.pt").exists()


def _cli(tmp_path: Path, text: str, *args: str) -> subprocess.CompletedProcess:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(text, encoding="utf-8")
    return subprocess.run([sys.executable, "-m", "engine.train", "--preset", "tiny", "--corpus", str(corpus),
                           "--out", str(tmp_path / "run"), *args],
                          cwd=REPO, capture_output=True, text=True, timeout=120)


def test_cli_exits_0_for_a_finished_run(small_text: str, tmp_path: Path) -> None:
    out = _cli(tmp_path, small_text, "--max-steps", "5", "--quiet")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1])["status"] == "finished"


def test_cli_exits_1_for_a_diverged_run_and_still_prints_its_json(small_text: str, tmp_path: Path) -> None:
    """Scripts and CI must be able to tell a run that blew up from one that trained."""
    out = _cli(tmp_path, small_text, "--set", "lr=50", "--set", "optimizer=adamw", "--set", "grad_clip=0")
    assert out.returncode == 1, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["status"] == "diverged" and "learning rate is too high" in result["message"]
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["status"] == "diverged"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_cli_interrupted_stops_saves_and_says_so(small_text: str, tmp_path: Path, sig: signal.Signals) -> None:
    """Ctrl-C (or SIGTERM) at the command line ends the run the way Stop does: it saves, then prints its JSON."""
    corpus, run_dir = tmp_path / "corpus.txt", tmp_path / "run"
    corpus.write_text(small_text, encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "engine.train", "--preset", "tiny", "--max-steps", "1000000",
                             "--corpus", str(corpus), "--out", str(run_dir)],
                            cwd=REPO, stdout=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if line.startswith("step") and "step     0" not in line:
            break
    proc.send_signal(sig)
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    result = json.loads(rest.strip().splitlines()[-1])
    assert result["status"] == "stopped"
    assert read_checkpoint(run_dir)["step"] == result["steps"] > 0


def test_a_timed_run_stopped_part_way_resumes_down_its_cosine(small_text: str, tmp_path: Path) -> None:
    """Resume goes on from the learning rate the run stopped at, decaying from there: no fresh warm-up that would
    drop the rate to a tenth and then jump it back to the peak."""
    config = replace(PRESETS["tiny"], max_steps=None, time_budget=5.0, warmup_steps=5)
    stop = threading.Event()
    state = prepare(config, small_text)
    train_loop(state, on_record=lambda r: stop.set() if r["step"] >= 40 else None, stop_event=stop)
    save_run(state, None, tmp_path / "run")
    last_lr = state.metrics[-1]["lr"]
    assert config.lr * config.min_lr_frac * 1.5 < last_lr  # stopped well above the floor

    resumed = prepare(replace(config, time_budget=2.0), small_text, resume_from=tmp_path / "run")
    records: list[dict] = []
    train_loop(resumed, on_record=records.append)
    lrs = [r["lr"] for r in records]
    assert records[0]["step"] == state.step + 1
    assert lrs[0] == pytest.approx(last_lr, rel=0.02)
    # never back up towards the peak (a re-plan may nudge the curve a little), and down to the floor at the end
    assert max(lrs) <= 1.05 * lrs[0]
    assert lrs[-1] == pytest.approx(config.lr * config.min_lr_frac, rel=0.2)


def test_early_stopping_ends_a_run_that_has_started_to_memorise(small_text: str) -> None:
    """On a few thousand characters a model soon gets better only at its own training text; with a patience the
    engine stops it and says where its best validation loss was."""
    config = PRESETS["tiny"].with_changes(n_embd=64, max_steps=3000, eval_interval=10, early_stop_patience=3,
                                          sample_interval=0)
    state = prepare(config, small_text[:3000])
    outcome = train_loop(state)
    evals = [(r["step"], r["val_loss"]) for r in state.metrics if r.get("val_loss") is not None]
    assert outcome.status == "finished" and state.step < 3000
    assert outcome.message.startswith(f"Stopped early at step {state.step:,}")
    best_step, best = min(evals[1:], key=lambda e: e[1])
    assert f"{best:.3f} at step {best_step:,}" in outcome.message
    assert [s for s, _ in evals[-3:]] == [state.step - 20, state.step - 10, state.step]
    assert all(v >= best for _, v in evals[-3:]) and state.metrics[-1]["final"]


def test_without_patience_no_early_stop(small_text: str) -> None:
    state = prepare(replace(PRESETS["tiny"], max_steps=30, eval_interval=10), small_text)
    assert train_loop(state).message == "" and state.step == 30


def test_a_short_timed_run_draws_its_validation_curve_from_many_points(small_text: str) -> None:
    """A run too short for its eval_interval (here 10,000 steps) still estimates validation loss about
    `eval_points` times, so a 10-second run in the lesson draws a curve, not a start and an end."""
    sparse = run(replace(TINY, max_steps=None, time_budget=1.5, eval_interval=10_000), small_text)[2]
    dense = run(replace(TINY, max_steps=None, time_budget=1.5, eval_interval=10_000, eval_points=12), small_text)[2]
    assert sum(r["val_loss"] is not None for r in sparse) == 2  # step 0 and the end
    evaluated = [r["step"] for r in dense if r["val_loss"] is not None]
    # about 12 points, or one every 5 steps (the floor) when two busy cores gave the 1.5 s only a few dozen steps
    assert len(evaluated) >= min(8, dense[-1]["step"] // 5 + 1), evaluated
    assert evaluated[0] == 0 and dense[-1]["val_loss"] is not None


def test_reading_the_loss_back_every_k_steps_publishes_the_same_records(small_text: str) -> None:
    """The GPU's read-back every k steps holds records back and fills them in: same records, same order, same
    losses as reading every step; divergence is still caught."""
    config = replace(TINY, max_steps=23, eval_interval=10)
    _, every, a = run(config, small_text)
    _, batched, b = run(replace(config, readback_every=4), small_text)
    assert [r["step"] for r in b] == list(range(24))
    assert [r["train_loss"] for r in a] == [r["train_loss"] for r in b]
    assert [r["grad_norm"] for r in a] == [r["grad_norm"] for r in b]
    assert [r["val_loss"] for r in a] == [r["val_loss"] for r in b]
    assert every.summary["final_val_loss"] == batched.summary["final_val_loss"]
    state, outcome, _ = run(replace(TINY, lr=1e30, readback_every=4), small_text)
    assert outcome.status == "diverged" and "NaN" in outcome.message


def test_drawing_the_next_batch_before_the_backward_trains_the_same(small_text: str,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.train.loop

    config = replace(TINY, max_steps=12)
    _, _, a = run(config, small_text)
    monkeypatch.setattr(engine.train.loop, "prefetches", lambda device_type: True)
    _, _, b = run(config, small_text)
    assert [r["train_loss"] for r in a] == [r["train_loss"] for r in b]


def test_the_lesson_presets_options_train(small_text: str) -> None:
    """Every option the lesson preset turns on trains a tiny model without trouble."""
    config = TINY.with_changes(max_steps=30, optimizer="muon", muon_lr=0.02, qk_norm=True, rope=True,
                               muon_split_qkv=True, min_lr_frac=0.0)
    _, outcome, records = run(config, small_text)
    assert outcome.status == "finished" and records[-1]["val_loss"] < records[0]["val_loss"] - 0.5


def test_resuming_or_fine_tuning_keeps_the_checkpoints_model_options(small_text: str, tmp_path: Path) -> None:
    """A run saved with the plain model and continued under a preset whose options differ (rotary embeddings,
    QK-norm) must rebuild the model it saved, not the preset's."""
    state, outcome, _ = run(replace(TINY, max_steps=4), small_text)
    save_run(state, outcome, tmp_path / "run")
    newer = TINY.with_changes(max_steps=6, rope=True, qk_norm=True, n_layer=4)
    for kwargs in ({"resume_from": tmp_path / "run"}, {"finetune_from": tmp_path / "run"}):
        again = prepare(newer, small_text, **kwargs)
        assert (again.config.model.rope, again.config.model.qk_norm, again.config.model.n_layer) == (False, False, 2)
        assert again.model.config == again.config.model  # the run's config says what its model is


def test_train_step_stays_short() -> None:
    """Lesson 7 shows `train_step` to learners as the heart of training: it must read like nanoGPT's step."""
    lines = [line for line in inspect.getsource(train_step).splitlines() if line.strip()]
    assert len(lines) <= 30, f"train_step has grown to {len(lines)} lines: move what is not the step around it"


def test_an_old_flat_train_config_loads_with_the_same_model_shape() -> None:
    """data/reference/config.json's "train" dict, saved flat before TrainConfig held a GPTConfig (and before the
    options measured and dropped since), rebuilds the same model; to_dict writes the same flat form back."""
    saved = json.loads((REPO / "data" / "reference" / "config.json").read_text(encoding="utf-8"))
    config = TrainConfig.from_dict(saved["train"])
    shape = config.model_config(saved["model"]["vocab_size"])
    assert {k: getattr(shape, k) for k in saved["model"]} == saved["model"]
    assert (config.lr, config.max_steps, config.dtype, config.min_lr_frac) == (0.003, 750, "float32", 0.1)
    assert not (config.model.rope or config.model.qk_norm or config.muon_split_qkv)  # trained before them: off
    assert {k: v for k, v in config.to_dict().items() if k in saved["train"]} == saved["train"]
    nested = {"model": saved["model"], **{k: v for k, v in saved["train"].items() if k not in saved["model"]}}
    assert TrainConfig.from_dict(nested).model_config(saved["model"]["vocab_size"]) == shape  # the new form too


def test_a_run_that_used_a_dropped_option_is_refused(small_text: str, tmp_path: Path) -> None:
    """Options measured and dropped (docs/training-notes.md) are ignored while off, as old configs hold them; a
    saved run that turned one on cannot be rebuilt as it trained, so loading it says so instead of guessing."""
    off = {"mlp_act": "gelu", "zero_init_proj": False, "logit_softcap": 0.0, "attn_scale": 0.0,
           "lr_schedule": "cosine", "cooldown_frac": 0.4, "muon_momentum_warmup": 0, "muon_momentum_start": 0.85}
    assert TrainConfig.from_dict({**TINY.to_dict(), **off}) == TINY
    for used in ({"mlp_act": "relu2"}, {"attn_scale": 0.25}, {"lr_schedule": "wsd"}, {"muon_momentum_warmup": 300}):
        with pytest.raises(ValueError, match=f"used {next(iter(used))}=.*measured and dropped"):
            TrainConfig.from_dict({**TINY.to_dict(), **off, **used})
    state, outcome, _ = run(replace(TINY, max_steps=3), small_text)
    save_run(state, outcome, tmp_path / "run")
    ckpt = read_checkpoint(tmp_path / "run")
    ckpt["train_config"]["logit_softcap"] = 15.0
    ckpt["model_config"]["logit_softcap"] = 15.0
    torch.save(ckpt, tmp_path / "run" / "ckpt.pt")
    for kwargs in ({"resume_from": tmp_path / "run"}, {"finetune_from": tmp_path / "run"}):
        with pytest.raises(ValueError, match="logit_softcap=15.0"):
            prepare(TINY, small_text, **kwargs)
    with pytest.raises(ValueError, match="logit_softcap=15.0"):
        load_checkpoint(tmp_path / "run")
