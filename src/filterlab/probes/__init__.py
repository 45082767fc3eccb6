"""Three small experiments on how a filter gets its numbers: one image, the 1-D peak detector, kernel recovery."""
