"""worldmodels: tiny, real-time game world models trained with Hydra + Lightning and played in the browser."""

import warnings

__version__ = "0.1.0"

# Lightning calls a torch pytree API that torch 2.13 deprecates, once per fit; nothing a user can act on.
warnings.filterwarnings("ignore", message=".*LeafSpec.*")
# We export with the TorchScript exporter on purpose (fast, and it handles the KV-cache graphs); torch announces its
# deprecation on every call.
warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
