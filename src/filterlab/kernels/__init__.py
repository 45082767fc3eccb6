"""Hand-designed kernels: the bank, true convolution (the one flip to Keras layout), similarity to learned filters."""
