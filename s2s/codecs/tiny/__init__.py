"""s2s-tiny: our own small codec (model, quantiser, losses, training module, inference wrapper)."""
