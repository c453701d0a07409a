"""Training and evaluation of the models, apart from inference (as torchvision keeps ``references/``): one
package per model family. Inference code never imports these modules; they may import the renderer."""
