"""From mirrors to arrays: MNIST mirrors, the raw folder, the bundled subset, IDX files, the prepared npz."""
