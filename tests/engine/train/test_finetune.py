"""engine.train.finetune and the fine-tuning path through prepare, the loop, the job, the run manager and a worker:
a model trained on Shakespeare goes on learning from Python code, its loss on both corpora recorded."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from engine.extract.corpus import load_corpus
from engine.load.checkpoint import read_checkpoint
from engine.load.reference import REFERENCE_DIR
from engine.runs.manager import RunManager
from engine.runs.snapshot import snapshot_from_folder
from engine.train.config import PRESETS
from engine.train.finetune import finetune_config, fit_text, loss_shift, replacement_for
from engine.train.job import run_job, save_run
from engine.train.loop import train_loop
from engine.train.prepare import prepare
from engine.transform.tokenization import CharTokenizer, train_bpe

TINY = PRESETS["tiny"]
FINETUNE = finetune_config(replace(TINY, max_steps=40, eval_interval=10, sample_interval=40), lr_scale=0.5)


@pytest.fixture(scope="module")
def code_text() -> str:
    """30,000 characters of the bundled Python: 27,000 to fine-tune on, 3,000 to validate."""
    return load_corpus("python_stdlib")[:30_000]


@pytest.fixture(scope="module")
def source_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model trained on the first 20,000 characters of Shakespeare (300 steps, a few seconds: long enough
    to know Shakespeare far better than code), saved as a run folder."""
    text = (Path(__file__).resolve().parents[3] / "data" / "tinyshakespeare.txt").read_text(encoding="utf-8")[:20_000]
    run_dir = tmp_path_factory.mktemp("source") / "run"
    status, _, _ = run_job(replace(TINY, max_steps=300, eval_interval=100), text, None, None, run_dir)
    assert status == "finished"
    return run_dir


# ---- fitting a text to a fixed tokenizer ----------------------------------------------------------------


def test_unknown_characters_are_replaced_and_counted() -> None:
    tok = CharTokenizer.from_text("abcdef ?\n")
    fitted = fit_text("def f(x_1):\n    return {x_1}\n", tok)
    # ( x _ 1 ) : r t u n { x _ 1 }: every character the vocabulary lacks, counted one by one
    missing = {"(": 1, ")": 1, "_": 2, "1": 2, ":": 1, "x": 2, "r": 2, "t": 1, "u": 1, "n": 1, "{": 1, "}": 1}
    assert fitted.unknown == dict(sorted(missing.items(), key=lambda kv: (-kv[1], kv[0])))
    assert fitted.replaced == sum(missing.values()) == 16 and fitted.total == 29
    assert fitted.text == "def f??????\n    ?e???? ?????\n"
    assert len(fitted.text) == fitted.total  # replaced, not dropped: the text keeps its shape
    assert tok.encode(fitted.text)  # and now encodes
    assert fitted.fraction == pytest.approx(16 / 29)
    assert "16 of the 29 characters" in fitted.sentence() and '"?"' in fitted.sentence()
    report = fitted.report()
    assert report["replaced_chars"] == 16 and report["distinct_unknown"] == 12 and report["replacement"] == "?"
    json.dumps(report)  # plain data for the run folder and the snapshot


def test_the_replacement_is_one_the_vocabulary_has() -> None:
    assert replacement_for(CharTokenizer.from_text("ab?")) == "?"
    assert replacement_for(CharTokenizer.from_text("ab ")) == " "
    assert replacement_for(CharTokenizer.from_text("ba")) == "a"  # neither: its first token
    assert fit_text("abc", CharTokenizer.from_text("ab")).text == "aba"


def test_a_byte_level_bpe_covers_every_character(code_text: str) -> None:
    bpe = train_bpe("To be, or not to be: that is the question.", vocab_size=300)
    fitted = fit_text(code_text[:3000] + " ±ß🙂", bpe)
    assert fitted.replaced == 0 and fitted.text == code_text[:3000] + " ±ß🙂" and fitted.replacement is None
    assert fitted.sentence() == "Every character of the new text is in the model's vocabulary."


# ---- the fine-tuning run -------------------------------------------------------------------------------


def test_prepare_takes_the_weights_and_tokenizer_but_not_the_run(source_run: Path, code_text: str) -> None:
    source = read_checkpoint(source_run)
    state = prepare(FINETUNE.with_changes(n_layer=5), code_text, finetune_from=source_run)
    assert state.step == 0 and state.metrics == [] and state.tokens_before == 0  # its own run, from step 0
    assert state.tokenizer.to_dict() == source["tokenizer"]
    assert state.config.model.n_layer == TINY.model.n_layer  # the checkpoint's shape wins
    for name, tensor in state.model.state_dict().items():
        assert torch.equal(tensor, source["model"][name]), name
    assert all(not opt.state for opt in state.optimizers)  # a fresh optimizer: no moments yet
    assert state.optimizers[0].param_groups[0]["base_lr"] == pytest.approx(FINETUNE.lr)
    expected = fit_text(code_text, state.tokenizer)
    assert expected.replaced > 1000  # Shakespeare's characters lack much of code's punctuation
    assert state.finetune == {"from": str(source_run), "from_step": source["step"], **expected.report()}
    assert expected.sentence() in state.notes


def test_finetuning_lowers_the_new_loss_and_records_the_old(source_run: Path, code_text: str,
                                                            small_text: str) -> None:
    state = prepare(FINETUNE, code_text, finetune_from=source_run, original_text=small_text)
    records: list[dict] = []
    outcome = train_loop(state, on_record=records.append)
    assert outcome.status == "finished" and state.step == FINETUNE.max_steps
    evaluated = [r for r in records if r["val_loss"] is not None]
    assert [r["step"] for r in evaluated] == [0, 10, 20, 30, 40]
    assert all(isinstance(r.get("val_loss_original"), float) for r in evaluated)  # at every evaluation
    assert all("val_loss_original" not in r for r in records if r["val_loss"] is None)
    shift = loss_shift(records)
    assert shift.new_after < shift.new_before - 0.3  # it learned the new text
    assert shift.original_before < shift.new_before  # it knew the old text far better to begin with
    summary = outcome.summary
    assert summary["start_loss_original"] == shift.original_before
    assert summary["final_val_loss_original"] == shift.original_after
    assert records[0]["sample"] and records[-1]["sample"]  # before and after, from the same prompt
    assert records[0]["notes"] and "characters of the new text" in records[0]["notes"][0]


def test_a_finetuned_run_resumes_as_itself(source_run: Path, code_text: str, small_text: str,
                                           tmp_path: Path) -> None:
    """Resuming a fine-tune (stopped part-way) continues its own run on the same fitted text."""
    config = replace(FINETUNE, max_steps=20)
    state = prepare(config, code_text, finetune_from=source_run, original_text=small_text)
    stop = threading.Event()
    outcome = train_loop(state, on_record=lambda r: r["step"] == 8 and stop.set(), stop_event=stop)
    save_run(state, outcome, tmp_path)
    resumed = prepare(config, code_text, resume_from=tmp_path, original_text=small_text)
    assert resumed.step == 9 and resumed.finetune == state.finetune
    assert all(opt.state for opt in resumed.optimizers)  # its own optimizer's moments, this time
    records: list[dict] = []
    train_loop(resumed, on_record=records.append)
    assert records[0]["step"] == 10 and records[-1]["step"] == 20 and records[-1]["val_loss_original"] > 0


def test_resume_and_finetune_are_not_both_allowed(source_run: Path, code_text: str) -> None:
    with pytest.raises(ValueError, match="not both"):
        prepare(FINETUNE, code_text, resume_from=source_run, finetune_from=source_run)
    with pytest.raises(ValueError, match="not both"):
        RunManager(workers="thread").submit(FINETUNE, code_text, resume_from=source_run, finetune_from=source_run)


@pytest.mark.parametrize("workers", ["thread", "process"])
def test_a_finetune_is_a_queued_run_like_any_other(workers: str, source_run: Path, code_text: str,
                                                   small_text: str, tmp_path: Path) -> None:
    manager = RunManager(max_concurrent=1, runs_root=tmp_path / "runs", workers=workers)
    run_id = manager.submit(replace(FINETUNE, max_steps=20), code_text, finetune_from=source_run,
                            original_text=small_text, label="fine-tune on code")
    snap = manager.wait(run_id, timeout=60)
    assert snap.status == "finished", snap.message
    assert snap.finetune is not None and snap.finetune["from"] == str(source_run)
    assert snap.finetune["replaced_chars"] == fit_text(code_text, CharTokenizer.from_text(small_text)).replaced
    assert [s for s, _ in snap.evals_original] == [s for s, _ in snap.evals] == [0, 10, 20]
    assert snap.samples[0][0] == 0 and snap.samples[-1][0] == 20
    assert snap.summary["final_val_loss_original"] == snap.evals_original[-1][1]

    saved = snapshot_from_folder(snap.run_dir)  # after a server restart: the same
    assert saved.finetune == snap.finetune and saved.evals_original == snap.evals_original
    assert saved.summary["start_loss_original"] == snap.evals_original[0][1]
    plain = snapshot_from_folder(source_run)  # a run that is no fine-tune, or an older folder
    assert plain.finetune is None and plain.evals_original == [] and plain.evals


def test_finetuning_the_reference_model(small_text: str, code_text: str) -> None:
    """The shipped reference model (data/reference/, weights in float16, no optimizer state) fine-tunes too."""
    reference = read_checkpoint(REFERENCE_DIR)
    config = finetune_config(replace(PRESETS["lesson"], max_steps=6, time_budget=None, batch_size=8, eval_interval=3,
                                     eval_batches=2, final_eval_batches=2, sample_interval=6, sample_tokens=16,
                                     dtype="float32", threads=1, compile=False))
    state = prepare(config, code_text, finetune_from=REFERENCE_DIR, original_text=small_text)
    assert state.config.model.n_embd == reference["train_config"]["n_embd"] and state.finetune["from_step"] == 750
    records: list[dict] = []
    outcome = train_loop(state, on_record=records.append)
    assert outcome.status == "finished"
    shift = loss_shift(records)
    assert shift.original_before < 2.3  # a trained model of Shakespeare (ln 65 = 4.17 untrained)
    assert shift.new_before > shift.original_before + 1.0  # and a poor one of code
    assert len([r for r in records if "val_loss_original" in r]) == 3  # steps 0, 3, 6


def test_the_command_line_fine_tunes(source_run: Path, code_text: str, small_text: str, tmp_path: Path) -> None:
    (tmp_path / "code.txt").write_text(code_text, encoding="utf-8")
    (tmp_path / "old.txt").write_text(small_text, encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "engine.train", "--preset", "tiny", "--max-steps", "10", "--corpus",
         str(tmp_path / "code.txt"), "--finetune-from", str(source_run), "--original-corpus",
         str(tmp_path / "old.txt"), "--out", str(tmp_path / "ft"), "--set", "lr=5e-3"],
        cwd=Path(__file__).resolve().parents[3], capture_output=True, text=True, timeout=120, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["status"] == "finished" and result["steps"] == 10 and result["val_loss_original"] > 0
    assert "characters of the new text" in out.stdout and "original " in out.stdout
    assert snapshot_from_folder(tmp_path / "ft").finetune["from"] == str(source_run)


def test_a_finetune_starts_from_the_saved_weights_its_first_losses_are_the_checkpoints(
        source_run: Path, code_text: str, small_text: str) -> None:
    """The fine-tune's step-0 losses, on the new text and on the original one, equal the saved model's
    own losses on the same validation batches: it really starts where the checkpoint left off."""
    from engine.load.checkpoint import load_checkpoint
    from engine.load.reference import validation_loss
    from engine.transform.data import TextDataset

    model, tokenizer, _, _ = load_checkpoint(source_run)
    on_code = validation_loss(model, TextDataset(fit_text(code_text, tokenizer).text, tokenizer), FINETUNE,
                              FINETUNE.eval_batches)
    on_original = validation_loss(model, TextDataset(small_text, tokenizer), FINETUNE, FINETUNE.eval_batches)
    state = prepare(FINETUNE, code_text, finetune_from=source_run, original_text=small_text)
    first: list[dict] = []
    train_loop(replace_budget(state), on_record=lambda r: first.append(r) if not first else None)
    assert first[0]["step"] == 0
    assert first[0]["val_loss"] == pytest.approx(on_code, abs=1e-5)
    assert first[0]["val_loss_original"] == pytest.approx(on_original, abs=1e-5)
    assert on_code > on_original  # and the saved model knew Shakespeare better than code


def replace_budget(state):
    """The same state, trained for one step only: the test needs the step-0 evaluation, not a whole run."""
    state.config = replace(state.config, max_steps=1)
    return state
