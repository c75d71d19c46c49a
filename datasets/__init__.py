"""Datasets: keypoint layouts, SynthSign, the registry of real datasets."""
