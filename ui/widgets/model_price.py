"""Lesson 9: what training a published model would take, priced on a catalogue chip (`engine.cost.flops.price_run`).

The learner picks a model from data/published_models.yaml and a chip from data/accelerators.yaml, how many chips
train together, the utilisation they reach and the grid's carbon intensity. The table says, row by row, where each
figure comes from: the authors' report (with its source), or our estimate and how it was made. Where the authors
reported GPU-hours, energy or emissions, theirs stand beside the estimate, so the learner sees how close the back-of-
the-envelope sum gets. The last line brings it home: this machine, at the FLOP/s the learner's own lesson-7 run
achieved, would need so many years.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from course.widgets import ModelPriceParams
from engine.cost.catalogue import Accelerator, PublishedModel, accelerator, accelerators, published_models
from engine.cost.flops import RunPrice, price_run
from engine.number_format import dollars, duration, sci, si
from ui import run_compute, run_view, session
from ui.text import escape_md, markdown_table

MAIN_RUN = "main"  # the learner's lesson-7 run


@dataclass(frozen=True)
class Compute:
    """A model's training compute and where the figure comes from."""

    flops: float | None
    reported: bool


def training_compute(m: PublishedModel) -> Compute:
    """The reported training FLOPs, else 6 x parameters x tokens, else unknown (no token count published).

    >>> from engine.cost.catalogue import model
    >>> training_compute(model("gpt3_175b"))
    Compute(flops=3.14e+23, reported=True)
    >>> training_compute(model("llama2_70b"))
    Compute(flops=8.4e+23, reported=False)
    >>> training_compute(model("gpt2_1_5b")).flops is None
    True
    """
    if m.training_flops is not None:
        return Compute(m.training_flops, True)
    if m.training_tokens is not None:
        return Compute(6.0 * m.parameters * m.training_tokens, False)
    return Compute(None, False)


def precision_of(chip: Accelerator) -> str:
    """The peak a chip is priced at: its 16-bit tensor peak (how models are trained), else its FP32 one."""
    return "16bit" if chip.tflops_16bit is not None else "fp32"


def priceable() -> list[Accelerator]:
    return [a for a in accelerators() if a.tflops_16bit is not None or a.tflops_fp32 is not None]


MODEL_SOURCE, CHIP_SOURCE = "(1)", "(2)"  # the two sources listed under the table


def price_table(m: PublishedModel, chip: Accelerator, price: RunPrice | None, compute: Compute,
                grid_g_per_kwh: float) -> list[dict[str, str]]:
    """One row per figure: our estimate, the authors' report where there is one, and where each comes from
    (the model's source is (1), the chip's (2), both written out under the table)."""
    paper = f"reported by the authors {MODEL_SOURCE}"
    theirs = f"; theirs {MODEL_SOURCE}"
    none = "–"
    rows = [{"Figure": "Parameters", "Estimate": none, "Reported": sci(m.parameters), "Where from": paper},
            {"Figure": "Training tokens", "Estimate": none,
             "Reported": sci(m.training_tokens) if m.training_tokens is not None else "not published",
             "Where from": paper if m.training_tokens is not None else f"not published {MODEL_SOURCE}"}]
    if compute.flops is None:
        rows.append({"Figure": "Compute (FLOPs)", "Estimate": "cannot be estimated", "Reported": "not published",
                     "Where from": "6ND needs the number of tokens, which was not published"})
        return rows
    rows.append({"Figure": "Compute (FLOPs)",
                 "Estimate": none if compute.reported else sci(compute.flops),
                 "Reported": sci(compute.flops) if compute.reported else "not published",
                 "Where from": paper if compute.reported else
                 "our estimate: 6 × parameters × tokens (the authors did not publish their compute)"})
    assert price is not None
    peak = chip.tflops_16bit if precision_of(chip) == "16bit" else chip.tflops_fp32
    rows.append({"Figure": "GPU-hours (all chips)", "Estimate": f"{price.gpu_hours:,.0f}",
                 "Reported": f"{m.gpu_hours:,.0f}" if m.gpu_hours is not None else "not published",
                 "Where from": f"our estimate: compute ÷ ({si(peak * 1e12, 'FLOP/s')} peak {CHIP_SOURCE} × "
                               f"{price.utilisation:.0%} utilisation)" + (theirs if m.gpu_hours is not None else "")})
    rows.append({"Figure": "Wall-clock time", "Estimate": duration(price.wall_hours * 3600), "Reported": none,
                 "Where from": f"our estimate: GPU-hours ÷ {price.count:,} chips, as if they never waited for "
                               "each other"})
    rows.append({"Figure": "Cost (rented chips)", "Estimate": dollars(price.dollars), "Reported": none,
                 "Where from": (f"our estimate: GPU-hours × ${chip.price_usd_per_hour:,.2f} per chip-hour "
                                f"({chip.price_date} list price {CHIP_SOURCE})") if price.dollars is not None
                 else f"no price recorded for this chip {CHIP_SOURCE}"})
    rows.append({"Figure": "Energy (MWh)",
                 "Estimate": f"{price.energy_kwh / 1000:,.3g}" if price.energy_kwh is not None else "no power figure",
                 "Reported": f"{m.energy_mwh:,.4g}" if m.energy_mwh is not None else "not published",
                 "Where from": (f"our estimate: GPU-hours × {chip.power_w:,.0f} W per chip {CHIP_SOURCE}, the chips "
                                "alone (no cooling or servers)" if price.energy_kwh is not None
                                else f"no power figure for this chip {CHIP_SOURCE}")
                 + (theirs if m.energy_mwh is not None else "")})
    rows.append({"Figure": "CO₂ (tonnes)",
                 "Estimate": f"{price.co2_kg / 1000:,.3g}" if price.co2_kg is not None else "no power figure",
                 "Reported": f"{m.co2_tonnes:,.5g}" if m.co2_tonnes is not None else "not published",
                 "Where from": f"our estimate: energy × {grid_g_per_kwh:,.0f} g CO₂ per kWh (the grid you chose)"
                 + (theirs if m.co2_tonnes is not None else "")})
    return rows


def this_machine_line(flops: float, learner_id: int) -> str:
    """How long this machine would take at the FLOP/s the learner's lesson-7 run achieved (if they have one)."""
    run = run_view.load(learner_id, MAIN_RUN)
    rc = run_compute.compute(run) if run is not None else None
    if rc is None or not rc.achieved_flops_per_s:
        return ("Train a run on lesson 7's card **Train your model** and this line says how long this machine "
                "would need for the same compute.")
    years = run_compute.years_at(flops, rc.achieved_flops_per_s)
    return (f"**This machine**, at the {si(rc.achieved_flops_per_s, 'FLOP/s')} your lesson-7 run achieved, would "
            f"need **{years:,.0f} years** for the same compute.")


# The engine functions at this demo's heart, shown under it by ui/code_view.py (read from engine/ when opened).
ENGINE_CODE = ("engine.cost.flops:price_run",)


def render(params: ModelPriceParams, key: str) -> bool:
    me = session.learner()
    models = {m.id: m for m in published_models()}
    chips = {a.id: a for a in priceable()}
    left, right = st.columns(2)
    model_id = left.selectbox("Model", list(models), index=list(models).index(params.model),
                              format_func=lambda i: f"{models[i].name}, {models[i].year}", key=f"{key}-model")
    chip_ids = list(chips)
    chip_id = right.selectbox("Accelerator", chip_ids,
                              index=chip_ids.index(params.accelerator) if params.accelerator in chips else 0,
                              format_func=lambda i: chips[i].name, key=f"{key}-chip")
    count = left.number_input("Chips training together", 1, 100_000, params.count, step=64, key=f"{key}-count")
    utilisation = right.slider("Utilisation (share of the peak doing useful model arithmetic)", 0.05, 1.0,
                               max(0.05, float(params.utilisation)), step=0.05, format="%.2f", key=f"{key}-util")
    grid = st.slider("Grid carbon intensity (g CO₂ per kWh)", 0, 1500, int(round(params.grid_g_per_kwh)), step=10,
                     key=f"{key}-grid", help="Tens of grams for hydro or nuclear power, many hundreds for coal.")
    m, chip = models[model_id], accelerator(chip_id)
    compute = training_compute(m)
    price = None
    if compute.flops is not None:
        price = price_run(m.parameters, m.training_tokens or 0.0, chip, count=int(count), utilisation=utilisation,
                          grid_g_per_kwh=float(grid), flops=compute.flops, precision=precision_of(chip))
    st.markdown(markdown_table(price_table(m, chip, price, compute, float(grid))))
    st.caption(f"{MODEL_SOURCE} {escape_md(m.source)}")
    st.caption(f"{CHIP_SOURCE} {escape_md(chip.source)}")
    if m.note:
        st.caption(f"About {escape_md(m.name)}: {escape_md(m.note)}")
    if chip.note:
        st.caption(f"About the {escape_md(chip.name)}: {escape_md(chip.note)}")
    if precision_of(chip) == "fp32":
        st.caption(f"The {escape_md(chip.name)} has no published 16-bit peak: priced at its FP32 peak.")
    if compute.flops is not None:
        st.markdown(this_machine_line(compute.flops, me.id))
    return True
