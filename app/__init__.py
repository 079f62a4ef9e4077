"""TDN Lens Streamlit app: pages and widgets only.

* ``app.settings``  where checkpoints and sample clips come from (environment variables, never st.secrets)
* ``app.cached``    every call into ``tdn``/``analysis`` that costs time, behind ``st.cache_*``
* ``app.widgets``   sidebar controls shared by the pages, image strips, error reporting
* ``app.figures``   small Plotly figures of results the library already computed
* ``app.views``     the result sections of the Inspect page
* ``app/pages/``    one script per page, wired up by ``streamlit_app.py``

Nothing here computes a prediction, a map or a number itself: it asks ``tdn`` or ``analysis`` and draws.
"""
