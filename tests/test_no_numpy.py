"""``import neuroscope`` and everything numpy-free must work where numpy is absent
(a stdlib-only Pyodide). A subprocess makes ``import numpy`` fail and exercises
configs, hook managers, interventions' specs and the safetensors reader."""

import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = textwrap.dedent("""
    import sys
    sys.modules["numpy"] = None  # any `import numpy` now raises ImportError
    try:
        import numpy  # noqa: F401
        raise SystemExit("numpy still importable")
    except ImportError:
        pass

    import neuroscope
    from neuroscope import ModelConfig, ZeroAblation, Intervention, UnknownHookError
    from neuroscope.hooks import HookManager, HookPoint, FunctionHook
    from neuroscope.safetensors_format import SafetensorsFile, save_bytes
    import struct

    cfg = ModelConfig.from_hf({"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2,
                               "num_attention_heads": 4, "num_key_value_heads": 2,
                               "intermediate_size": 128, "vocab_size": 100})
    assert cfg.n_kv_heads == 2 and cfg.d_head == 16

    points = {"blocks.0.hook_resid_pre": HookPoint("blocks.0.hook_resid_pre")}
    manager = HookManager(points, n_layers=1)
    hook = manager.add_hook("blocks.0.hook_resid_pre", lambda a, h: None)
    try:
        manager.add_hook("blocks.0.hook_resid_pr", lambda a, h: None)
        raise SystemExit("no error for an unknown hook")
    except UnknownHookError as error:
        assert "blocks.0.hook_resid_pre" in str(error)
    manager.remove_hook(hook)
    assert manager.hooks == []

    assert Intervention.from_spec(ZeroAblation().to_spec()).to_spec() == {"type": "zero_ablation"}

    raw = struct.pack("<3f", 1.0, 2.5, -4.0)
    data = save_bytes({"w": ("F32", (3,), raw)})
    reader = SafetensorsFile.from_buffer(data)
    assert list(reader.to_float_array("w")) == [1.0, 2.5, -4.0]

    try:
        neuroscope.get_backend()
        raise SystemExit("the numpy backend loaded without numpy")
    except RuntimeError as error:
        assert "numpy" in str(error)
    assert "numpy" not in sys.modules or sys.modules["numpy"] is None
    print("ok")
""")


def test_package_imports_and_works_without_numpy():
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "py"))
    result = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
