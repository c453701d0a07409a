"""Training and evaluation data of the re-identification models: person crops with identities valid within an
action (a synthetic scene, or a SoccerNet action), the training loop and its checkpoints."""
