"""Opt-in weight processing: fold norms, centre writing weights and W_U, fold value biases.

Each transform rewrites ``model.weights`` so that the model computes the same
function — up to a constant added to every logit of a position, for
``center_unembed`` — while its weights read more simply:

* ``fold_ln``: a norm's weight ``w`` (and LayerNorm's bias ``b``) moves into the
  layers that read its output: ``(n*w + b) @ W + c = n @ (w[:, None]*W) + (b @ W + c)``.
  With LayerNorm the normalised ``n`` has zero mean over ``d_model``, so the
  reading weights may also be centred along ``d_model`` (``center_weights``).
* ``center_writing_weights``: every weight that writes to the residual stream
  (W_E, W_pos, W_O, b_O, W_out, b_out) loses its mean over ``d_model``; every
  reader is a LayerNorm, which removes that mean anyway.
* ``center_unembed``: W_U and b_U lose their mean over the vocabulary; softmax
  ignores a per-position constant.
* ``fold_value_biases``: attention patterns sum to 1, so ``b_V`` adds the same
  vector ``b_V @ W_O`` at every position; it moves into ``b_O``.

Conventions follow TransformerLens: after ``fold_ln`` a norm only normalises
(its ``w``/``b`` are removed, and ``hook_normalized`` sees the bare normalised
value); RMSNorm folds its weight but nothing is centred, since RMSNorm keeps the
mean. Weights are never edited in place (a loaded checkpoint may share them);
new tensors replace them in a new dict. Arithmetic runs in float32 and results
return to each weight's dtype. Tied embeddings are untied (``unembed.W_U`` is
written) before anything that would change one side but not the other.

References: TransformerLens ``weight_processing.py`` (``ProcessWeights``) and
``further_comments.md``; Elhage et al., "A Mathematical Framework for
Transformer Circuits" (2021).

Shapes (letters as in ``components.py``): W_Q ``[d, h*e]``, W_K/W_V ``[d, g*e]``,
W_O ``[h*e, d]``, W_in/W_gate ``[d, m]``, W_out ``[m, d]``, W_U ``[d, v]``.
"""

from ..tensor import zeros
from .weight_map import WeightMap

_FLOAT = "float32"


class _WeightEdit:
    """A copy-on-write working copy of ``model.weights``, committed with ``_build()``."""

    def __init__(self, model, action):
        if model.hook_manager.hooks:
            raise RuntimeError(f"{action}: the model has {len(model.hook_manager.hooks)} hook(s) "
                               "registered; rebuilding the model would drop them. Remove the hooks "
                               "(or leave the `with model.hooks(...)` block) first.")
        self.model, self.cfg, self.backend = model, model.cfg, model.backend
        self.weights = dict(model.weights)
        self.dtypes = {name: tensor.dtype for name, tensor in model.weights.items()}
        self.default_dtype = self.dtypes["embed.W_E"]

    def __contains__(self, name):
        return name in self.weights

    def get(self, name):
        tensor = self.weights.get(name)
        return None if tensor is None else tensor.astype(_FLOAT)

    def __getitem__(self, name):
        return self.weights[name].astype(_FLOAT)

    def __setitem__(self, name, tensor):
        self.weights[name] = tensor

    def drop(self, name):
        self.weights.pop(name, None)

    def zeros(self, size):
        return zeros((size,), _FLOAT, self.backend)

    def untie(self):
        """Give the unembedding its own ``W_U`` so W_E and W_U can change independently."""
        if "unembed.W_U" not in self.weights:
            self.weights["unembed.W_U"] = self["embed.W_E"].T.clone()  # [v, d] -> [d, v]

    @property
    def layernorm(self):
        return self.cfg.normalization == "layernorm"

    def commit(self):
        final = {}
        for name, tensor in self.weights.items():
            dtype = self.dtypes.get(name, self.default_dtype)
            final[name] = tensor.astype(dtype)
        self.model.weights = WeightMap(final)
        self.model._build()
        return self.model


# -- fold_ln ---------------------------------------------------------------------
def _fold_norm(edit, norm, readers, center):
    """Fold norm ``norm`` (e.g. ``blocks.0.ln1``) into ``readers``: (weight name, bias name) pairs.

    A bias name of None means the reader cannot take a bias (the gate of a gated MLP).
    """
    w, b = edit.get(norm + ".w"), edit.get(norm + ".b")
    for weight_name, bias_name in readers:
        W = edit[weight_name]  # [d, out]
        if b is not None:
            if bias_name is None:
                raise ValueError(f"fold_ln: cannot fold {norm}.b into {weight_name}, which has no "
                                 "bias in this model's layout")
            bias = edit.get(bias_name)
            folded = (b.reshape(1, -1) @ W).reshape(-1)  # [out]
            edit[bias_name] = folded if bias is None else bias + folded
        if w is not None:
            W = w.reshape(-1, 1) * W
        if center:
            W = W - W.mean(0, keepdims=True)
        edit[weight_name] = W
    edit.drop(norm + ".w")
    edit.drop(norm + ".b")


def _fold_ln(edit, center_weights):
    # Centring a reader is exact only when its input has zero mean: LayerNorm, not RMSNorm.
    center = center_weights and edit.layernorm
    for layer in range(edit.cfg.n_layers):
        prefix = f"blocks.{layer}."
        attn = [(prefix + f"attn.W_{part}", prefix + f"attn.b_{part}") for part in "QKV"]
        _fold_norm(edit, prefix + "ln1", attn, center)
        # ln2 reads resid_mid (sequential) or resid_pre (parallel); either way it feeds only the MLP.
        mlp = [(prefix + "mlp.W_in", prefix + "mlp.b_in")]
        if prefix + "mlp.W_gate" in edit:
            mlp.append((prefix + "mlp.W_gate", None))
        _fold_norm(edit, prefix + "ln2", mlp, center)
    edit.untie()
    _fold_norm(edit, "ln_final", [("unembed.W_U", "unembed.b_U")], center)


def fold_ln(model, center_weights=True):
    """Fold every norm's weight (and LayerNorm bias) into the layers that read it.

    ``center_weights`` also centres those readers along ``d_model`` (LayerNorm
    models only; ignored for RMSNorm, whose output keeps its mean).
    """
    edit = _WeightEdit(model, "fold_ln")
    _fold_ln(edit, center_weights)
    return edit.commit()


# -- centring ------------------------------------------------------------------------
def _center_rows(tensor):
    """Subtract the mean over the last axis (``d_model`` for every writing weight)."""
    return tensor - tensor.mean(-1, keepdims=True)


def _center_writing_weights(edit):
    edit.untie()  # W_E is about to change; the tied unembedding must not
    names = ["embed.W_E", "pos_embed.W_pos"]
    for layer in range(edit.cfg.n_layers):
        prefix = f"blocks.{layer}."
        names += [prefix + "attn.W_O", prefix + "attn.b_O", prefix + "mlp.W_out", prefix + "mlp.b_out"]
    for name in names:
        if name in edit:
            edit[name] = _center_rows(edit[name])


def _refuse_rmsnorm(edit, action):
    if not edit.layernorm:
        raise ValueError(f"{action}: this {edit.cfg.model_type} model uses {edit.cfg.normalization}, "
                         "which keeps the residual stream's mean, so centring would change its "
                         "outputs; expected a LayerNorm model")


def center_writing_weights(model):
    """Centre W_E, W_pos, W_O, b_O, W_out and b_out along ``d_model`` (LayerNorm models)."""
    edit = _WeightEdit(model, "center_writing_weights")
    _refuse_rmsnorm(edit, "center_writing_weights")
    _center_writing_weights(edit)
    return edit.commit()


def _center_unembed(edit):
    edit.untie()  # centring W_U over the vocabulary must leave W_E alone
    edit["unembed.W_U"] = _center_rows(edit["unembed.W_U"])  # [d, v], mean over v
    if "unembed.b_U" in edit:
        edit["unembed.b_U"] = _center_rows(edit["unembed.b_U"])


def center_unembed(model):
    """Centre W_U (and b_U) over the vocabulary; logits shift by a per-position constant."""
    edit = _WeightEdit(model, "center_unembed")
    _center_unembed(edit)
    return edit.commit()


# -- value biases --------------------------------------------------------------------
def _fold_value_biases(edit):
    h, g, e = edit.cfg.n_heads, edit.cfg.n_kv_heads, edit.cfg.d_head
    for layer in range(edit.cfg.n_layers):
        prefix = f"blocks.{layer}.attn."
        b_V = edit.get(prefix + "b_V")  # [g*e]
        if b_V is None:
            continue
        # Query head j reads kv head j // (h/g), as in Attention._explicit.
        per_head = b_V.reshape(g, 1, e).broadcast_to(g, h // g, e).reshape(1, h * e)
        folded = (per_head @ edit[prefix + "W_O"]).reshape(-1)  # [d]
        b_O = edit.get(prefix + "b_O")
        edit[prefix + "b_O"] = folded if b_O is None else b_O + folded
        edit.drop(prefix + "b_V")


def fold_value_biases(model):
    """Move each layer's value bias into its output bias: ``b_O += b_V @ W_O`` over heads."""
    edit = _WeightEdit(model, "fold_value_biases")
    _fold_value_biases(edit)
    return edit.commit()


# -- all together ----------------------------------------------------------------------
def process_weights(model, fold_ln=True, center_writing_weights=True, center_unembed=True,
                    fold_value_biases=True):
    """The transforms above in TransformerLens' order, in one float32 pass.

    For RMSNorm models the centring of reading and writing weights is skipped
    (as TransformerLens does), since it would change the outputs.
    """
    edit = _WeightEdit(model, "process_weights")
    center_writing = center_writing_weights and edit.layernorm
    if fold_ln:
        _fold_ln(edit, center_weights=True)
    if center_writing:
        _center_writing_weights(edit)
    if center_unembed:
        _center_unembed(edit)
    if fold_value_biases:
        _fold_value_biases(edit)
        if center_writing:
            # The folded b_V @ W_O is centred only if W_O was; re-centre b_O as TransformerLens does.
            for layer in range(edit.cfg.n_layers):
                name = f"blocks.{layer}.attn.b_O"
                if name in edit:
                    edit[name] = _center_rows(edit[name])
    return edit.commit()
