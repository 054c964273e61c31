"""NeuroScope: mechanistic interpretability for transformer language models,
in CPython (numpy) and in the browser (Pyodide + WebGPU / WebGL2 / wasm).

``import neuroscope`` never imports numpy; the numpy backend loads on first use.
"""

from .analysis.circuits import Circuit, CircuitFinder
from .analysis.hypothesis import Hypothesis, HypothesisError, HypothesisTester, HypothesisWarning
from .analysis.neurons import NeuronAnalyzer, NeuronSummary
from .analysis.probes import LinearProbe, probe_layers
from .autograd import enable_grad, no_grad
from .backends import default_backend_name, get_backend, set_backend
from .cache import ActivationCache
from .datasets import Dataset
from .display import (
    ActivationsVisualizer,
    AttentionVisualizer,
    AttributionVisualizer,
    CircuitVisualizer,
    LogitLensVisualizer,
    NeuronVisualizer,
    PatchingVisualizer,
    ProbeVisualizer,
    TensorVisualizer,
    inspect,
    show,
)
from .distributed import ComputeCluster, DistributedAnalysis
from .errors import (
    DatasetError,
    InvalidIndexError,
    InvalidTokenError,
    LayerNotFoundError,
    ModelFormatError,
    NeuroScopeError,
    ShapeError,
    StorageKeyError,
    StorageQuotaError,
    UnknownHookError,
    UnsupportedModelError,
)
from .hooks import (
    ActivationHook,
    CachingHook,
    FunctionHook,
    HookManager,
    HookPoint,
    InterventionHook,
    ProbeHook,
)
from .interactive import InteractiveLens
from .interventions import (
    AddVector,
    FunctionIntervention,
    Intervention,
    MeanAblation,
    NoiseInjection,
    Patch,
    ResampleAblation,
    Scale,
    ZeroAblation,
)
from .model import ModelConfig, ModelOutput, TransformerModel
from .names import act_name, component_name
from .notebook import CodeCell, InterpretabilityNotebook, TextCell, VisualizationCell
from .paper import ResearchPaper
from .tensor import Tensor, arange, cat, full, matmul, ones, stack, tensor, where, zeros
from .tokenizer import Tokenizer

__version__ = "0.1.0"

__all__ = [
    "ActivationCache", "ActivationHook", "ActivationsVisualizer", "AddVector", "AttentionVisualizer",
    "AttributionVisualizer", "CachingHook", "Circuit", "CircuitFinder", "CircuitVisualizer", "CodeCell",
    "ComputeCluster", "Dataset",
    "DatasetError", "DistributedAnalysis",
    "FunctionHook",
    "FunctionIntervention",
    "HookManager", "HookPoint", "Hypothesis", "HypothesisError", "HypothesisTester", "HypothesisWarning",
    "Intervention", "InterventionHook",
    "InteractiveLens", "InterpretabilityNotebook", "InvalidIndexError", "InvalidTokenError",
    "LayerNotFoundError", "LinearProbe", "LogitLensVisualizer",
    "MeanAblation", "ModelConfig", "ModelFormatError", "ModelOutput", "NeuronAnalyzer", "NeuronSummary",
    "NeuronVisualizer",
    "NeuroScopeError",
    "NoiseInjection", "Patch", "PatchingVisualizer", "ProbeHook", "ProbeVisualizer", "ResampleAblation",
    "ResearchPaper", "Scale", "ShapeError",
    "StorageKeyError", "StorageQuotaError", "Tensor", "TensorVisualizer", "TextCell",
    "Tokenizer", "TransformerModel", "UnknownHookError", "UnsupportedModelError",
    "VisualizationCell", "ZeroAblation",
    "act_name", "arange", "cat", "component_name", "default_backend_name", "enable_grad", "full",
    "get_backend", "inspect", "matmul", "no_grad",
    "ones", "probe_layers",
    "set_backend", "show", "stack", "tensor", "where", "zeros",
]
