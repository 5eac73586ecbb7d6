"""Sample G completions per prompt and keep what is needed to score them again."""

from visionrl.core.rollout.rollout import (
                                          ROLLOUT_ENGINES,
                                          Rollout,
                                          SamplingParams,
                                          concat_rollouts,
                                          generate_rollout,
                                          generate_texts,
)

__all__ = ["ROLLOUT_ENGINES", "Rollout", "SamplingParams", "concat_rollouts", "generate_rollout", "generate_texts"]
