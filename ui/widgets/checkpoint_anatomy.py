"""Lesson 10's Load card: the learner's checkpoint taken apart, its size predicted against the real file, then the
same weights saved as `safetensors` (and run again from that file alone) and squeezed to int8 (and run again).

"A 0.6M-parameter model is about 2.4 MB" is arithmetic a learner can do and then check against a file they made;
the table says by how much the file differs, and why. The safetensors copy shows what "loading a model" means (the
text and the logits match to the last bit); int8 goes the other way, a quarter of the bytes for nearly the same
loss. Everything comes from `engine.load.weights` and `engine.load.quantize` on a real run folder: the learner's run
(`params.run_key`) once it has ended with a ckpt.pt, else the course's reference model, with a radio when both
exist. Nothing heavy runs on a plain rerun: the anatomy is cached by the file's mtime, and the export and the int8
comparison run only when their button is pressed (then cached per checkpoint).
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

import plotly.graph_objects as go
import streamlit as st

from course.widgets import CheckpointAnatomyParams
from engine.load import checkpoint
from engine.load.quantize import QuantReport, compare_quantized
from engine.load.reference import REFERENCE_DIR
from engine.load.weights import CheckpointAnatomy, RoundTrip, anatomy, round_trip
from engine.number_format import file_size
from engine.runs.run_owner import check_owner
from ui import private_files, run_text, run_view, session
from ui.text import escape_md

# Exports go to the machine's temporary folder, never into the repository (data/reference is shipped content)
EXPORT_ROOT = Path(tempfile.gettempdir()) / "llm-course-safetensors"


@dataclass(frozen=True)
class Checkpoint:
    """A run folder with a ckpt.pt, and how to name it on screen."""

    run_dir: str
    label: str
    own: bool  # the learner trained it
    owner: str  # the learner looking: the engine refuses a folder that names someone else (engine.runs.run_owner)

    @property
    def path(self) -> Path:
        return Path(self.run_dir) / checkpoint.CKPT

    @property
    def stamp(self) -> float:
        """The file's mtime: every cache below is keyed by it, so a retrained run is read afresh."""
        try:
            return self.path.stat().st_mtime
        except OSError:
            return 0.0


def checkpoints(learner_id: int, run_key: str) -> list[Checkpoint]:
    """The checkpoints this learner can open, their own first: their run `run_key` once it has ended with a
    ckpt.pt, and always the reference model (when its folder is there)."""
    out = []
    run = run_view.load(learner_id, run_key)
    if run is not None and not run.active and (Path(run.run_dir) / checkpoint.CKPT).exists():
        steps = f" ({run.checkpoint_step:,} steps)" if run.checkpoint_step is not None else ""
        out.append(Checkpoint(run.run_dir, f"Your run from lesson 7{steps}", own=True, owner=str(learner_id)))
    if (REFERENCE_DIR / checkpoint.CKPT).exists():
        ref_steps = checkpoint.list_timeline(REFERENCE_DIR)
        steps = f" ({ref_steps[-1]['step']:,} steps)" if ref_steps else ""
        out.append(Checkpoint(str(REFERENCE_DIR), f"The course's reference model{steps}", own=False,
                              owner=str(learner_id)))
    return out


def _pick(options: list[Checkpoint], key: str, training: bool) -> Checkpoint:
    if len(options) == 1:
        if not options[0].own:
            then = ("Your own run is still training: once it ends, you can open its file here." if training else
                    "Train your own in lesson 7 and you can open its file here.")
            st.caption(f"Showing **{options[0].label.lower()}**: a real run of this course's engine. {then}")
        return options[0]
    labels = [c.label for c in options]
    chosen = st.radio("Checkpoint to open", labels, key=f"{key}-source", horizontal=True)
    return options[labels.index(chosen)]


# ---------------------------------------------------------------- cached engine calls (keyed by file mtime)


@st.cache_data(max_entries=8, show_spinner=False)
def _anatomy(run_dir: str, stamp: float) -> CheckpointAnatomy:
    return anatomy(run_dir)


def export_path(run_dir: str, stamp: float) -> Path:
    """Where this checkpoint's .safetensors goes: a temporary folder named by the run folder and file version.

    >>> export_path("/runs/abc", 12.0).name
    'abc.safetensors'
    """
    tag = hashlib.sha1(f"{run_dir}|{stamp}".encode()).hexdigest()[:12]
    return EXPORT_ROOT / tag / f"{Path(run_dir).name}.safetensors"


@st.cache_data(max_entries=8, show_spinner=False)
def _round_trip(run_dir: str, stamp: float, owner: str) -> RoundTrip:
    return round_trip(run_dir, export_path(run_dir, stamp), owner=owner)


@st.cache_data(max_entries=4, show_spinner=False)
def _quantized(run_dir: str, stamp: float, text_id: str, _text: str) -> QuantReport:
    """Quantise and measure once per checkpoint version and validation text (`_text` is named by `text_id`, so
    a megabyte of text is not hashed on every call)."""
    return compare_quantized(run_dir, _text)


def validation_text(learner_id: int, source: Checkpoint) -> tuple[str, str, str] | None:
    """(text id, text, how to name it) for measuring a checkpoint's loss: the corpus it trained on
    (ui.run_text.trained_text), or None when no text this course knows can be read by its tokenizer."""
    return run_text.trained_text(learner_id, source.run_dir, source.own)


# ---------------------------------------------------------------- drawing


def size_rows(a: CheckpointAnatomy) -> list[dict[str, object]]:
    """The table under the chart: each predicted size (parameters x bytes per parameter), then what the file
    really holds."""
    rows: list[dict[str, object]] = [
        {"what": f"The weights at {p.format} (predicted)",
         "worked out as": f"{a.parameters:,} × {p.bytes_per_param:g} byte{'' if p.bytes_per_param == 1 else 's'}",
         "bytes": p.bytes,
         "size": file_size(p.bytes)} for p in a.predictions]
    rows.append({"what": f"The weights as stored in {Path(a.path).name} ({a.weights_dtype})",
                 "worked out as": "measured in the file", "bytes": a.weights_bytes,
                 "size": file_size(a.weights_bytes)})
    rows.append({"what": f"The whole {Path(a.path).name}", "worked out as": "the file on disk",
                 "bytes": a.file_bytes, "size": file_size(a.file_bytes)})
    return rows


def size_chart(a: CheckpointAnatomy) -> go.Figure:
    """Predicted sizes beside the real file, the file's bar split into weights, optimizer state and the rest."""
    names = [f"{p.format}<br>predicted" for p in a.predictions]
    fig = go.Figure()
    fig.add_bar(x=names, y=[p.bytes for p in a.predictions], name="weights (predicted)",
                hovertemplate="%{x}: %{y:,} bytes<extra></extra>")
    optimizer = sum(p.bytes for p in a.parts if p.key == "optimizers")
    rest = max(a.file_bytes - a.weights_bytes - optimizer, 0)
    real = f"{Path(a.path).name}<br>(real)"
    fig.add_bar(x=[real], y=[a.weights_bytes], name=f"weights as stored ({a.weights_dtype})",
                hovertemplate="%{y:,} bytes<extra>weights</extra>")
    if optimizer:
        fig.add_bar(x=[real], y=[optimizer], name="optimizer state",
                    hovertemplate="%{y:,} bytes<extra>optimizer state</extra>")
    fig.add_bar(x=[real], y=[rest], name="everything else (record, tokenizer, configs, zip)",
                hovertemplate="%{y:,} bytes<extra>everything else</extra>")
    fig.update_layout(barmode="stack", height=380, margin={"t": 30, "b": 10},
                      legend={"orientation": "h", "y": -0.25, "traceorder": "normal"})
    fig.update_xaxes(title_text="format")
    fig.update_yaxes(title_text="size (bytes)")
    return fig


def _anatomy_section(a: CheckpointAnatomy, source: Checkpoint, key: str) -> None:
    whose = "Your run's" if source.own else "The reference model's"
    c1, c2, c3 = st.columns(3)
    c1.metric("Parameters", f"{a.parameters:,}", help="Every number the model learned, the shared "
              "embedding/output matrix counted once.")
    c2.metric("Predicted at fp32", file_size(a.predictions[0].bytes),
              help=f"{a.parameters:,} parameters × 4 bytes each.")
    c3.metric(f"The real {Path(a.path).name}", file_size(a.file_bytes))
    st.markdown(f"{whose} **{a.parameters:,} parameters** should weigh **{file_size(a.predictions[0].bytes)}** "
                f"at 4 bytes each. Its file weighs **{file_size(a.file_bytes)}**: the weights are stored as "
                f"**{a.weights_dtype}** ({file_size(a.weights_bytes)}), and the file holds more than weights.")
    st.plotly_chart(size_chart(a), key=f"{key}-sizes", config={"displayModeBar": False})
    st.dataframe(size_rows(a), hide_index=True, width="stretch",
                 column_config={"bytes": st.column_config.NumberColumn("bytes", format="localized")})
    st.markdown("**What else the file holds**, entry by entry (each measured as the bytes it adds to the file):")
    st.dataframe([{"what": p.meaning, "entry": p.key, "size": file_size(p.bytes)} for p in a.parts if p.bytes > 0],
                 hide_index=True, width="stretch",
                 column_config={"what": st.column_config.TextColumn("What it is", width="large")})
    if not any(p.key == "optimizers" for p in a.parts):
        st.caption("No optimizer state in this file: it is needed only to go on training, so it was left out when "
                   "the model was shipped.")
    with st.expander(f"The {len(a.tensors)} weight tensors: name, shape, parameters"):
        tied = [t for t in a.tensors if t.tied_to]
        if tied:
            st.markdown(" ".join(f"`{t.name}` is the same matrix as `{t.tied_to}` (tied): stored once, counted "
                                 "once." for t in tied))
        st.dataframe([{"name": t.name, "shape": " × ".join(map(str, t.shape)), "dtype": t.dtype,
                       "parameters": t.parameters, "tied to": t.tied_to or ""} for t in a.tensors],
                     hide_index=True, width="stretch")


def _pressed_for(run_dir: str, label: str, key: str, icon: str) -> bool:
    """A button whose press is remembered for this run: later reruns keep its result on screen, and choosing
    another model hides it until the button is pressed again (the work is slow, so it waits for the press)."""
    flag = f"{key}-pressed"
    if st.button(label, key=key, icon=icon):
        st.session_state[flag] = run_dir
    return st.session_state.get(flag) == run_dir


def _round_trip_section(source: Checkpoint, key: str) -> None:
    st.markdown("#### Save as safetensors, load it back, run it")
    st.markdown("`safetensors` is how models are shared: a small header naming each tensor, then the raw numbers. "
                "Loading it only copies bytes, so unlike a pickled `.pt` file it cannot run hidden code.")
    if not _pressed_for(source.run_dir, "Save as safetensors", f"{key}-save", ":material/save:"):
        return
    with st.spinner("Exporting, loading back and generating from both..."):
        rt = _round_trip(source.run_dir, source.stamp, source.owner)
    path = Path(rt.path)
    if not path.exists():  # the temporary folder was cleared since: do it again
        _round_trip.clear()
        rt = _round_trip(source.run_dir, source.stamp, source.owner)
        path = Path(rt.path)
    c1, c2, c3 = st.columns(3)
    c1.metric(f"{path.name}", file_size(rt.file_bytes))
    c2.metric("ckpt.pt", file_size(rt.ckpt_bytes))
    c3.metric("Largest logit difference", f"{rt.max_logit_difference:g}")
    st.caption(f"{path.name} holds the weights alone, in float32 ({rt.parameters:,} × 4 bytes = "
               f"{file_size(rt.parameters * 4)}, plus a small header naming them); ckpt.pt holds them as the run "
               "stored them, with everything else listed above.")
    if rt.identical:
        st.success(f"**identical**: the model loaded from the .safetensors file alone writes the same text, and its "
                   f"next-token logits differ by {rt.max_logit_difference:g}. The file holds "
                   f"{len(rt.stored_names)} tensors: the tied matrix once.", icon=":material/check_circle:")
    else:
        st.warning(f"Not identical: the logits differ by up to {rt.max_logit_difference:g}.")
    left, right = st.columns(2)
    left.caption("From ckpt.pt")
    left.code(rt.original_text, language=None, wrap_lines=True)
    right.caption(f"From {path.name}")
    right.code(rt.loaded_text, language=None, wrap_lines=True)
    private_files.download_button(f"Download {path.name} ({file_size(rt.file_bytes)})",
                                  data=lambda: _weights_file(source, path), file_name=path.name,
                                  mime="application/octet-stream", key=f"{key}-download",
                                  icon=":material/download:", on_click="ignore")


def _weights_file(source: Checkpoint, path: Path) -> bytes:
    """The exported file's bytes, read on the press (not on every rerun), for the learner the folder is theirs."""
    check_owner(source.run_dir, source.owner, "download its weights")
    return path.read_bytes()


def loss_change(before: float, after: float) -> str:
    """The change as the page shows it, to 4 decimals like the losses; a change that rounds away is "the same"
    (not "-0.0000").

    >>> loss_change(1.63036, 1.63049), loss_change(2.49241, 2.49240)
    ('+0.0001', 'the same to 4 decimals')
    """
    if f"{before:.4f}" == f"{after:.4f}":
        return "the same to 4 decimals"
    return f"{after - before:+.4f}"


def quant_rows(q: QuantReport) -> list[dict[str, object]]:
    """The side-by-side table: float32 against int8, in memory, on disk and in validation loss."""
    return [
        {"version": "float32 (original)", "in memory": file_size(q.model_fp32_bytes),
         "as a .safetensors file": file_size(q.fp32_file_bytes), "validation loss": round(q.val_loss_fp32, 4)},
        {"version": "int8", "in memory": file_size(q.model_int8_bytes),
         "as a .safetensors file": file_size(q.int8_file_bytes), "validation loss": round(q.val_loss_int8, 4)},
    ]


def _quant_section(learner_id: int, source: Checkpoint, key: str) -> None:
    st.markdown("#### Quantise to int8")
    st.markdown("Each row of every weight matrix in the blocks gets one scale, and its numbers become whole numbers "
                "from -127 to 127: one byte each instead of four. The model then runs again and is measured on the "
                "same validation text as before.")
    if not _pressed_for(source.run_dir, "Quantise to int8", f"{key}-quantise", ":material/compress:"):
        return
    found = validation_text(learner_id, source)
    if found is None:
        st.info("This run's tokenizer cannot read any text the course knows, so its loss cannot be measured here.")
        return
    text_id, text, text_name = found
    with st.spinner(f"Quantising, then measuring both models on {text_name}..."):
        q = _quantized(source.run_dir, source.stamp, text_id, text)
    c1, c2, c3 = st.columns(3)
    c1.metric("Size in memory", file_size(q.model_int8_bytes),
              delta=f"{q.model_int8_bytes / q.model_fp32_bytes:.0%} of float32", delta_color="off",
              delta_arrow="off")
    c2.metric("Validation loss, float32", f"{q.val_loss_fp32:.4f}")
    change = loss_change(q.val_loss_fp32, q.val_loss_int8)
    c3.metric("Validation loss, int8", f"{q.val_loss_int8:.4f}", delta=change,
              delta_color="inverse" if change.startswith(("+", "-")) else "off",
              delta_arrow="auto" if change.startswith(("+", "-")) else "off")
    st.dataframe(quant_rows(q), hide_index=True, width="stretch")
    worst = max(r.max_error for r in q.layers)
    st.markdown(f"Loss measured on the same {q.val_batches} batches of {escape_md(text_name)} for both. "
                f"{len(q.layers)} matrices became int8 ({file_size(q.linear_fp32_bytes)} → "
                f"{file_size(q.linear_int8_bytes)}); {len(q.kept_float)} tensors stayed float32 (the embeddings "
                f"and LayerNorms). Rounding moved no weight by more than **{worst:.3g}**: each one stays within half a "
                "step of its row's grid.")
    left, right = st.columns(2)
    left.caption("float32 writes")
    left.code(q.text_fp32, language=None, wrap_lines=True)
    right.caption("int8 writes")
    right.code(q.text_int8, language=None, wrap_lines=True)


# The engine functions at this demo's heart, shown under it by ui/code_view.py (read from engine/ when opened).
ENGINE_CODE = ("engine.load.weights:round_trip", "engine.load.quantize:quantize_int8")


def render(params: CheckpointAnatomyParams, key: str) -> bool:
    """Returns True once a checkpoint is drawn (the learner's or the reference model's), False with nothing to
    open."""
    me = session.learner()
    options = checkpoints(me.id, params.run_key)
    if not options:
        st.info("There is no checkpoint to open yet: train your model in lesson 7 first.",
                icon=":material/save:")
        return False
    run = run_view.load(me.id, params.run_key)
    source = _pick(options, key, training=run is not None and run.active)
    a = _anatomy(source.run_dir, source.stamp)
    _anatomy_section(a, source, key)
    _round_trip_section(source, key)
    _quant_section(me.id, source, key)
    return True
