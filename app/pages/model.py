"""Model: what the selected checkpoint is, what it costs (params, GMACs per stage, latency here), and the
library versions this server runs."""

from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path

import pandas as pd
import streamlit as st
import torch

from app import cached, figures
from app.settings import settings
from app.widgets import attempt, model_sidebar, warn_if_slow
from tdn import assets
from tdn.network.runtime import PASSIVE_WAIT, PRECISIONS, ThreadPolicy, busy_cores, get_precision, threads_now

MODEL_CARD = "MODEL_CARD.md"  # written beside the demo checkpoints by ``python -m tdn card``
DEMO_NAMES = (assets.DEMO_CHECKPOINT.name, assets.DEMO_TSN_CHECKPOINT.name)
PACKAGES = {
    "torch": "torch",
    "streamlit": "streamlit",
    "grad-cam": "grad-cam",
    "decord": "decord2",
    "PyAV": "av",
    "numpy": "numpy",
    "plotly": "plotly",
}


def versions() -> pd.DataFrame:
    rows = [("python", platform.python_version())]
    for label, dist in PACKAGES.items():
        try:
            rows.append((label, metadata.version(dist)))
        except metadata.PackageNotFoundError:
            rows.append((label, "not installed"))
    cuda = torch.version.cuda or "none"
    rows.append(("CUDA (torch build)", cuda))
    rows.append(("GPU", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"))
    return pd.DataFrame(rows, columns=["component", "version"])


def architecture(loaded: cached.LoadedModel) -> pd.DataFrame:
    info, cfg = loaded.info, loaded.info.config
    yes = {True: "yes", False: "no"}
    rows = [
        ("backbone", f"{cfg.arch}" + ("" if cfg.width == 1 else f", width ×{cfg.width:g}")),
        ("variant", cfg.variant),
        ("short-term TDM (S-TDM)", yes[cfg.s_tdm]),
        (
            "long-term TDM (L-TDM)",
            yes[cfg.l_tdm] + ("" if not cfg.l_tdm else f", reduction {cfg.ltdm_reduction}"),
        ),
        ("temporal shift", yes[cfg.shift]),
        ("segments", str(cfg.num_segments)),
        ("classes", f"{cfg.num_classes}" + (f" ({info.dataset})" if info.dataset else "")),
        ("input", f"{info.input_size}² crops of frames resized to {info.scale_size} (short side)"),
        ("precision", f"{get_precision()}: {PRECISIONS[get_precision()]}"),
        ("CPU threads", _threads_now(cached.threads_for(loaded.key, loaded))),
        ("checkpoint format", info.format),
        ("file", Path(info.path).name),
        ("sha256", info.sha256[:16] + "…"),
    ]
    return pd.DataFrame(rows, columns=["", "value"])


def _threads_now(policy: ThreadPolicy) -> str:
    busy = busy_cores()
    now = threads_now(policy)
    load = (
        "" if busy is None else f"; now {now} (other processes keep {busy:.1f} of {policy.cores} cores busy)"
    )
    how = (
        "OpenMP threads wait passively, so no cap is needed"
        if PASSIVE_WAIT
        else "capped at the free cores before every forward"
    )
    return f"{policy.reason}{load}; {how}"


def main() -> None:
    st.title("Model")
    loaded = model_sidebar(settings())
    info = loaded.info
    st.caption(f"**{loaded.summary}** · running on **{cached.device_label(loaded.device)}**")
    for warning in info.warnings:
        st.warning(f"{info.name}: {warning}", icon=":material/warning:")

    left, right = st.columns([2, 3], gap="large")
    with left:
        st.subheader("Architecture")
        st.table(architecture(loaded), hide_index=True, hide_header=True, border="horizontal")
        st.caption(
            "TDN = a ResNet on each segment's centre frame, plus the short-term TDM (RGB differences of the 5 "
            "frames around it, fused into the stem and res2) and the long-term TDM (feature differences between "
            "neighbouring segments, exciting every block of res3–res5)."
        )
    with right:
        st.subheader("Cost")
        warn_if_slow(loaded)
        profile = attempt(
            lambda: cached.profile(loaded.key, info.input_size, _loaded=loaded),
            "Counting multiply-adds and timing 5 forwards…",
            "Cannot profile this model",
        )
        cols = st.columns(4)
        cols[0].metric("Parameters", f"{profile.params / 1e6:.2f} M")
        cols[1].metric(
            "GMACs per view", f"{profile.gmacs:.3g}", help="Multiply-adds of one forward of one view."
        )
        cols[2].metric("of which L-TDM", f"{profile.ltdm_gmacs:.3g}")
        cols[3].metric(
            "Latency",
            "–" if profile.latency_ms is None else f"{profile.latency_ms:.0f} ms",
            help=f"Median of 5 forwards of one view {tuple(profile.input_shape)} on {profile.device}, measured on "
            "this server when the page first showed this model.",
        )
        st.plotly_chart(
            figures.stage_gmacs(profile.stages), key="stage_gmacs", config={"displayModeBar": False}
        )
        st.caption(
            f"GMACs per stage for one {info.input_size}² view of {loaded.model.num_segments} segments; blue = the "
            f"temporal difference modules' own stems. The temporal shift adds {profile.shift_gmacs:.3g} GMACs."
        )

    left, right = st.columns([2, 3], gap="large")
    with left:
        st.subheader("Software")
        st.table(versions(), hide_index=True, hide_header=True, border="horizontal")
    with right:
        st.subheader("Checkpoint")
        extra = {
            k: v for k, v in info.metadata.items() if k not in ("config", "class_names", "normalisation")
        }
        if extra:
            with st.expander("Metadata stored with the weights"):
                st.json(extra)
        with st.expander(f"Class names ({len(info.class_names)})"):
            st.dataframe(pd.DataFrame({"class": info.class_names}), height=240)
        card = Path(info.path).with_name(MODEL_CARD)
        if Path(info.path).name in DEMO_NAMES and card.is_file():
            with st.expander("Model card of the demo models"):
                st.markdown(card.read_text(encoding="utf-8"))
        with st.expander("Module tree"):
            st.code(str(loaded.model), language=None)


main()
