"""The command line: `python -m engine.train --preset lesson --time-budget 60 --out runs/NAME`.

The same job the course runs for a learner (engine.train.job.run_job: prepare, train, save), driven from a shell, and
under `torchrun --nproc_per_node=N -m engine.train ...` across processes or GPUs (DistributedDataParallel).
Prints progress, then one JSON line with the result; exits 1 when the run diverged or failed (under torchrun a
process that failed exits at once, without waiting for the others, and torchrun ends them). Ctrl-C or SIGTERM
stops the run the way the course's Stop button does (it finishes its step, saves, prints its result, exits 0); a
second Ctrl-C aborts at once, keeping only what the run saved while training.

The stages live in their own modules: engine.train.config (TrainConfig, PRESETS), engine.train.prepare (model,
data, optimizers), engine.train.schedule (learning rate, time budget), engine.train.distributed (torchrun),
engine.train.loop (the training step and the loop around it), engine.train.evaluate (validation loss, samples),
engine.train.job (one run start to saved folder). `--set KEY=VALUE` changes any setting of the flat config.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

import torch.distributed as dist

import paths
from engine.load import checkpoint
from engine.train.config import PRESETS, TrainConfig
from engine.train.distributed import setup_distributed
from engine.train.job import RankFailed, run_job
from engine.train.status import RunStatus


def _parse_value(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False, "none": None}.get(text.lower(), text)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The preset with --set KEY=VALUE (any setting of the flat config, the model's included) and the flags."""
    config = PRESETS[args.preset]
    overrides: dict[str, Any] = {}
    for item in args.set or []:
        key, _, value = item.partition("=")
        if key not in config.to_dict():
            raise SystemExit(f"--set: unknown setting {key!r}")
        overrides[key] = _parse_value(value)
    if args.time_budget is not None:
        overrides["time_budget"] = args.time_budget
        if args.max_steps is None:
            overrides["max_steps"] = None
    if args.max_steps is not None:
        overrides["max_steps"] = args.max_steps
        if args.time_budget is None:
            overrides["time_budget"] = None
    for name in ("device", "seed", "dtype"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    return config.with_changes(**overrides)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Train from the command line; the last line printed (rank 0) is one JSON object with the result."""
    parser = argparse.ArgumentParser(prog="python -m engine.train", description="Train a small GPT on a text file.")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="lesson")
    parser.add_argument("--corpus", type=Path, default=paths.DEFAULT_CORPUS, help="a UTF-8 text file")
    parser.add_argument("--time-budget", type=float, default=None, help="seconds of wall clock")
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default=None)
    parser.add_argument("--dtype", choices=["auto", "float32", "bfloat16"], default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None, help="run folder (default runs/PRESET-TIME)")
    parser.add_argument("--resume", type=Path, default=None, help="a run folder to continue from")
    parser.add_argument("--finetune-from", type=Path, default=None,
                        help="a run folder whose model to train further on --corpus (a new run: engine.train.finetune; "
                             "set a lower peak with --set lr=... --set muon_lr=...)")
    parser.add_argument("--original-corpus", type=Path, default=None,
                        help="with --finetune-from: the text that model learned, evaluated beside --corpus")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config field, e.g. lr=3e-3")
    parser.add_argument("--quiet", action="store_true", help="only the final JSON line")
    args = parser.parse_args(argv)

    config = config_from_args(args)
    dinfo = setup_distributed(config.device)
    say = print if (dinfo.is_main and not args.quiet) else (lambda *a, **k: None)
    text = args.corpus.read_text(encoding="utf-8")
    original = args.original_corpus.read_text(encoding="utf-8") if args.original_corpus else None
    out = args.out or args.resume or paths.runs_dir() / f"{args.preset}-{time.strftime('%Y%m%d-%H%M%S')}"

    def started(info: dict[str, Any]) -> None:
        say(f"{info['device_sentence']}; {info['params'] / 1e6:.2f}M parameters; "
            f"{info['train_tokens']:,} training tokens; vocab {info['vocab_size']}")

    def show(rec: dict[str, Any]) -> None:
        if rec.get("val_loss") is None and "sample" not in rec and rec["step"] % 50:
            return
        parts = [f"step {rec['step']:5d}", f"loss {rec['train_loss']:.3f}"]
        if rec.get("val_loss") is not None:
            parts.append(f"val {rec['val_loss']:.3f}")
        if rec.get("val_loss_original") is not None:
            parts.append(f"original {rec['val_loss_original']:.3f}")
        parts.append(f"lr {rec['lr']:.2e}")
        if rec.get("tokens_per_s"):
            parts.append(f"{rec['tokens_per_s'] / 1000:.1f}k tok/s")
        parts.append(f"{rec['elapsed_s']:.1f}s")
        if rec.get("eta_s") is not None:
            parts.append(f"eta {rec['eta_s']:.0f}s")
        say(" | ".join(parts))
        if "sample" in rec:
            say("    sample: " + repr(rec["sample"][:120]))

    stop_event, reason, restore = _stop_on_signals(say)
    failed = False
    try:
        status, message, summary = run_job(config, text, None, args.resume, out, stop_event=stop_event,
                                           stop_reason=lambda: reason[0], on_started=started, on_record=show,
                                           dist_info=dinfo, finetune_from=args.finetune_from,
                                           original_text=original)
    except RankFailed as err:  # under torchrun: the other processes may be waiting for this one in a collective
        status, message, summary, failed = err.status, err.message, err.summary, True
    finally:
        restore()
    if message:
        say(message)
    summary = summary or {}
    result = {
        "val_loss": summary.get("final_val_loss"),
        "train_loss": summary.get("final_train_loss"),
        "steps": summary.get("steps"),
        "tokens_per_s": summary.get("tokens_per_s"),
        "params": summary.get("params"),
        "device": summary.get("device"),
        "elapsed_s": summary.get("elapsed_s"),
        "status": status,
        "message": message,
        "run_dir": str(out),
    }
    if "final_val_loss_original" in summary:  # a fine-tune with its original corpus
        result["val_loss_original"] = summary["final_val_loss_original"]
    if dinfo.is_main:
        print(json.dumps(checkpoint.json_safe(result)), flush=True)
    if dinfo.enabled and not failed:  # (a failed job's group is left as it is: a barrier would wait forever)
        dist.barrier()
        dist.destroy_process_group()
    return result


def _stop_on_signals(say: Any) -> tuple[threading.Event, list[str | None], Any]:
    """An event that Ctrl-C (SIGINT) or SIGTERM sets, so the run stops after its step and saves rather than
    dying mid-step with nothing written; a second Ctrl-C raises KeyboardInterrupt as usual. Under torchrun every
    rank gets the signal, and the loop agrees on stopping across ranks. Returns the event, the stop reason
    (engine.train.job.stop_message's), and a function that puts the previous handlers back (main() may be called
    from Python, whose own Ctrl-C must work again afterwards)."""
    stop_event, reason = threading.Event(), [None]

    def handle(signum: int, frame: Any) -> None:
        if stop_event.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        say(f"{signal.Signals(signum).name}: stopping after this step and saving (Ctrl-C again to abort)")
        reason[0] = reason[0] or ("terminate" if signum == signal.SIGTERM else "user")
        stop_event.set()

    if threading.current_thread() is not threading.main_thread():  # signal handlers can only be set there
        return stop_event, reason, lambda: None
    before = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, old in before.items():
            signal.signal(sig, old)

    return stop_event, reason, restore


def exit_code(result: dict[str, Any]) -> int:
    """0 for a run that finished or was stopped; 1 when it diverged or failed (scripts and CI can tell)."""
    return 1 if result.get("status") in (RunStatus.DIVERGED, RunStatus.FAILED) else 0

