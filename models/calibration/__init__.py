"""Camera calibration: a pitch homography per frame (segmentation, retrieval in a dictionary of views,
refinement, native-resolution fit), the learned CCBV pieces and the calibration metric."""
