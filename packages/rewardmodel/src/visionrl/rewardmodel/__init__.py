"""BaseReward (arXiv 2509.16127): a multimodal reward model as a plain Bradley-Terry scalar head on a VLM."""
