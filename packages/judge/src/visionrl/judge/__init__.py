"""Self-Improving VLM Judges Without Human Annotations (arXiv 2512.05145) on visionrl: `judge-train`, `judge-eval`."""
