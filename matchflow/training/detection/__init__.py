"""Training of the DeepSportLab detector: its data readers, target encoder and loss, the training loop and the
evaluation on labelled splits."""
