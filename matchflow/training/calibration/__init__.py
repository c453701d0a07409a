"""Training of the learned calibration pieces (CCBV zone segmenter, siamese retriever, STN refiner) on renders."""
