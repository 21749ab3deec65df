"""Iterative-SPO training of VLMs on pair datasets (the Vision-Zero method, `reference/method.md`).

The pure core has one module per job and no model code: `config` (the game's, rewards', scheduler's and
loss's options), `game` (seats, roles, images and speaking orders of one "Who is the spy?" game), `prompts`
(chat messages for clue, vote and judge turns), `parsing` (the last `\\boxed{}` of a reply), `rewards` (zero-sum
clue rewards, role baselines, verifiable vote rewards, group normalisation), `scheduler` (switching between
the clue and decision stages), `loss` (per-token PPO-clip with a k3 KL to a frozen reference) and `questions`
("what changed?" prompts and their exact-match reward).

The model side: `families` (what differs per model family), `model` (model and processor from a folder or Hub
id), `processor_files` (the starting model's processor files that checkpoints carry), `tiny_model` and
`tiny_configs` (offline tiny models of each family for tests and smoke runs), `rollout` (batched sampling and
log-probs), `selfplay` (every game of a step played turn by turn, one `generate` per turn), `pairs` (seeded data
order), `recipe` (YAML recipes and overrides), `trainer`, `checkpoint` and `metrics`. Evidence: `evaluation`,
`eval_stats` and `eval_report` (`vzero eval`), `export` (`vzero export-model`).
"""
