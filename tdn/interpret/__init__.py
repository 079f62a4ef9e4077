"""Interpretation: Grad-CAM heatmaps (``gradcam``), temporal-difference maps of every TDM stage
(``tdmaps``), faithfulness measures (``faithfulness``), model-against-model comparison (``comparison``)
and drawing/writing of overlays and explanation files (``render``). Uses the network and the clip;
every map is a NumPy array aligned with the frames the model saw.
"""
