"""Detection: the DeepSportLab network (ball, player masks, poses), its decoder, the detector that runs it on
frames, and the detection metrics."""
