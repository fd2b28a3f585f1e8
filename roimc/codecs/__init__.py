"""Codecs by mode. Each turns coded samples into container chunks and back."""
