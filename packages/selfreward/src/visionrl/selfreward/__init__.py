"""Vision-SR1 (arXiv 2508.19652): self-rewarding VLM training via reasoning decomposition.

Core's recipe contract: `config` (flags, presets), `prompts` and `rewards` (verbatim from the paper's code),
`modes` (reward modes and their advantages), `method` (the core `Recipe`), `train` and `evaluate` (onto
core's runners), `cli` (console scripts `selfreward-train`, `selfreward-eval`).
"""
