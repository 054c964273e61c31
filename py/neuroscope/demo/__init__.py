"""The built-in demo model: a small GPT-2 trained by NeuroScope with known mechanisms.

``TransformerModel.from_huggingface("demo")`` loads the files in ``model/``
(config.json, model.safetensors, tokenizer.json) with no network. The model was
trained by ``python build.py train-demo`` (``train.py``, the only module here that
imports torch) on natural English text mixed with generated data (``data.py``) that
teaches induction (Olsson et al. 2022), indirect-object identification (Wang et al.
2022) and recall from a fact table; ``evaluate.py`` measures each with NeuroScope's
analyses on the held-out splits stored next to the model (``*_heldout.json``).
"""

import os

MODEL_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "model")

__all__ = ["MODEL_DIR"]
