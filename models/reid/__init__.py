"""Re-identification: embeddings of person crops that are close for the same player and far for others.

- ``osnet.py``: OSNet with torchreid's architecture and parameter names (torchreid checkpoints load unchanged);
- ``sketch.py``: compact bilinear pooling by tensor sketch (count sketch and FFT);
- ``network.py``: the two-stream model (appearance and body parts, bilinear pooling, layer-wise heads);
- ``crops.py``: cutting, letterboxing and normalising person crops from frames;
- ``embedder.py``: the embedder that runs a model on crops (weights, device, batches);
- ``metric.py``: rank-1 and mAP with scoped matching, and the colour-histogram baseline.
"""
