"""Models the inference engine can run: nnU-Net v2 folders, TorchScript files, the built-in U-Net.

Submodules import torch; import them only on the run side.
"""
