"""What params.yaml may say: the loader, one dataclass per section, the image and model geometry."""
