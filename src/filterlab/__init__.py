"""filterlab: how does a convolutional filter get its numbers? Library code for the DVC stages.

Importing the package is cheap: TensorFlow, Keras, MLflow and matplotlib are imported
only by the modules that need them.
"""

__version__ = "0.1.0"
