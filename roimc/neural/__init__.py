"""Neural lossy coding: the autoencoder, its training, the latent streams (torch is imported lazily)."""
