"""Small LightningModules: GRPO, SFT, reward model (Bradley-Terry), DPO; and their data modules."""
