"""TDN Lens: page config and navigation only; the pages live in ``app/pages/``.

Run with ``streamlit run streamlit_app.py`` (settings in ``.streamlit/config.toml``, options in ``app/settings.py``).
"""

from tdn.contract import prepare_process

prepare_process()  # before the pages import torch

import streamlit as st  # noqa: E402

st.set_page_config(page_title="TDN Lens", page_icon=":material/center_focus_strong:", layout="wide")
page = st.navigation(
    [
        st.Page("app/pages/inspect.py", title="Inspect", icon=":material/movie_filter:", default=True),
        st.Page("app/pages/dataset.py", title="Dataset", icon=":material/dataset:"),
        st.Page("app/pages/ablations.py", title="Ablations", icon=":material/scatter_plot:"),
        st.Page("app/pages/model.py", title="Model", icon=":material/memory:"),
    ]
)
page.run()
