"""Iterative-SPO training of VLMs on pair datasets (the Vision-Zero method, `reference/method.md`).

The pure core has one module per job and no model code: `config` (the game's, rewards', scheduler's and
loss's options), `game` (seats, roles, images and speaking orders of one "Who is the spy?" game), `prompts`
(chat messages for clue, vote and judge turns), `parsing` (the last `\\boxed{}` of a reply), `rewards` (zero-sum
clue rewards, role baselines, verifiable vote rewards, group normalisation), `scheduler` (switching between
the clue and decision stages) and `loss` (per-token PPO-clip with a k3 KL to a frozen reference).
"""
