"""The network and everything about its weights: the TDN model and its blocks, the temporal modules
(S-TDM, L-TDM, shift), BatchNorm folding, FLOPs, checkpoints and label lists. Knows nothing of video
files: its input is the tensor layout of ``tdn.contract`` (docs/architecture.md).
"""
