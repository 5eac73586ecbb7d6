"""Vision-SR1 (arXiv 2508.19652): self-rewarding VLM training via reasoning decomposition."""
