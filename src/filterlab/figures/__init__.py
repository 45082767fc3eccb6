"""Matplotlib figures of kernels, filters and feature maps; arrays in, figures out."""
