"""Seeds and op determinism for every stage that runs TensorFlow; reads and writes nothing.

Call `configure` before building any model: TensorFlow fixes its thread pools at the
first op, and a seed set after layers are built does not reach their initialisers.
"""


def configure(seed: int, threads: int = 0) -> None:
    """One seed for Python, NumPy and TensorFlow; deterministic ops; no XLA auto-clustering.

    `threads` pins both intra- and inter-op pools (0 leaves TensorFlow's default),
    because results and timings are only comparable at a fixed thread count.
    """
    import warnings

    import keras
    import tensorflow as tf

    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:
            # Only a process that already ran ops gets here (a test session, a notebook):
            # its pools are fixed; seeds and op determinism below still apply.
            warnings.warn(
                f"TensorFlow thread pools already started; keeping them instead of {threads} threads",
                RuntimeWarning,
                stacklevel=2,
            )
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    # XLA's auto-clustering may fuse ops differently from run to run.
    tf.config.optimizer.set_jit(False)
