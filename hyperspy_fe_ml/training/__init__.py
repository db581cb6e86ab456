"""Training: mixtures and augmentation (dataset), fitting, evaluation."""
