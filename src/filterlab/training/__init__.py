"""Keras models, the one fit-and-evaluate loop, the frozen-kernel baselines, and the model folder contract."""
