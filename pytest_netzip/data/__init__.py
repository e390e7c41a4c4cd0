"""Inputs, targets and batches, the space inputs lie in, the runs of a model, and its outputs."""
