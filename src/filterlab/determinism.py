"""Seeds and op determinism for every stage that runs TensorFlow; reads and writes nothing.

Call `configure` before building any model: TensorFlow fixes its thread pools at the
first op, and a seed set after layers are built does not reach their initialisers.
"""


def configure(seed: int, threads: int = 0) -> None:
    """One seed for Python, NumPy and TensorFlow; deterministic ops; no XLA auto-clustering.

    `threads` pins both intra- and inter-op pools (0 leaves TensorFlow's default),
    because results and timings are only comparable at a fixed thread count.
    """
    import keras
    import tensorflow as tf

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    # XLA's auto-clustering may fuse ops differently from run to run.
    tf.config.optimizer.set_jit(False)
