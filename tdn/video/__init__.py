"""Video input: a file (or its bytes) becomes a :class:`Clip` — sampled frame indices, the exact pixels
the model sees and its input tensors. Knows nothing of the network (docs/architecture.md, "The house").

``clip`` holds the entry point (:func:`load_clip`); ``decode`` probes and reads frames through FFmpeg;
``isolation`` runs decoding in a crash-proof child process; ``sampling`` picks the frames; ``preprocess``
resizes, crops and normalises them as the official test does.
"""

from tdn.video.clip import CLIP_ERROR_KINDS, Clip, ClipError, load_clip, warm_up_isolation

__all__ = ["CLIP_ERROR_KINDS", "Clip", "ClipError", "load_clip", "warm_up_isolation"]
