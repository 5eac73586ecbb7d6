"""Robustness and chain-of-thought consistency of RL-finetuned VLMs (arXiv 2602.12506).

`benchmarks` (MCQ loaders) → `perturb` (prompt variants) → `suite` (generate, score, judge) with `scoring`
(letter distribution at `<answer>`), `judge` (think ≡ answer), `metrics` and `report`. The package follows
core's recipe contract: `config` (flags, presets), `method` (data, judge, rewards, evaluation as a core
`Recipe`), `train` and `evaluate` (onto core's runners), `cli` (console scripts `robustness-train`,
`robustness-eval`).
"""
