"""LLaVA-Critic-R1 (arXiv 2509.00676): pairwise critic data as verifiable GRPO; the critic is also a policy.

Core's recipe contract: `config` (flags, presets), `prompts` and `rewards` (verbatim from the official code),
`data` (pairs → critic rows), `method` (the core `Recipe`), `train` (onto core's runner), `judging`,
`policy`, `selfcritic` and `reports` (the three reports of `evaluate`), `cli` (console scripts
`critic-train`, `critic-eval`).
"""
